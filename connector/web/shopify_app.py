"""The Shopify app: install (OAuth code grant), embedded token exchange, the embedded JSON API,
the storefront app proxy, and the lifecycle/privacy hook for the generic webhook endpoint.

No Shopify code is imported here: the adapter objects arrive through
``app.extensions["backorders.shopify"]`` (a :class:`ShopifyExtension`) and are typed with the
protocols below. Register with :func:`init_shopify_app` (blueprint + extensions + hook).

URL map::

    GET  /shopify/install?shop=…         → 302 to Shopify's permission page (state in a signed cookie)
    GET  /shopify/callback?code&hmac&…   → install, register webhooks, first pull → 302 into the admin
    POST /shopify/token-exchange         → embedded: session token → expiring offline token
    GET  /shopify/app?id_token=…         → embedded entry (the app URL): 302 to the merchant dashboard
    GET  /shopify/api/backorders?q=      → JSON, session token (Authorization: Bearer) required
    GET  /shopify/proxy/backorders?q=    → app proxy (signed query); HTML, or JSON with format=json
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    url_for,
)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from connector.db.engine import Database
from connector.domain.records import InventoryLevelRecord, OrderRecord, ProductRecord
from connector.errors import ConnectorError, SignatureError, ValidationError
from connector.ports import VerifiedDelivery
from connector.services import shops
from connector.services.storefront_queries import shop_for_domain, storefront_backorders
from connector.services.sync import pull_store

bp = Blueprint("shopify_app", __name__, url_prefix="/shopify")
log = logging.getLogger(__name__)

PLATFORM = "shopify"
STATE_COOKIE = "shopify_oauth_state"
STATE_SALT = "backorders.shopify.oauth-state"
F = TypeVar("F", bound=Callable[..., Any])


class ShopifyStorefrontPort(Protocol):
    def fetch_orders_since(self, updated_after: datetime | None) -> Iterator[OrderRecord]: ...

    def fetch_products(self) -> Iterator[ProductRecord]: ...

    def fetch_inventory_levels(self) -> Iterator[InventoryLevelRecord]: ...

    def register_webhooks(self, callback_url: str) -> Mapping[str, str | None]: ...


class ShopifyGatewayPort(Protocol):
    """``adapters.shopify.gateway.ShopifyGateway`` as the blueprint sees it."""

    def storefront_for(self, access: shops.ShopAccess, db: Database) -> Any: ...


class ShopifyAuthPort(Protocol):
    """``adapters.shopify.gateway.ShopifyAuth``: every check raises a ConnectorError
    (SignatureError → 401, ValidationError → 400)."""

    def sanitize_shop(self, raw: str) -> str: ...

    def permission_url(self, shop: str, scopes: tuple[str, ...], redirect_uri: str, state: str) -> str: ...

    def validate_callback(self, params: Mapping[str, str], expected_state: str) -> str: ...

    def exchange_code(self, shop: str, code: str) -> dict[str, Any]: ...

    def token_exchange(self, shop: str, session_token: str) -> dict[str, Any]: ...

    def verify_session_token(self, token: str) -> str: ...

    def verify_app_proxy(self, query: Any) -> str: ...


@dataclass(frozen=True)
class ShopifyAppSettings:
    app_url: str  # public base URL of this app, no trailing slash (webhook and redirect URLs)
    api_key: str
    scopes: tuple[str, ...]
    state_max_age: int = 600  # seconds a merchant has to approve the permissions
    proxy_max_age: int = 300  # seconds an app-proxy query's timestamp stays acceptable (replays)
    # where the merchant lands after install; {shop} and {api_key} are filled in
    after_install_url: str = "https://{shop}/admin/apps/{api_key}"

    @property
    def secure_cookies(self) -> bool:
        return self.app_url.startswith("https://")


@dataclass
class ShopifyExtension:
    """``app.extensions["backorders.shopify"]``."""

    oauth: ShopifyAuthPort
    gateway: ShopifyGatewayPort
    settings: ShopifyAppSettings
    # after install: called with the shop id instead of pulling inline (e.g. queue a job)
    schedule_pull: Callable[[int], None] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def init_shopify_app(app: Flask, extension: ShopifyExtension, gateway: Any | None = None) -> None:
    """Register the blueprint, the extension, the lifecycle hook and (when given) the webhook
    gateway under ``backorders.gateways["shopify"]``."""
    app.extensions["backorders.shopify"] = extension
    app.extensions.setdefault(f"backorders.lifecycle.{PLATFORM}", shopify_lifecycle)
    # the topics it answers itself: the webhook fast path leaves these to the view
    app.extensions.setdefault(f"backorders.lifecycle_topics.{PLATFORM}", frozenset(LIFECYCLE_TOPICS))
    if gateway is not None:
        app.extensions.setdefault("backorders.gateways", {})[PLATFORM] = gateway
    app.register_blueprint(bp)


def _ext() -> ShopifyExtension:
    ext = current_app.extensions.get("backorders.shopify")
    if ext is None:
        raise RuntimeError("backorders.shopify is not configured")
    return cast(ShopifyExtension, ext)


def _db() -> Database:
    return cast(Database, current_app.extensions["backorders.db"])


def _error(status: int, code: str, message: str) -> Any:
    return jsonify(error={"code": code, "message": message}), status


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=STATE_SALT)


# ---------------------------------------------------------------------------------------------
# install: authorization-code grant
# ---------------------------------------------------------------------------------------------


@bp.get("/install")
def install() -> Any:
    ext = _ext()
    shop = ext.oauth.sanitize_shop(request.args.get("shop", ""))
    nonce = secrets.token_urlsafe(24)
    redirect_uri = f"{ext.settings.app_url}/shopify/callback"
    url = ext.oauth.permission_url(shop, ext.settings.scopes, redirect_uri, nonce)
    response = redirect(url, code=302)
    # The nonce lives in a signed cookie of this browser only: a callback replayed in another
    # browser (login CSRF) has no matching cookie.
    response.set_cookie(
        STATE_COOKIE,
        _serializer().dumps({"shop": shop, "nonce": nonce}),
        max_age=ext.settings.state_max_age,
        httponly=True,
        secure=ext.settings.secure_cookies,
        samesite="Lax",
        path="/shopify/callback",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _state_from_cookie(max_age: int) -> dict[str, str]:
    raw = request.cookies.get(STATE_COOKIE)
    if not raw:
        raise SignatureError("no OAuth state for this browser: start the install again", field="state")
    try:
        data = _serializer().loads(raw, max_age=max_age)
    except BadSignature as exc:  # includes SignatureExpired
        raise SignatureError("OAuth state cookie is invalid or expired", field="state") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nonce"), str) or not isinstance(data.get("shop"), str):
        raise SignatureError("OAuth state cookie is malformed", field="state")
    return cast(dict[str, str], data)


@bp.get("/callback")
def callback() -> Any:
    ext = _ext()
    state = _state_from_cookie(ext.settings.state_max_age)
    params = {k: v for k, v in request.args.items()}
    shop = ext.oauth.validate_callback(params, state["nonce"])
    if shop != state["shop"]:
        raise SignatureError("the callback is for another shop than the install started", field="shop")
    code = params.get("code")
    if not code:
        raise ValidationError("missing code", field="code")
    credentials = ext.oauth.exchange_code(shop, code)
    shop_id = _after_grant(ext, shop, credentials, first_pull=True)
    target = ext.settings.after_install_url.format(shop=shop, api_key=ext.settings.api_key, shop_id=shop_id)
    response = redirect(target, code=302)
    response.delete_cookie(STATE_COOKIE, path="/shopify/callback")
    return response


def _after_grant(ext: ShopifyExtension, shop: str, credentials: dict[str, Any], *, first_pull: bool) -> int:
    """Store the shop, subscribe the webhooks, bring in the store's data (or schedule it)."""
    db = _db()
    now = ext.clock()
    shop_id, created = shops.install_shop(db, PLATFORM, shop, credentials, now,
                                          scopes=str(credentials.get("scope") or ""))
    storefront = ext.gateway.storefront_for(shops.shop_access(db, shop_id), db)
    try:
        storefront.register_webhooks(f"{ext.settings.app_url}/webhooks/{PLATFORM}")
    except ConnectorError as exc:
        # Installed anyway: the periodic pull is the safety net; the next install/open retries.
        log.error("shop %s: webhook registration failed: %s", shop, exc.message)
    if first_pull or created:
        if ext.schedule_pull is not None:
            ext.schedule_pull(shop_id)
        else:
            try:
                pull_store(db, shop_id, storefront, now)
            except ConnectorError as exc:
                log.error("shop %s: initial pull failed: %s", shop, exc.message)
    return shop_id


