"""WooCommerce's edge as a :class:`connector.ports.PlatformGateway`, plus what the connect flow
and the pull need from the adapter (the web layer and the services never import this module:
the composition root puts a :class:`WooGateway` in ``app.extensions["backorders.gateways"]``).

Store identity. ``Shop.domain`` of a WooCommerce shop is the store's home URL without scheme
and trailing slash, host lower-cased, default port dropped: ``https://Shop.example/`` ->
``shop.example``, ``http://127.0.0.1:8080/wp/`` -> ``127.0.0.1:8080/wp``. The same function turns
``X-WC-Webhook-Source`` (``home_url('/')``) into the delivery's shop key, so both always agree,
and a host-only store keeps the shopper page URL ``/shop/<domain>/backorders`` routable. The
full URL (with scheme) lives in the encrypted credentials as ``store_url``.

Event ids (dedupe). WooCommerce's ``X-WC-Webhook-Delivery-ID`` is ``wp_hash(webhook id . time())``:
a retry of the same delivery gets a *new* id, and two different deliveries of one webhook in the
same second get the *same* id. It is therefore both too fine (duplicates slip through) and too
coarse (distinct events collide), so it is not used as the key. The event id is
``"<resource>:<id>:<date_modified_gmt>:<content hash>"``: a retry, a manual resend, or the
``order.created`` + ``order.updated`` pair fired by one save carry the same version and the same
content and collapse into one stored event; two saves inside one second (``date_modified_gmt``
has one-second resolution) differ in content and are both kept, and the services apply the
later one last. Versions older than what the database holds are dropped by the services
(``updated_at``), so out-of-order deliveries end in the newest state. Deletions carry no version
(the body is ``{"id": N}``): their key uses the delivery id, and the gateway stamps the receipt
time into the payload (``_received_at``) as the deletion's version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from connector.domain.records import OrderRecord, OrderState, ProductRecord
from connector.errors import ConnectorError, MappingError, NotFound, ValidationError
from connector.ports import VerifiedDelivery

from .client import WooClient, check_store_url, is_loopback_host
from .mapping import order_from_payload, parse_gmt, product_from_payload, variant_from_payload
from .storefront import WEBHOOK_TOPICS, WooAuthKeys, WooStorefront, authorize_url, parse_auth_callback
from .webhooks import (
    DEFAULT_MAX_BYTES,
    WebhookPayloadInvalid,
    WooDelivery,
    WooPing,
    verify_webhook,
)

log = logging.getLogger(__name__)
PLATFORM = "woocommerce"
# shop_key of a delivery without X-WC-Webhook-Source (WooCommerce's creation ping sends none).
# Never a real domain (no parentheses in host names), so it finds no shop.
NO_SOURCE = "(no-source)"
_PING = re.compile(rb"webhook_id=[0-9]{1,20}")


class UnknownStore(NotFound):
    """A signed-looking delivery for a store we hold no secret for: nothing can be verified."""

    http_status = 404
    code = "unknown_shop"


class VariationsUnavailable(ConnectorError):
    """A variable product arrived but the gateway has no client to fetch its variations."""

    code = "variations_unavailable"


def store_domain(url: str) -> str:
    """``Shop.domain`` / shop key of a store URL (see the module docstring)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if not host:
        raise ValidationError(f"not a store URL: {url!r:.80}", field="url")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(f"not a store URL: {url!r:.80}", field="url") from None
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    netloc = host if port is None or port == default else f"{host}:{port}"
    return netloc + parts.path.rstrip("/")


def _version_hash(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:16]


