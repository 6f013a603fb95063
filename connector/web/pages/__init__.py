"""Merchant pages (signed in, one shop) and the shopper's public backorder page.

``register_pages(app)`` plugs both into an app built by ``create_app``; it is idempotent.
The app needs ``SECRET_KEY`` (session signing) and ``app.extensions["backorders.db"]``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, session, url_for

from connector.errors import NotFound, ValidationError
from connector.services.accounts import signed_in_user
from connector.web.pages.common import check_csrf, csrf_token, get_db, money

pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/pages-static")
storefront = Blueprint("storefront", __name__, template_folder="templates")

PUBLIC_ENDPOINTS = {"pages.login", "pages.static"}
# The merchant pages may later be framed by the Shopify admin: frame-ancestors is the knob.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


@pages.before_request
def _require_sign_in() -> Any:
    check_csrf()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    user_id, shop = session.get("user_id"), session.get("shop_id")
    user = signed_in_user(get_db(), user_id, shop) if isinstance(user_id, int) and isinstance(shop, int) else None
    if user is None:
        session.pop("user_id", None)
        session.pop("shop_id", None)
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?") if request.method == "GET" else None))
    g.shop_id = user.shop_id
    g.user_email = user.email
    return None


@pages.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Any:
    return render_template("pages/error.html", title="Not found", message="This page does not exist."), 404


@pages.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> Any:
    return render_template("pages/error.html", title="Cannot do that", message=exc.message), 400


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.blueprint == "pages":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def register_pages(app: Flask) -> None:
    """Register the merchant and storefront pages on ``app`` (a second call does nothing)."""
    if "pages" in app.blueprints:
        return
    # Import the views so their routes attach to the blueprints.
    from connector.web.pages import auth, dashboard, purchase_orders, settings, shopper, suppliers  # noqa: F401

    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config = app.extensions.get("backorders.settings")
    if config is not None and str(getattr(config, "app_url", "")).startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.register_blueprint(pages, url_prefix="/merchant")
    app.register_blueprint(storefront)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.filters["money"] = money
