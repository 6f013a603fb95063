"""Protocols the services need from the outside world; adapters implement them.

The services never import an adapter: the composition roots (bootstrap/, wsgi.py, jobs/) pass
implementations in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from connector.domain.records import (
    InventoryLevelRecord,
    OrderRecord,
    OrderStatusPush,
    ProductRecord,
    VariantStatusPush,
)


@dataclass(frozen=True, slots=True)
class OutboxEnvelope:
    """One outbox message as handed to a dispatcher (a plain copy, detached from the session)."""

    id: int
    shop_id: int
    kind: str
    target: str
    subject: str | None
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    created_at: datetime


class OutboxDispatcher(Protocol):
    """Delivers one message. Raises ``connector.errors.DeliveryError`` (retryable or not) on
    failure; returning normally means delivered. Must pass ``idempotency_key`` on to the
    receiver (Message-ID, Idempotency-Key header) so a redelivery after a crash is recognised."""

    def __call__(self, message: OutboxEnvelope) -> None: ...


class Storefront(Protocol):
    """What the services need from a store (Shopify, WooCommerce)."""

    def fetch_orders_since(self, updated_after: datetime | None) -> Iterator[OrderRecord]: ...

    def fetch_products(self) -> Iterator[ProductRecord]: ...

    def fetch_inventory_levels(self) -> Iterator[InventoryLevelRecord]: ...

    def push_variants(self, pushes: list[VariantStatusPush]) -> None: ...

    def push_orders(self, pushes: list[OrderStatusPush]) -> None: ...

    def fulfil_lines(
        self, order_external_id: str, quantities: dict[str, int], tracking: dict[str, str | None]
    ) -> None:
        """Mark ``{line external id: units}`` shipped on the store, with the carrier's tracking."""
        ...

    def cancel_lines(
        self, order_external_id: str, quantities: dict[str, int], reason: str, reference: str
    ) -> None:
        """Cancel and refund ``{line external id: units}`` not yet shipped, on the store.

        ``reference`` (the outbox idempotency key) is recorded with the refund; a refund already
        carrying it means done, so a retry never refunds twice.
        """
        ...


Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    """A webhook delivery whose signature checked out, reduced to what the services need.

    ``shop_key`` identifies the store (Shopify shop domain, WooCommerce store URL); ``event_id``
    is the platform's delivery/event id used to drop duplicates; ``resource_updated_at`` orders
    deliveries of the same resource so a late one never overwrites newer data.
    """

    platform: str
    topic: str
    shop_key: str
    event_id: str
    payload: dict[str, Any]
    resource_id: str | None = None
    resource_updated_at: datetime | None = None
    ping: bool = False  # WooCommerce's unsigned creation ping: answer 200, store nothing
    # The signed body, when ``payload`` is exactly its JSON: stored as received, which spares
    # re-serialising a 10 KB order on every delivery. None when the gateway adjusted the payload.
    raw_body: bytes | None = None


class PlatformGateway(Protocol):
    """One platform's edge: verify deliveries, translate payloads, open a storefront client.

    Implemented in ``adapters/<platform>/gateway.py``; the web layer and the services only see
    this protocol. Verification errors carry ``http_status`` (400, 401, 413).
    """

    platform: str

    def shop_key(self, headers: Any) -> str | None:
        """The store a delivery claims to come from (before its signature is checked)."""
        ...

    def verify(self, raw_body: bytes, headers: Any, secret: str | None) -> VerifiedDelivery: ...

    def translate(self, topic: str, payload: dict[str, Any]) -> list[object]:
        """Records for a topic: OrderRecord, ProductRecord or InventoryLevelRecord (or [])."""
        ...
