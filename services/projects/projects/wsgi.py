"""The WSGI entry point gunicorn loads: ``projects.wsgi:app``."""

from projects.app import create_app

app = create_app()
