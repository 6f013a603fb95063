"""Connecting a WooCommerce store: the wc-auth redirect, its callback, the return page, the
paste-keys form, and the embed snippet for the public backorder page.

URL map (blueprint ``woocommerce``):

* ``GET  /woocommerce/connect``            form; with ``?store_url=`` a 302 to the store's
  ``/wc-auth/v1/authorize`` (signed, expiring ``user_id``; https required except loopback)
* ``POST /woocommerce/callback``           WooCommerce posts the new keys here (JSON)
* ``GET  /woocommerce/return``             where WooCommerce sends the merchant afterwards
* ``GET  /woocommerce/keys``               the paste-keys form
* ``POST /woocommerce/keys``               connect with pasted keys (CSRF-protected)
* ``GET  /woocommerce/snippet/<domain>``   HTML to paste into the store linking the backorder page

Needs ``app.extensions``: ``backorders.settings`` (``app_url``, ``secret_key``), ``backorders.db``,
``backorders.gateways["woocommerce"]`` (the adapter's ``WooGateway``: it is also the
``WooConnector`` of :mod:`connector.services.woo_connect`). Optional:
``backorders.woocommerce_pull`` (``callable(shop_id)``) to run the initial pull elsewhere (a
job); without it the pull runs on the request's worker after the response was sent. Register with
:func:`register_woocommerce`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template_string, request

from connector.errors import ConnectorError, MappingError, SignatureError, ValidationError
from connector.services.storefront_queries import shop_for_domain
from connector.services.woo_connect import (
    Connected,
    ConnectRefused,
    connect_store,
    initial_pull,
    make_connect_token,
    read_connect_token,
)
from connector.web.pages.common import check_csrf, csrf_token, get_db, utcnow

bp = Blueprint("woocommerce", __name__, url_prefix="/woocommerce")
log = logging.getLogger(__name__)
APP_NAME = "Backorder connector"
RETURN_TOKEN_MAX_AGE = 24 * 3600  # the return page only displays; a late visit still reads fine

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>{{ title }}</h1>
{% if message %}<p role="{{ 'alert' if error else 'status' }}">{{ message }}</p>{% endif %}
{% if backorder_url %}<p>Your shoppers' backorder page: <a href="{{ backorder_url }}">{{ backorder_url }}</a></p>{% endif %}
{% if show_connect %}
<h2>Connect with WooCommerce</h2>
<form method="get" action="{{ url_for('woocommerce.connect') }}">
  <label>Store address <input name="store_url" type="url" placeholder="https://shop.example" required
   value="{{ store_url or '' }}"></label>
  <button type="submit">Connect</button>
</form>
{% endif %}
{% if show_keys %}
<h2>Or paste REST API keys</h2>
<p>WooCommerce &gt; Settings &gt; Advanced &gt; REST API &gt; Add key, permission Read/Write.</p>
<form method="post" action="{{ url_for('woocommerce.keys') }}">
  <input type="hidden" name="csrf_token" value="{{ csrf }}">
  <p><label>Store address <input name="store_url" type="url" required value="{{ store_url or '' }}"></label></p>
  <p><label>Consumer key <input name="consumer_key" required autocomplete="off"></label></p>
  <p><label>Consumer secret <input name="consumer_secret" type="password" required autocomplete="off"></label></p>
  <button type="submit">Save keys</button>
</form>
{% endif %}
</body></html>
"""


