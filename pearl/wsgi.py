"""WSGI entry point for gunicorn: `pearl.wsgi:app`."""

from __future__ import annotations

from api import create_app
from pearl.logs import configure_logging

configure_logging("api")
app = create_app()
