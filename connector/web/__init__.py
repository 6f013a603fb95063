"""The Flask application factory. Flask is imported only under ``connector/web``."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, jsonify
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy.orm import configure_mappers

from connector.config import Settings
from connector.db.engine import Database
from connector.errors import ConnectorError, NotFound, SignatureError, ValidationError


def create_app(settings: Settings, db: Database | None = None, **extensions: Any) -> Flask:
    """Build the web app for ``settings``; nothing connects to a database until a request needs it."""
    app = Flask(__name__)
    app.session_interface = _NoSessionForWebhooks()
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=settings.webhook_max_bytes * 2)
    app.extensions["backorders.settings"] = settings
    if db is None:
        from connector import crypto

        crypto.configure_cipher(settings.fernet_keys)
        db = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    app.extensions["backorders.db"] = db
    # The ORM's mappers are configured on their first use: here, not in a worker's first request
    # (on a burst right after boot it held deliveries up by ~100 ms; the bench's p99 showed it).
    configure_mappers()
    app.extensions.update({f"backorders.{k}": v for k, v in extensions.items()})

    from connector.web.pages import register_pages

    register_pages(app)
    from connector.web.api import bp as api_bp
    from connector.web.cancellation import bp as cancellation_bp
    from connector.web.supplier_portal import bp as supplier_portal_bp
    from connector.web.webhooks import bp as webhooks_bp

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(cancellation_bp)
    app.register_blueprint(supplier_portal_bp)
    app.register_blueprint(api_bp)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.errorhandler(ConnectorError)
    def connector_error(exc: ConnectorError) -> Any:
        status = 400
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, SignatureError):
            status = 401
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if isinstance(exc, ValidationError) and exc.field:
            body["field"] = exc.field
        return jsonify(error=body), status

    from connector.web.webhook_fast_path import WebhookFastPath

    # The ordinary webhook delivery is answered below Flask (see the module); the rest reaches it.
    app.wsgi_app = WebhookFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
    return app


class _NoSessionForWebhooks(SecureCookieSessionInterface):
    """No cookie session on webhook deliveries: stores send no cookies, and opening the session
    (building the signing serializer) cost about a sixth of a delivery's CPU."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/webhooks/"):
            return None  # Flask then uses a null session and saves nothing
        return super().open_session(app, request)