# ---------------------------------------------------------------------------------------------
# embedded app: session tokens
# ---------------------------------------------------------------------------------------------


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("missing session token (Authorization: Bearer …)", field="authorization")
    return token.strip()


@dataclass(frozen=True, slots=True)
class EmbeddedSession:
    """What a verified session token says: the shop, and its id when the app is installed there."""

    shop: str
    shop_id: int | None  # None: signed by Shopify for us, but the shop never installed or left


def shopify_configured() -> bool:
    return isinstance(current_app.extensions.get("backorders.shopify"), ShopifyExtension)


def shopify_api_key() -> str:
    """The app's public API key (App Bridge reads it from ``<meta name="shopify-api-key">``)."""
    return _ext().settings.api_key


def verify_session(token: str) -> EmbeddedSession:
    """The app's one session-token check, shared by the JSON API, the merchant pages and the
    entry route: ``shopify.session_token`` (HS256 with the app secret, ``aud`` = API key,
    ``iss`` root = ``dest``, 10 s leeway on ``exp``/``nbf``). Raises SignatureError (→ 401).

    The shop comes from the token's ``dest`` only; no ``shop`` parameter is ever consulted.
    """
    shop = _ext().oauth.verify_session_token(token)
    return EmbeddedSession(shop, shops.find_shop_id(_db(), PLATFORM, shop))


