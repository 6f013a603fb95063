"""WSGI entry point: ``gunicorn wsgi:app`` (settings from the environment / .env).

The web app only: with JOB_BACKEND=embedded run ``backorders serve`` (web + scheduler in one
process) or a separate ``backorders scheduler``; with JOB_BACKEND=celery run ``backorders clock``
and ``backorders worker`` beside it.
"""

from bootstrap.runtime import build_runtime, build_web_app
from bootstrap.wiring import configure_logging
from connector.config import load_settings

settings = load_settings()
configure_logging(settings)
app = build_web_app(build_runtime(settings))