def _page(title: str, status: int = 200, **values: Any) -> Any:
    values.setdefault("message", None)
    values.setdefault("error", status >= 400)
    body = render_template_string(_PAGE, title=title, csrf=csrf_token(), **values)
    return body, status, {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"}


def _gateway() -> Any:
    gateways: dict[str, Any] = current_app.extensions.get("backorders.gateways", {})
    gateway = gateways.get("woocommerce")
    if gateway is None:
        raise RuntimeError("no WooCommerce gateway in app.extensions['backorders.gateways']")
    return gateway


def _app_url() -> str:
    return str(current_app.extensions["backorders.settings"].app_url).rstrip("/")


def _secret_key() -> str:
    return str(current_app.extensions["backorders.settings"].secret_key)


def _backorder_url(domain: str) -> str:
    return f"{_app_url()}/shop/{quote(domain, safe=':/')}/backorders"


def _after_connect(connected: Connected, response: Any) -> Any:
    """The initial pull, never inside the request: WooCommerce waits for the callback's answer
    (and deletes the key when it takes too long), the merchant waits for the form. Handed to
    ``backorders.woocommerce_pull`` when the composition root gives one (a job queue), else run
    on the request's worker right after the response has been sent (``call_on_close``)."""
    deferred = current_app.extensions.get("backorders.woocommerce_pull")
    if deferred is not None:
        deferred(connected.shop_id)
        return response
    db, gateway, now, shop_id = get_db(), _gateway(), utcnow(), connected.shop_id

    def pull() -> None:
        try:
            initial_pull(db, gateway, shop_id, now)
        except Exception:  # after the response: nobody else would see it
            log.exception("initial pull of shop %s failed", shop_id)

    response = current_app.make_response(response)
    response.call_on_close(pull)
    return response


def _connect(store_url: str, consumer_key: str, consumer_secret: str, **key_info: Any) -> Connected:
    return connect_store(
        get_db(),
        _gateway(),
        store_url,
        consumer_key,
        consumer_secret,
        f"{_app_url()}/webhooks/woocommerce",
        utcnow(),
        **key_info,
    )


@bp.get("/connect")
def connect() -> Any:
    raw = (request.args.get("store_url") or "").strip()
    if not raw:
        return _page("Connect a WooCommerce store", show_connect=True, show_keys=True)
    try:
        store_url = _gateway().normalize_store_url(raw)
    except ValidationError as exc:
        return _page("Connect a WooCommerce store", 400, message=exc.message, store_url=raw[:200],
                     show_connect=True)
    app_url = _app_url()
    location = _gateway().authorize_url(
        store_url,
        APP_NAME,
        make_connect_token(_secret_key(), store_url),
        f"{app_url}/woocommerce/return",
        f"{app_url}/woocommerce/callback",
    )
    return redirect(location, code=302)


@bp.post("/callback")
def callback() -> Any:
    """WooCommerce (the store's server, not the browser) posts the keys; a non-2xx answer makes
    WooCommerce delete the key and show the merchant an error."""
    try:
        keys = _gateway().parse_auth_callback(request.get_data(cache=False))
    except MappingError as exc:
        return jsonify(error={"code": exc.code, "message": exc.message}), 400
    try:
        store_url = read_connect_token(_secret_key(), keys.user_id)
    except SignatureError as exc:
        log.warning("woocommerce callback refused: %s", exc.message)
        return jsonify(error={"code": exc.code, "message": exc.message}), 403
    try:
        connected = _connect(store_url, keys.consumer_key, keys.consumer_secret,
                             key_id=keys.key_id, key_permissions=keys.key_permissions)
    except ConnectorError as exc:
        log.warning("woocommerce callback for %s refused: %s", store_url, exc.message)
        return jsonify(error={"code": exc.code, "message": exc.message}), 400
    return _after_connect(connected, (jsonify(status="connected", shop=connected.domain), 200))


@bp.get("/return")
def return_page() -> Any:
    success = request.args.get("success") == "1"
    try:
        store_url = read_connect_token(_secret_key(), request.args.get("user_id"), RETURN_TOKEN_MAX_AGE)
    except SignatureError:
        return _page("Connection not completed", 400,
                     message="This link did not come from a connection started here. Start again.",
                     show_connect=True)
    if not success:
        return _page("Connection not completed", 200, error=True, store_url=store_url,
                     message="The store did not approve the connection. You can try again or paste keys.",
                     show_connect=True, show_keys=True)
    domain = _gateway().shop_domain(store_url)
    if shop_for_domain(get_db(), domain) is None:
        return _page("Connection not completed", 200, error=True, store_url=store_url,
                     message="The store approved, but its keys did not reach us or did not work. "
                             "Try again, or paste keys below.",
                     show_connect=True, show_keys=True)
    return _page("Store connected", message=f"{domain} is connected: orders now arrive as they are placed.",
                 backorder_url=_backorder_url(domain))


@bp.route("/keys", methods=["GET", "POST"])
def keys() -> Any:
    if request.method == "GET":
        return _page("Paste WooCommerce keys", show_keys=True, store_url=request.args.get("store_url", "")[:200])
    check_csrf()
    store_url = (request.form.get("store_url") or "").strip()[:500]
    try:
        connected = _connect(store_url, request.form.get("consumer_key", "")[:200],
                             request.form.get("consumer_secret", "")[:200])
    except (ConnectRefused, ValidationError) as exc:
        return _page("Keys not saved", 400, message=exc.message, store_url=store_url, show_keys=True)
    except ConnectorError as exc:
        return _page("Keys not saved", 400, message=f"Could not connect: {exc.message}", store_url=store_url,
                     show_keys=True)
    return _after_connect(connected, _page("Store connected", message=f"{connected.domain} is connected.",
                                           backorder_url=_backorder_url(connected.domain)))


@bp.get("/snippet/<path:domain>")
def snippet(domain: str) -> Any:
    """A link block for a WordPress "Custom HTML" block or widget (the backorder page itself
    refuses to be framed, so a link, not an iframe)."""
    if shop_for_domain(get_db(), domain) is None:
        return jsonify(error={"code": "not_found", "message": "no connected store with this address"}), 404
    url = _backorder_url(domain)
    body = (
        f'<p class="backorder-connector"><a href="{url}" target="_blank" rel="noopener">'
        "Items you can order now and receive later</a></p>\n"
    )
    return body, 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "public, max-age=300"}


def register_woocommerce(app: Flask) -> None:
    """Register the blueprint on an app built by ``create_app`` (idempotent)."""
    if "woocommerce" not in app.blueprints:
        app.register_blueprint(bp)