def shopify_session_required(view: F) -> F:
    """Verify the App Bridge session token and bind the shop it names (``g.shopify_shop_id``,
    ``g.shopify_shop``). The shop comes only from the verified token, never from a parameter."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            session = verify_session(_bearer())
        except SignatureError as exc:
            response = jsonify(error={"code": exc.code, "message": exc.message})
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            response.headers["X-Shopify-Retry-Invalid-Session-Request"] = "1"
            return response, 401
        if session.shop_id is None:
            return _error(401, "not_installed", f"{session.shop} has not installed the app (run the token exchange)")
        g.shopify_shop = session.shop
        g.shopify_shop_id = session.shop_id
        return view(*args, **kwargs)

    return cast(F, wrapped)


@bp.get("/app")
def app_entry() -> Any:
    """The app URL Shopify opens in the admin iframe (``application_url`` = APP_URL/shopify/app),
    with ``embedded=1&host=…&shop=…&id_token=<session token>``: on to the dashboard with the token.

    A shop that installed through Shopify's managed install has no offline token yet: the first
    open exchanges the session token for one (and registers the webhooks, schedules the pull).
    """
    token = request.args.get("id_token", "")
    if not token:
        # Opened outside the admin (a bookmark): the merchant pages' own sign-in applies.
        return redirect(url_for("pages.dashboard"))
    ext = _ext()
    try:
        session = verify_session(token)
    except SignatureError as exc:
        body = render_template("pages/error.html", title="Session expired",
                               message=f"Open the app again from your Shopify admin ({exc.message}).")
        return body, 401, {"X-Shopify-Retry-Invalid-Session-Request": "1"}
    if session.shop_id is None:
        credentials = ext.oauth.token_exchange(session.shop, token)
        _after_grant(ext, session.shop, credentials, first_pull=False)
    # Only what the embedded page needs travels on; the shop is read from the token again there.
    keep: dict[str, Any] = {k: request.args[k] for k in ("embedded", "host") if k in request.args}
    return redirect(url_for("pages.dashboard", id_token=token, **keep))


@bp.post("/token-exchange")
def token_exchange() -> Any:
    ext = _ext()
    session_token = _bearer()
    shop = ext.oauth.verify_session_token(session_token)
    credentials = ext.oauth.token_exchange(shop, session_token)
    shop_id = _after_grant(ext, shop, credentials, first_pull=False)
    return jsonify(shop=shop, status="installed", shop_id=shop_id)


@bp.get("/api/backorders")
@shopify_session_required
def api_backorders() -> Any:
    query = (request.args.get("q") or "").strip()[:100]
    items = storefront_backorders(_db(), g.shopify_shop_id, query, _ext().clock().date())
    response = jsonify(shop=g.shopify_shop, items=items)
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------------------------------------
# storefront app proxy
# ---------------------------------------------------------------------------------------------

PROXY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backorders – {{ name }}</title>
<style>body{color:{{ colours.text_color }};background:{{ colours.background_color }}}
h1{color:{{ colours.primary_color }}}</style></head>
<body><h1>Available to order now, shipping later</h1>
<form method="get"><input type="search" name="q" value="{{ q }}" aria-label="Search"></form>
{% if items %}<table><thead><tr><th>Product</th><th>SKU</th><th>Status</th><th>Expected</th></tr></thead><tbody>
{% for item in items %}<tr><td>{{ item.title }}</td><td>{{ item.sku }}</td><td>{{ item.status }}</td>
<td>{{ item.eta or "to be confirmed" }}</td></tr>{% endfor %}
</tbody></table>{% else %}<p>Nothing is on backorder right now.</p>{% endif %}
</body></html>"""


