"""The WSGI entry point gunicorn loads: ``users.wsgi:app``."""

from users.app import create_app

app = create_app()
