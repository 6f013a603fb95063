"""Verify what Shopify sends us: webhook deliveries, app-proxy requests, session tokens.

Each refusal is an exception that carries ``http_status`` so the web layer can answer without
knowing Shopify: 413 too big, 401 bad signature (Shopify requires 401 for a bad HMAC, also on the
compliance topics), 400 malformed. Verification uses the raw body bytes, before any parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from adapters.shopify.client import decode_session_jwt, sanitize_shop_domain
from connector.errors import SignatureError, ValidationError


class PayloadTooLarge(ValidationError):
    http_status = 413


class MalformedDelivery(ValidationError):
    """Missing headers, a body that is not a JSON object, a bad shop domain."""

    http_status = 400


class BadWebhookSignature(SignatureError):
    http_status = 401


class BadProxySignature(SignatureError):
    http_status = 401


class BadSessionToken(SignatureError):
    http_status = 401


@dataclass(frozen=True, slots=True)
class ShopifyDelivery:
    topic: str
    shop_domain: str
    event_id: str | None  # same event id on two deliveries = a duplicate
    webhook_id: str
    triggered_at: datetime | None
    payload: dict[str, Any] = field(repr=False)
    api_version: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts as well as werkzeug ``Headers``."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, val in headers.items():
            if key.lower() == lowered:
                return val
    return value


def webhook_hmac(raw_body: bytes, secret: str) -> str:
    """Base64 HMAC-SHA256 of the raw body, as in ``X-Shopify-Hmac-Sha256``."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify_webhook(
    raw_body: bytes, headers: Mapping[str, str], secret: str, max_bytes: int
) -> ShopifyDelivery:
    """Check size, then HMAC, then headers and JSON; return the delivery or raise with ``http_status``.

    The size check comes first so an oversized body is never hashed; the HMAC before everything
    else so an unauthenticated caller learns nothing about what we expect.
    """
    if len(raw_body) > max_bytes:
        raise PayloadTooLarge(f"webhook body of {len(raw_body)} bytes exceeds {max_bytes}", field="body")
    signature = _header(headers, "X-Shopify-Hmac-Sha256")
    if not signature:
        raise BadWebhookSignature("missing X-Shopify-Hmac-Sha256", field="X-Shopify-Hmac-Sha256")
    expected = webhook_hmac(raw_body, secret)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise BadWebhookSignature("webhook HMAC does not verify", field="X-Shopify-Hmac-Sha256")

    values: dict[str, str] = {}
    for name in ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"):
        value = _header(headers, name)
        if not value:
            raise MalformedDelivery(f"missing header {name}", field=name)
        values[name] = value
    try:
        shop = sanitize_shop_domain(values["X-Shopify-Shop-Domain"])
    except ValidationError as exc:
        raise MalformedDelivery(exc.message, field="X-Shopify-Shop-Domain") from exc

    triggered_raw = _header(headers, "X-Shopify-Triggered-At")
    triggered_at = None
    if triggered_raw:
        try:
            triggered_at = datetime.fromisoformat(triggered_raw.strip())
        except ValueError as exc:
            raise MalformedDelivery(
                "X-Shopify-Triggered-At is not ISO 8601", field="X-Shopify-Triggered-At"
            ) from exc
        if triggered_at.tzinfo is None:
            raise MalformedDelivery("X-Shopify-Triggered-At has no offset", field="X-Shopify-Triggered-At")

    try:
        # orjson: a third of the stdlib's time on a typical order (every delivery is parsed).
        payload = orjson.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedDelivery(f"webhook body is not JSON: {exc}", field="body") from exc
    if not isinstance(payload, dict):
        raise MalformedDelivery("webhook body is not a JSON object", field="body")
    return ShopifyDelivery(
        topic=values["X-Shopify-Topic"],
        shop_domain=shop,
        event_id=_header(headers, "X-Shopify-Event-Id"),
        webhook_id=values["X-Shopify-Webhook-Id"],
        triggered_at=triggered_at,
        payload=payload,
        api_version=_header(headers, "X-Shopify-API-Version"),
    )


def proxy_signature(query: Mapping[str, Any], secret: str) -> str:
    """Hex HMAC-SHA256 of the sorted ``key=value`` pairs (no separator, lists joined by ``,``)."""
    pairs = []
    for key, value in query.items():
        if key == "signature":
            continue
        joined = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
        pairs.append(f"{key}={joined}")
    message = "".join(sorted(pairs))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_app_proxy(query: Mapping[str, Any], secret: str) -> str:
    """Verify an app-proxy request's query and return its shop domain.

    ``query`` may be a plain dict (values str or list of str) or a werkzeug ``MultiDict``; for
    the latter every value of a repeated key is used, as Shopify signs them joined by ``,``.
    """
    getlist = getattr(query, "getlist", None)
    normalized: dict[str, Any] = {k: getlist(k) for k in query.keys()} if callable(getlist) else dict(query)
    given = normalized.get("signature")
    if isinstance(given, list | tuple):
        given = given[0] if given else None
    if not given or not isinstance(given, str):
        raise BadProxySignature("missing app-proxy signature", field="signature")
    if not hmac.compare_digest(proxy_signature(normalized, secret).encode(), given.encode()):
        raise BadProxySignature("app-proxy signature does not verify", field="signature")
    shop = normalized.get("shop")
    if isinstance(shop, list | tuple):
        shop = shop[0] if shop else None
    try:
        return sanitize_shop_domain(shop or "")
    except ValidationError as exc:
        raise MalformedDelivery(exc.message, field="shop") from exc


def decode_session_token(token: str, api_key: str, secret: str) -> str:
    """Verify an App Bridge session JWT and return the shop domain from its ``dest`` claim."""
    try:
        claims = decode_session_jwt(token, api_key, secret)
    except SignatureError as exc:
        raise BadSessionToken(exc.message, field="authorization") from exc
    dest = str(claims.get("dest", ""))
    try:
        return sanitize_shop_domain(dest)
    except ValidationError as exc:
        raise BadSessionToken(f"session token dest is not a shop: {dest!r}", field="dest") from exc