def _check_proxy_timestamp(raw: str | None, now: datetime, max_age: int) -> None:
    """Refuse a signed proxy query that is too old (or from the future): the signature alone
    would let a captured URL be replayed forever. Runs after the signature check, so the
    timestamp is Shopify's own."""
    try:
        sent = int(raw or "")
    except ValueError:
        raise SignatureError("app-proxy request without a valid timestamp", field="timestamp") from None
    if abs(now.timestamp() - sent) > max_age:
        raise SignatureError(f"app-proxy request is older than {max_age} s (replayed?)", field="timestamp")


@bp.get("/proxy/backorders")
def proxy_backorders() -> Any:
    ext = _ext()
    shop = ext.oauth.verify_app_proxy(request.args)
    _check_proxy_timestamp(request.args.get("timestamp"), ext.clock(), ext.settings.proxy_max_age)
    found = shop_for_domain(_db(), shop)
    if found is None:
        return _error(404, "unknown_shop", f"no installed store {shop}")
    shop_id, name, colours = found
    query = (request.args.get("q") or "").strip()[:100]
    items = storefront_backorders(_db(), shop_id, query, ext.clock().date())
    if request.args.get("format") == "json":
        response = jsonify(shop=name, items=items)
    else:
        response = current_app.response_class(
            render_template_string(PROXY_PAGE, name=name, colours=colours, items=items, q=query),
            mimetype="text/html",
        )
    # Shopify caches proxy responses per URL; the page is per shop and public anyway.
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


# ---------------------------------------------------------------------------------------------
# lifecycle and privacy webhooks (called by connector.web.webhooks after the HMAC check)
# ---------------------------------------------------------------------------------------------


def _customer_args(payload: Mapping[str, Any]) -> dict[str, Any]:
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        customer = {}
    raw_id = customer.get("id")
    email = customer.get("email")
    orders = payload.get("orders_to_redact") or payload.get("orders_requested") or []
    return {
        "customer_external_id": str(raw_id) if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) else None,
        "email": email if isinstance(email, str) and email else None,
        "order_external_ids": [str(o) for o in orders if isinstance(o, int | str) and not isinstance(o, bool)]
        if isinstance(orders, list)
        else [],
    }


def _triggered_at() -> datetime | None:
    raw = request.headers.get("X-Shopify-Triggered-At") if has_request_context() else None
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


LIFECYCLE_TOPICS = ("app/uninstalled", "shop/redact", "customers/redact", "customers/data_request")


def shopify_lifecycle(delivery: VerifiedDelivery, shop_id: int | None, app: Flask) -> Any:
    """``app.extensions["backorders.lifecycle.shopify"]``: handle app/uninstalled and the three
    compliance topics whatever the shop's status; None lets the delivery be stored as usual.

    ``shop_id`` is None for a shop we hold nothing of (never installed, or already redacted):
    the lifecycle topics still get 200, since Shopify requires the mandatory privacy webhooks to
    succeed and retries (then flags the app) otherwise; there is simply nothing to do.
    """
    topic = delivery.topic
    if shop_id is None:
        if topic in LIFECYCLE_TOPICS:
            return jsonify(status="nothing held", reason="no data of this store"), 200
        return None
    db = cast(Database, app.extensions["backorders.db"])
    ext = app.extensions.get("backorders.shopify")
    now = ext.clock() if isinstance(ext, ShopifyExtension) else datetime.now(UTC)
    if topic == "app/uninstalled":
        # Shopify retries a delivery for hours: an uninstall of an earlier install must not
        # remove the merchant's fresh re-install.
        triggered = _triggered_at()
        installed_at = shops.shop_access(db, shop_id).installed_at
        if triggered is not None and installed_at is not None and triggered < installed_at:
            return jsonify(status="ignored", reason="uninstall of an earlier install"), 200
        shops.uninstall_shop(db, shop_id, now)
        return jsonify(status="uninstalled"), 200
    if topic == "shop/redact":
        deleted = shops.shop_redact(db, shop_id)
        log.info("shop/redact: deleted %d rows of shop %s", deleted, shop_id)
        return jsonify(status="redacted"), 200
    if topic == "customers/redact":
        count = shops.customers_redact(db, shop_id, now, **_customer_args(delivery.payload))
        return jsonify(status="redacted", orders=count), 200
    if topic == "customers/data_request":
        args = _customer_args(delivery.payload)
        report = shops.customers_data_request(db, shop_id, **args)
        request_id = delivery.payload.get("data_request", {}) if isinstance(delivery.payload, dict) else {}
        report["data_request"] = request_id if isinstance(request_id, dict) else {}
        # JSON round trip: the outbox payload column takes plain JSON only
        shops.record_data_report(db, shop_id, f"data_request:{delivery.event_id}", json.loads(json.dumps(report)), now)
        return jsonify(status="received", orders=len(report["orders"])), 200
    return None
