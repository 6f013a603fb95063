"""WSGI entry point: ``gunicorn wsgi:app`` (settings come from the environment / .env)."""

from bootstrap.wiring import build_database, configure_logging
from connector.config import load_settings
from connector.web import create_app

settings = load_settings()
configure_logging(settings)
app = create_app(settings, build_database(settings))
