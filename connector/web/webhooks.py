"""Webhook endpoints for every platform: verify, dedupe, store, answer 200 within milliseconds.

Order of checks (cheapest and safest first): body size (413) → the store the delivery names →
signature over the raw body (401) → payload shape (400) → dedupe on the event id → store.
Nothing touches the database before the signature is checked, except the one read of the
shop's webhook secret that the check needs. Processing happens after the response (a kick on
a small thread pool, and the ``process_webhooks`` job as the safety net).

The ordinary delivery (a signed event of an installed store) is answered below Flask by
``connector.web.webhook_fast_path``, through the same steps (``verified``, ``store_and_kick``);
the view below answers everything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from connector.errors import ConnectorError
from connector.ports import PlatformGateway, VerifiedDelivery
from connector.services.webhooks import ShopLookup, store_delivery

bp = Blueprint("webhooks", __name__)
_STORED = b'{"status":"stored"}\n'
_DUPLICATE = b'{"status":"duplicate"}\n'
log = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> Any:
    return jsonify(error={"code": code, "message": message}), status


@bp.post("/webhooks/<platform>")
def receive(platform: str) -> Any:
    """Every delivery the fast path (``connector.web.webhook_fast_path``) did not answer itself:
    the refusals, pings, lifecycle and privacy topics, stores we do not know or that are not
    installed; and every delivery when the app runs without the fast path."""
    extensions = current_app.extensions
    gateways: dict[str, PlatformGateway] = extensions.get("backorders.gateways", {})
    gateway = gateways.get(platform)
    if gateway is None:
        return _error(404, "unknown_platform", f"no webhook endpoint for {platform!r}")
    settings = extensions["backorders.settings"]
    length = request.content_length
    if length is not None and length > settings.webhook_max_bytes:
        return _error(413, "too_large", f"body over {settings.webhook_max_bytes} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > settings.webhook_max_bytes:
        return _error(413, "too_large", f"body over {settings.webhook_max_bytes} bytes")
    shop_key = gateway.shop_key(request.headers)
    if not shop_key:
        return _error(400, "missing_headers", "the delivery does not say which store sent it")
    try:
        shop, delivery = verified(extensions, platform, gateway, shop_key, raw, request.headers)
    except ConnectorError as exc:
        status = int(getattr(exc, "http_status", 400))
        return _error(status, exc.code, exc.message)
    if delivery.ping:
        return "", 200
    hook: Callable[[Any, int | None, Any], Any] | None = extensions.get(f"backorders.lifecycle.{platform}")
    if shop is None:
        # Signed by the app, but for a store we do not know (never installed, or data deleted).
        # The platform's lifecycle hook may still answer it: privacy webhooks must succeed.
        handled = hook(delivery, None, current_app) if hook is not None else None
        return handled if handled is not None else _error(404, "unknown_shop", f"no installed store {shop_key}")
    shop_id, shop_status, _ = shop
    if hook is not None:
        handled = hook(delivery, shop_id, current_app)
        if handled is not None:
            _lookup(extensions).forget()  # a lifecycle topic changed the shop: no cached status may outlive it
            return handled
    if shop_status != "installed":
        return jsonify(status="ignored", reason=f"store is {shop_status}"), 200
    return current_app.response_class(store_and_kick(extensions, platform, shop_id, delivery), status=200,
                                      mimetype="application/json")


# ---------------------------------------------------------------------------------------------
# the steps the view and the fast path share
# ---------------------------------------------------------------------------------------------


def _lookup(extensions: dict[str, Any]) -> ShopLookup:
    lookup: ShopLookup = extensions.setdefault("backorders.shop_lookup", ShopLookup())
    return lookup


def verified(extensions: dict[str, Any], platform: str, gateway: PlatformGateway, shop_key: str, raw: bytes,
             headers: Any) -> tuple[tuple[int, str, str | None] | None, VerifiedDelivery]:
    """The store ``shop_key`` names (id, status, webhook secret; None when we hold none) and the
    verified delivery. Raises the gateway's ``ConnectorError`` (with ``http_status``) when the
    delivery is refused. Nothing but the shop's row is read before the signature is checked."""
    db = extensions["backorders.db"]
    lookup = _lookup(extensions)
    shop, cached = lookup(db, platform, shop_key)
    try:
        delivery = gateway.verify(raw, headers, shop[2] if shop else None)
    except ConnectorError:
        if not cached:
            raise
        shop, _ = lookup(db, platform, shop_key, fresh=True)  # the secret may have just changed
        delivery = gateway.verify(raw, headers, shop[2] if shop else None)
    return shop, delivery


def lifecycle_claims(extensions: dict[str, Any], platform: str, topic: str) -> bool:
    """Whether the platform's lifecycle hook may answer ``topic`` itself (uninstall, privacy):
    such a delivery is the view's. A hook that does not list its topics claims them all."""
    if extensions.get(f"backorders.lifecycle.{platform}") is None:
        return False
    topics = extensions.get(f"backorders.lifecycle_topics.{platform}")
    return topics is None or topic in topics


def store_and_kick(extensions: dict[str, Any], platform: str, shop_id: int, delivery: VerifiedDelivery) -> bytes:
    """Store a verified delivery of an installed store, kick its processing, and return the
    answer's body (stored or duplicate)."""
    stored = store_delivery(extensions["backorders.db"], shop_id, delivery, datetime.now(UTC),
                            extensions.get("backorders.webhook_writer"))
    if stored:
        kick = extensions.get("backorders.kick")
        if kick is not None:
            kick(platform, shop_id)
    # Fixed bodies: this answer is sent for every delivery, no need to serialise it each time.
    return _STORED if stored else _DUPLICATE
