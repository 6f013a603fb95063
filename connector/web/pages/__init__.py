"""Merchant pages (signed in, one shop) and the shopper's public backorder page.

``register_pages(app)`` plugs both into an app built by ``create_app``; it is idempotent.
The app needs ``SECRET_KEY`` (session signing) and ``app.extensions["backorders.db"]``.

Two ways in: e-mail and password (a cookie session, CSRF token on every form), or, inside the
Shopify admin iframe where third-party cookies do not work, a Shopify session token on every
request (``static/embedded.js`` adds it), verified by ``connector.web.shopify_app``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, session, url_for

from connector.errors import NotFound, SignatureError, ValidationError
from connector.services.accounts import signed_in_user
from connector.web.pages.common import (
    check_csrf,
    content_security_policy,
    csrf_token,
    get_db,
    money,
    session_token_from_request,
)
from connector.web.pages.flashes import carry_flashes_in_url, page_messages

pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/pages-static")
storefront = Blueprint("storefront", __name__, template_folder="templates")

pages.after_request(carry_flashes_in_url)

PUBLIC_ENDPOINTS = {"pages.login", "pages.static", "pages.password_forgot", "pages.password_set"}


@dataclass(frozen=True, slots=True)
class Embedded:
    """``g.embedded``: the page is open inside the Shopify admin of ``shop``."""

    shop: str
    api_key: str


@pages.before_request
def _require_sign_in() -> Any:
    if request.endpoint == "pages.static":
        return None
    token = session_token_from_request()
    if token is not None:
        # CSRF works by making the browser attach its cookie to a forged cross-site request. A
        # session token is never attached by the browser: only our embedded.js sends it, having
        # asked App Bridge (in the admin's frame) for it, so a forged form cannot carry it and
        # these requests need no CSRF token. Cookie requests below keep the check.
        return _sign_in_with_session_token(token)
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
    g.user_id = user.user_id
    g.user_email = user.email
    return None


def _sign_in_with_session_token(token: str) -> Any:
    """Inside the Shopify admin: the shop is the one the verified token names (``dest``)."""
    # Imported here: the Shopify app module is optional (WooCommerce-only deployments).
    from connector.web.shopify_app import shopify_api_key, shopify_configured, verify_session

    if not shopify_configured():
        return _unauthorized("This server does not serve the Shopify app.", retry=False)
    try:
        found = verify_session(token)
    except SignatureError as exc:
        return _unauthorized(f"Open the app again from your Shopify admin ({exc.message}).", retry=True)
    if found.shop_id is None:
        return _unauthorized(f"{found.shop} has not installed the app.", retry=False)
    g.shop_id = found.shop_id
    g.user_email = found.shop
    g.embedded = Embedded(found.shop, shopify_api_key())
    return None


def _unauthorized(message: str, *, retry: bool) -> Any:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if retry:
        # App Bridge's fetch retries once with a fresh token when it sees this header.
        headers["X-Shopify-Retry-Invalid-Session-Request"] = "1"
    return render_template("pages/error.html", title="Not signed in", message=message), 401, headers


@pages.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Any:
    return render_template("pages/error.html", title="Not found", message="This page does not exist."), 404


@pages.errorhandler(ValidationError)
def _invalid(exc: ValidationError) -> Any:
    return render_template("pages/error.html", title="Cannot do that", message=exc.message), 400


def _security_headers(response: Response) -> Response:
    if request.path.startswith("/webhooks/"):
        # Answers to a store's servers, never rendered by a browser; setting the headers cost
        # a twentieth of a delivery's CPU.
        return response
    embedded: Embedded | None = g.get("embedded")
    response.headers.setdefault("Content-Security-Policy", content_security_policy(embedded.shop if embedded else None))
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
    from connector.web.pages import (  # noqa: F401
        auth,
        dashboard,
        dropship,
        purchase_orders,
        settings,
        shopper,
        suppliers,
        users,
    )

    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config = app.extensions.get("backorders.settings")
    if config is not None and str(getattr(config, "app_url", "")).startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.register_blueprint(pages, url_prefix="/merchant")
    app.register_blueprint(storefront)
    app.after_request(_security_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["page_messages"] = page_messages
    app.jinja_env.filters["money"] = money
