"""The WSGI entry point the server loads: ``auth.wsgi:app``."""

from auth.app import create_app

app = create_app()
