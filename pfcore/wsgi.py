"""WSGI entry point for gunicorn: ``gunicorn pfcore.wsgi:app``."""

from . import create_app

app = create_app()
