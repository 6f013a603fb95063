"""Normalized records: what an adapter hands to the services.

Every platform payload (Shopify webhook or GraphQL node, WooCommerce REST object) is
translated into these plain, frozen dataclasses at the edge, so nothing past
``adapters/<platform>/`` ever sees a raw dict. Ids are strings because Shopify ids exceed
2**53 and WooCommerce ids are small ints: one type for both keeps the keys uniform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class OrderState(StrEnum):
    """What an order means for stock, independent of the platform's vocabulary.

    ``open`` reserves stock (Shopify unfulfilled/partially fulfilled, WooCommerce processing or
    on-hold); ``pending`` does not reserve yet (WooCommerce pending/failed, Shopify unpaid
    drafts); ``closed`` releases whatever was reserved (cancelled, refunded, trashed).
    ``fulfilled`` means shipped: nothing waits any more.
    """

    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"
    FULFILLED = "fulfilled"


@dataclass(frozen=True, slots=True)
class Address:
    name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    external_id: str
    quantity: int  # units still wanted (after removals/refunds), >= 0
    sku: str | None
    variant_external_id: str | None  # None for custom items or deleted variants
    product_external_id: str | None = None
    title: str | None = None
    unit_price_cents: int = 0
    fulfilled_quantity: int = 0
    backordered_hint: int | None = None  # the platform's own idea, never trusted


@dataclass(frozen=True, slots=True)
class OrderRecord:
    external_id: str
    number: str
    state: OrderState
    placed_at: datetime  # aware, UTC
    updated_at: datetime  # aware, UTC: the version used to ignore stale deliveries
    lines: tuple[OrderLineRecord, ...]
    customer_email: str | None = None
    customer_name: str | None = None
    customer_external_id: str | None = None
    ship_to: Address | None = None
    currency: str | None = None
    tags: tuple[str, ...] = ()
    graphql_id: str | None = None


@dataclass(frozen=True, slots=True)
class VariantRecord:
    external_id: str
    product_external_id: str | None
    sku: str | None
    title: str
    allows_backorder: bool  # Shopify inventoryPolicy CONTINUE; WooCommerce backorders notify|yes
    tracks_inventory: bool = True
    inventory_item_external_id: str | None = None
    price_cents: int = 0
    updated_at: datetime | None = None
    stock_quantity: int | None = None  # WooCommerce keeps stock on the product/variation
    graphql_id: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryLevelRecord:
    inventory_item_external_id: str
    location_external_id: str
    available: int
    on_hand: int | None = None
    incoming: int | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProductRecord:
    external_id: str
    title: str
    variants: tuple[VariantRecord, ...]
    updated_at: datetime | None = None
    tags: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LineStatusPush:
    """What the storefront is told about one order line (adapter turns it into tags/metafields/notes)."""

    line_external_id: str
    sku: str | None
    status: str  # allocated | backordered | preorder | dropship | cancelled | shipped
    eta: date | None


@dataclass(frozen=True, slots=True)
class OrderStatusPush:
    order_external_id: str
    backordered: bool
    lines: tuple[LineStatusPush, ...]
    note: str | None = None
    customer_note: str | None = None


@dataclass(frozen=True, slots=True)
class VariantStatusPush:
    variant_external_id: str
    product_external_id: str | None
    allow_backorder: bool
    status: str  # in_stock | backorder | preorder
    eta: date | None
    text: str  # short human text for the theme, e.g. "Ships by 12 March"
