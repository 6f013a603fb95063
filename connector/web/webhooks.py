"""Webhook endpoints for every platform: verify, dedupe, store, answer 200 within milliseconds.

Order of checks (cheapest and safest first): body size (413) → the store the delivery names →
signature over the raw body (401) → payload shape (400) → dedupe on the event id → store.
Nothing touches the database before the signature is checked, except the one read of the
shop's webhook secret that the check needs. Processing happens after the response (a kick on
a small thread pool, and the ``process_webhooks`` job as the safety net).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from connector.errors import ConnectorError
from connector.ports import PlatformGateway
from connector.services.webhooks import ShopLookup, store_delivery

bp = Blueprint("webhooks", __name__)
_STORED = b'{"status":"stored"}\n'
_DUPLICATE = b'{"status":"duplicate"}\n'
log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> Any:
    return jsonify(error={"code": code, "message": message}), status


@bp.post("/webhooks/<platform>")
def receive(platform: str) -> Any:
    gateways: dict[str, PlatformGateway] = current_app.extensions.get("backorders.gateways", {})
    gateway = gateways.get(platform)
    if gateway is None:
        return _error(404, "unknown_platform", f"no webhook endpoint for {platform!r}")
    settings = current_app.extensions["backorders.settings"]
    length = request.content_length
    if length is not None and length > settings.webhook_max_bytes:
        return _error(413, "too_large", f"body over {settings.webhook_max_bytes} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > settings.webhook_max_bytes:
        return _error(413, "too_large", f"body over {settings.webhook_max_bytes} bytes")
    db = current_app.extensions["backorders.db"]
    shop_key = gateway.shop_key(request.headers)
    if not shop_key:
        return _error(400, "missing_headers", "the delivery does not say which store sent it")
    lookup: ShopLookup = current_app.extensions.setdefault("backorders.shop_lookup", ShopLookup())
    shop, cached = lookup(db, platform, shop_key)
    try:
        try:
            delivery = gateway.verify(raw, request.headers, shop[2] if shop else None)
        except ConnectorError:
            if not cached:
                raise
            shop, _ = lookup(db, platform, shop_key, fresh=True)  # the secret may have just changed
            delivery = gateway.verify(raw, request.headers, shop[2] if shop else None)
    except ConnectorError as exc:
        status = int(getattr(exc, "http_status", 400))
        return _error(status, exc.code, exc.message)
    if delivery.ping:
        return "", 200
    hook: Callable[[Any, int | None, Any], Any] | None = current_app.extensions.get(
        f"backorders.lifecycle.{platform}")
    if shop is None:
        # Signed by the app, but for a store we do not know (never installed, or data deleted).
        # The platform's lifecycle hook may still answer it: privacy webhooks must succeed.
        handled = hook(delivery, None, current_app) if hook is not None else None
        return handled if handled is not None else _error(404, "unknown_shop", f"no installed store {shop_key}")
    shop_id, shop_status, _ = shop
    if hook is not None:
        handled = hook(delivery, shop_id, current_app)
        if handled is not None:
            lookup.forget()  # a lifecycle topic changed the shop: no cached status may outlive it
            return handled
    if shop_status != "installed":
        return jsonify(status="ignored", reason=f"store is {shop_status}"), 200
    now = datetime.now(UTC)
    stored = store_delivery(db, shop_id, delivery, now, current_app.extensions.get("backorders.webhook_writer"))
    if stored:
        kick = current_app.extensions.get("backorders.kick")
        if kick is not None:
            kick(platform, shop_id)
    # Fixed bodies: this answer is sent for every delivery, no need to serialise it each time.
    return current_app.response_class(_STORED if stored else _DUPLICATE, status=200, mimetype="application/json")