class WooGateway:
    """``PlatformGateway`` for WooCommerce. Without a bound client it verifies and translates
    orders and simple products; :meth:`bind` (or :meth:`for_shop`) gives it one store's client
    so variable products get their variations fetched during processing."""

    platform = PLATFORM

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        client_options: Mapping[str, Any] | None = None,
        client: WooClient | None = None,
        allow_loopback: bool = True,
    ) -> None:
        self.max_bytes = max_bytes
        # Loopback (http allowed) is for the sandbox and development; a public deployment should
        # pass False so nobody can point the connect flow at the server's own ports.
        self.allow_loopback = allow_loopback
        self._now = now
        self.client_options = dict(client_options or {})  # WooClient kwargs: timeout, sleep, ...
        self.client = client

    # ------------------------------------------------------------------ PlatformGateway

    def shop_key(self, headers: Any) -> str | None:
        source = headers.get("X-WC-Webhook-Source")
        if not isinstance(source, str) or not source.strip():
            return NO_SOURCE
        try:
            return store_domain(source)
        except ValidationError:
            return None

    def verify(self, raw_body: bytes, headers: Any, secret: str | None) -> VerifiedDelivery:
        signature = headers.get("X-WC-Webhook-Signature")
        if not signature and _PING.fullmatch(raw_body.strip()):
            # The creation ping is unsigned and names no store: answer 200, store nothing.
            return VerifiedDelivery(PLATFORM, "ping", NO_SOURCE, "ping", {}, ping=True)
        source_key = self.shop_key(headers)
        if source_key in (None, NO_SOURCE):
            raise WebhookPayloadInvalid("missing or invalid X-WC-Webhook-Source header", field="X-WC-Webhook-Source")
        if not secret:
            raise UnknownStore(f"no connected WooCommerce store {source_key}")
        result = verify_webhook(raw_body, headers, secret, self.max_bytes)
        if isinstance(result, WooPing):  # signed ping: still just a ping
            return VerifiedDelivery(PLATFORM, "ping", str(source_key), "ping", {}, ping=True)
        return self._delivery(result, str(source_key))

    def _delivery(self, result: WooDelivery, shop_key: str) -> VerifiedDelivery:
        payload = result.payload
        resource_id = str(payload.get("id"))
        version = payload.get("date_modified_gmt")
        updated_at: datetime | None = None
        if result.event == "deleted":
            received = self._now().astimezone(UTC)
            payload = {**payload, "_received_at": received.isoformat()}
            updated_at = received
            event_id = f"{result.resource}:{resource_id}:deleted:{result.delivery_id or received.isoformat()}"
        elif isinstance(version, str) and version:
            try:
                updated_at = parse_gmt(version, "date_modified_gmt")
            except MappingError:
                raise WebhookPayloadInvalid("date_modified_gmt is not a date", field="date_modified_gmt") from None
            event_id = f"{result.resource}:{resource_id}:{version}:{_version_hash(payload)}"
        else:
            # No version at all (fresh orders can carry null): the content decides.
            event_id = f"{result.resource}:{resource_id}:-:{_version_hash(payload)}"
        return VerifiedDelivery(
            platform=PLATFORM,
            topic=result.topic,
            shop_key=shop_key,
            event_id=event_id[:128],
            payload=payload,
            resource_id=resource_id[:64],
            resource_updated_at=updated_at,
        )

    def translate(self, topic: str, payload: dict[str, Any]) -> list[object]:
        if topic in ("order.created", "order.updated", "order.restored"):
            return [order_from_payload(payload)]
        if topic == "order.deleted":
            return [deleted_order(payload)]
        if topic in ("product.created", "product.updated", "product.restored"):
            return [self._product(payload)]
        return []

    def _product(self, payload: dict[str, Any]) -> ProductRecord:
        kind = payload.get("type")
        if kind == "variation":
            parent = None
            if payload.get("manage_stock") == "parent" and self.client is not None:
                parent = self.client.get(f"products/{payload.get('parent_id')}")
            variant = variant_from_payload(payload, parent)
            product_id = variant.product_external_id or variant.external_id
            return ProductRecord(external_id=product_id, title=variant.title, variants=(variant,),
                                 updated_at=variant.updated_at, extra={"type": "variation"})
        if kind == "variable":
            if self.client is None:
                raise VariationsUnavailable(
                    f"variable product {payload.get('id')}: variations need the store's client "
                    "(process with gateway.for_shop(shop)); the next pull brings them"
                )
            variations = list(
                self.client.paginate(f"products/{payload.get('id')}/variations", {"orderby": "id", "order": "asc"})
            )
            return product_from_payload(payload, variations)
        return product_from_payload(payload)

    # ------------------------------------------------------------------ per-shop objects

    def client_for(self, store_url: str, consumer_key: str, consumer_secret: str,
                   query_string_auth: bool = False) -> WooClient:
        options = {"timeout": 30, **self.client_options}
        return WooClient(store_url, consumer_key, consumer_secret, query_string_auth=query_string_auth, **options)

    def storefront_for(self, shop: Any) -> WooStorefront:
        """A storefront for a ``Shop`` row (or anything with ``credentials``), keys decrypted."""
        creds = shop.credentials or {}
        try:
            return WooStorefront(self.client_for(creds["store_url"], creds["consumer_key"], creds["consumer_secret"],
                                                 bool(creds.get("query_string_auth"))))
        except KeyError as exc:
            raise ValidationError(f"shop {getattr(shop, 'domain', '?')} has no WooCommerce keys ({exc.args[0]})",
                                  field="credentials") from None

    def bind(self, client: WooClient) -> WooGateway:
        return WooGateway(max_bytes=self.max_bytes, now=self._now, client_options=self.client_options,
                          client=client, allow_loopback=self.allow_loopback)

    def for_shop(self, shop: Any) -> WooGateway:
        """This gateway bound to ``shop``'s client (pass it to ``process_pending``)."""
        return self.bind(self.storefront_for(shop).client)

    # ------------------------------------------------------------------ connect flow

    def normalize_store_url(self, url: str) -> str:
        """The store URL as used for API calls: https, or http on loopback only."""
        store_url = check_store_url(url)
        if not self.allow_loopback and is_loopback_host(urlsplit(store_url).hostname):
            raise ValidationError("store URL must be a public address", field="url")
        return store_url

    def shop_domain(self, store_url: str) -> str:
        return store_domain(store_url)

    def authorize_url(self, store_url: str, app_name: str, user_id: str, return_url: str, callback_url: str) -> str:
        return authorize_url(store_url, app_name, user_id, return_url, callback_url)

    def parse_auth_callback(self, body: bytes) -> WooAuthKeys:
        return parse_auth_callback(body)

    def check_keys(self, store_url: str, consumer_key: str, consumer_secret: str) -> None:
        """One read call with the keys; raises AuthError (refused) or PlatformError (REST off)."""
        client = self.client_for(store_url, consumer_key, consumer_secret)
        client.get("orders", {"per_page": 1})

    def register_webhooks(self, shop: Any, delivery_url: str) -> dict[str, int]:
        return self.storefront_for(shop).register_webhooks(delivery_url, shop.webhook_secret, WEBHOOK_TOPICS)


def deleted_order(payload: Mapping[str, Any]) -> OrderRecord:
    """``order.deleted`` (trashed or deleted for good): a closed order with no lines, versioned
    by the receipt time the gateway stamped (the body has nothing else)."""
    order_id = payload.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, int | str) or not str(order_id).isdigit():
        raise MappingError("order.deleted: id is missing", field="id")
    stamp = payload.get("_received_at")
    if not isinstance(stamp, str):
        raise MappingError("order.deleted: no receipt time stamped", field="_received_at")
    when = parse_gmt(stamp, "_received_at")
    return OrderRecord(external_id=str(order_id), number=str(order_id), state=OrderState.CLOSED,
                       placed_at=when, updated_at=when, lines=())


