"""The sandbox's in-memory shop data and the two ways Shopify shows it.

``Shop`` holds products, variants, locations, inventory levels, orders, metafields and webhook
subscriptions. ``rest_*`` functions render REST-shaped webhook payloads from the checked-in
skeletons in ``templates/`` (every field a real payload has, nulls included); ``gql_*``
functions render the GraphQL views the resolvers return.

Ids are large on purpose (above 2**53) so any code that turns them into floats breaks in tests.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"
_ids = itertools.count(9_007_199_254_741_000)


def next_id() -> int:
    return next(_ids)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else "-" + money(-cents)


def gid(kind: str, num: int) -> str:
    return f"gid://shopify/{kind}/{num}"


@cache
def _template(name: str) -> dict[str, Any]:
    return json.loads((TEMPLATES / f"{name}.json").read_text())


def template(name: str) -> dict[str, Any]:
    return copy.deepcopy(_template(name))


@dataclass
class Variant:
    id: int
    product_id: int
    title: str
    sku: str | None
    price_cents: int
    inventory_policy: str = "deny"  # REST spelling; GraphQL shows DENY/CONTINUE
    inventory_item_id: int = field(default_factory=next_id)
    tracked: bool = True
    position: int = 1
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Product:
    id: int
    title: str
    handle: str
    variants: list[Variant]
    tags: list[str] = field(default_factory=list)
    vendor: str = "Sandbox Supplies"
    status: str = "active"
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Level:
    inventory_item_id: int
    location_id: int
    available: int
    on_hand: int
    incoming: int = 0
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class LineItem:
    id: int
    title: str
    quantity: int
    price_cents: int
    sku: str | None
    variant_id: int | None
    product_id: int | None
    variant_title: str | None = None
    current_quantity: int | None = None
    fulfilled: int = 0
    fulfillment_order_line_id: int = field(default_factory=next_id)

    @property
    def current(self) -> int:
        return self.quantity if self.current_quantity is None else self.current_quantity


@dataclass
class Order:
    id: int
    number: int
    email: str | None
    line_items: list[LineItem]
    customer: dict[str, Any] | None
    shipping_address: dict[str, Any] | None
    currency: str = "USD"
    financial_status: str = "paid"
    fulfillment_status: str | None = None
    tags: list[str] = field(default_factory=list)
    note: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    closed_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    fulfillment_order_id: int = field(default_factory=next_id)
    location_id: int | None = None
    fulfillments: list[Fulfillment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)

    @property
    def refunded_cents(self) -> int:
        """Money actually returned: the successful REFUND transactions (not the refunded items)."""
        return sum(t.amount_cents for t in self.transactions if t.kind == "REFUND" and t.status == "SUCCESS")

    def refundable_cents(self, parent: Transaction) -> int:
        """What is left to refund on a SALE/CAPTURE transaction."""
        taken = sum(t.amount_cents for t in self.transactions
                    if t.kind == "REFUND" and t.status == "SUCCESS" and t.parent_id == parent.id)
        return max(0, parent.amount_cents - taken)

    @property
    def name(self) -> str:
        return f"#{self.number}"


@dataclass
class Fulfillment:
    id: int
    quantities: dict[int, int]  # line item id -> units shipped
    tracking_number: str | None = None
    tracking_company: str | None = None
    tracking_url: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Transaction:
    """A payment on an order: the SALE when it was paid, a REFUND (child of the SALE) per refund."""

    id: int
    kind: str  # OrderTransactionKind: SALE, REFUND, ...
    amount_cents: int
    gateway: str = "bogus"  # Shopify's test payment gateway
    status: str = "SUCCESS"
    parent_id: int | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Refund:
    """A ``refundCreate``: the units taken off the order (its ``currentQuantity`` drops) and the
    money returned, which is only what its ``transactions`` carry (none: nothing goes back)."""

    id: int
    quantities: dict[int, int]  # line item id -> units refunded
    restock_type: dict[int, str]  # line item id -> RefundLineItemRestockType
    amount_cents: int  # the sum of its REFUND transactions
    note: str | None = None
    notify: bool = False
    created_at: datetime = field(default_factory=utcnow)
    transactions: list[Transaction] = field(default_factory=list)


@dataclass
class Subscription:
    id: int
    topic: str  # GraphQL enum, e.g. ORDERS_CREATE
    callback_url: str


@dataclass
class Shop:
    domain: str
    name: str = "Sandbox Shop"
    currency: str = "USD"
    iana_timezone: str = "America/New_York"
    id: int = field(default_factory=next_id)
    locations: dict[int, str] = field(default_factory=dict)
    products: dict[int, Product] = field(default_factory=dict)
    levels: dict[tuple[int, int], Level] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    metafields: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    subscriptions: list[Subscription] = field(default_factory=list)
    next_order_number: int = 1001

    def __post_init__(self) -> None:
        if not self.locations:
            self.locations[next_id()] = "Main warehouse"

    @property
    def primary_location_id(self) -> int:
        return next(iter(self.locations))

    def variants(self) -> list[Variant]:
        return [v for p in self.products.values() for v in p.variants]

    def variant(self, variant_id: int) -> Variant | None:
        return next((v for v in self.variants() if v.id == variant_id), None)

    def variant_by_sku(self, sku: str) -> Variant | None:
        return next((v for v in self.variants() if v.sku == sku), None)

    def product_of(self, variant: Variant) -> Product:
        return self.products[variant.product_id]


# ---------------------------------------------------------------------------------------------
# REST-shaped webhook payloads
# ---------------------------------------------------------------------------------------------


def _money_set(amount: str, currency: str) -> dict[str, Any]:
    return {
        "shop_money": {"amount": amount, "currency_code": currency},
        "presentment_money": {"amount": amount, "currency_code": currency},
    }


def _address(addr: dict[str, Any] | None) -> dict[str, Any] | None:
    """A REST address: the schema's skeleton (null only where Shopify allows it) with our values."""
    if addr is None:
        return None
    out = template("order")["shipping_address"]
    out.update({k: v for k, v in addr.items() if v is not None})
    if not out.get("name"):
        out["name"] = " ".join(p for p in (out.get("first_name"), out.get("last_name")) if p)
    return out


def rest_line_item(shop: Shop, li: LineItem) -> dict[str, Any]:
    d = template("order_line_item")
    price = money(li.price_cents)
    variant = shop.variant(li.variant_id) if li.variant_id else None
    d.update(
        id=li.id,
        admin_graphql_api_id=gid("LineItem", li.id),
        title=li.title,
        name=li.title if not li.variant_title else f"{li.title} - {li.variant_title}",
        variant_title=li.variant_title,
        quantity=li.quantity,
        current_quantity=li.current,
        fulfillable_quantity=max(0, li.current - li.fulfilled),
        fulfillment_status="fulfilled"
        if li.current and li.fulfilled >= li.current
        else "partial"
        if li.fulfilled
        else None,
        fulfillment_service="manual",
        price=price,
        price_set=_money_set(price, shop.currency),
        pre_tax_price=price,
        pre_tax_price_set=_money_set(price, shop.currency),
        total_discount="0.00",
        total_discount_set=_money_set("0.00", shop.currency),
        product_exists=li.product_id is not None and li.product_id in shop.products,
        product_id=li.product_id,
        variant_id=li.variant_id,
        sku=li.sku or "",  # the 2026-04 schema types sku as a string: custom items send ""
        requires_shipping=True,
        taxable=True,
        grams=0,
        vendor=shop.products[li.product_id].vendor if li.product_id in shop.products else None,
        variant_inventory_management="shopify" if variant and variant.tracked else None,
    )
    return d


def rest_order(shop: Shop, o: Order) -> dict[str, Any]:
    d = template("order")
    subtotal = sum(li.price_cents * li.quantity for li in o.line_items)
    current = sum(li.price_cents * li.current for li in o.line_items)
    for key, value in list(d.items()):  # every *_set money bag gets a real amount and currency
        if isinstance(value, dict) and "shop_money" in value:
            d[key] = _money_set("0.00", o.currency)
    for key, cents in (
        ("current_subtotal_price", current),
        ("current_total_price", current),
        ("total_outstanding", 0 if o.financial_status == "paid" else current),
        ("subtotal_price", subtotal),
        ("total_price", subtotal),
        ("total_line_items_price", subtotal),
    ):
        d[key] = money(cents)
        if f"{key}_set" in d:
            d[f"{key}_set"] = _money_set(money(cents), o.currency)
    for key in (
        "current_total_discounts",
        "current_total_tax",
        "total_discounts",
        "total_tax",
        "total_tip_received",
    ):
        d[key] = "0.00"
    for key in (
        "current_total_duties_set",
        "original_total_duties_set",
        "current_total_additional_fees_set",
        "original_total_additional_fees_set",
    ):
        d[key] = None
    customer = None
    if o.customer is not None:
        customer = template("order")["customer"]
        addr = _address(o.shipping_address) or {}
        default_address = customer["default_address"]
        default_address.update({k: v for k, v in addr.items() if k in default_address and v is not None})
        default_address.update(
            id=o.customer["id"] + 1,
            customer_id=o.customer["id"],
            default=True,
            country_name=addr.get("country") or "",
            phone=addr.get("phone") or "",
        )
        customer.update(
            id=o.customer["id"],
            admin_graphql_api_id=gid("Customer", o.customer["id"]),
            email=o.email or "",
            first_name=o.customer.get("first_name") or "",
            last_name=o.customer.get("last_name") or "",
            state="enabled",
            verified_email=True,
            currency=o.currency,
            created_at=iso(o.created_at),
            updated_at=iso(o.updated_at),
            email_marketing_consent={
                "state": "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": None,
            },
            marketing_opt_in_level="single_opt_in",
        )
    d.update(
        id=o.id,
        admin_graphql_api_id=gid("Order", o.id),
        name=o.name,
        number=o.number - 1000,
        order_number=o.number,
        confirmation_number=o.token[:9].upper(),
        confirmed=True,
        email=o.email or "",
        contact_email=o.email or "",
        created_at=iso(o.created_at),
        processed_at=iso(o.created_at),
        updated_at=iso(o.updated_at),
        cancelled_at=iso(o.cancelled_at),
        cancel_reason=o.cancel_reason,
        closed_at=iso(o.closed_at),
        currency=o.currency,
        presentment_currency=o.currency,
        financial_status=o.financial_status,
        fulfillment_status=o.fulfillment_status,
        tags=", ".join(o.tags),
        note=o.note,
        token=o.token,
        source_name="web",
        order_status_url=f"https://{shop.domain}/{shop.id}/orders/{o.token}/authenticate?key=sandbox",
        merchant_business_entity_id=f"MTI{shop.id}",
        customer=customer,
        shipping_address=_address(o.shipping_address),
        billing_address=_address(o.shipping_address),
        line_items=[rest_line_item(shop, li) for li in o.line_items],
        fulfillments=[rest_fulfillment(shop, o, f) for f in o.fulfillments],
        payment_gateway_names=["manual"],
        total_weight=0,
    )
    return d


def rest_fulfillment(shop: Shop, o: Order, f: Fulfillment) -> dict[str, Any]:
    d = template("order_fulfillment")
    lines = []
    for li in o.line_items:
        if f.quantities.get(li.id):
            item = rest_line_item(shop, li)
            item["quantity"] = f.quantities[li.id]
            lines.append(item)
    d.update(
        id=f.id,
        admin_graphql_api_id=gid("Fulfillment", f.id),
        created_at=iso(f.created_at),
        updated_at=iso(f.created_at),
        order_id=o.id,
        location_id=o.location_id or shop.primary_location_id,
        name=f"{o.name}.{o.fulfillments.index(f) + 1}",
        service="manual",
        status="success",
        tracking_company=f.tracking_company,
        tracking_number=f.tracking_number,
        tracking_numbers=[f.tracking_number] if f.tracking_number else [],
        tracking_url=f.tracking_url,
        tracking_urls=[f.tracking_url] if f.tracking_url else [],
        line_items=lines,
    )
    return d


def rest_variant(v: Variant) -> dict[str, Any]:
    d = template("product_variant")
    d.update(
        id=v.id,
        admin_graphql_api_id=gid("ProductVariant", v.id),
        product_id=v.product_id,
        title=v.title,
        sku=v.sku,
        price=money(v.price_cents),
        compare_at_price=None,
        inventory_policy=v.inventory_policy,
        inventory_management="shopify" if v.tracked else None,
        inventory_item_id=v.inventory_item_id,
        position=v.position,
        option1=v.title,
        option2=None,
        option3=None,
        barcode=None,
        image_id=None,
        taxable=True,
        created_at=iso(v.created_at),
        updated_at=iso(v.updated_at),
    )
    return d


def rest_product(shop: Shop, p: Product) -> dict[str, Any]:
    d = template("product")
    variants = []
    for v in p.variants:
        rv = rest_variant(v)
        total = sum(lv.available for (item, _), lv in shop.levels.items() if item == v.inventory_item_id)
        rv["inventory_quantity"] = total
        rv["old_inventory_quantity"] = total
        variants.append(rv)
    d.update(
        id=p.id,
        admin_graphql_api_id=gid("Product", p.id),
        title=p.title,
        handle=p.handle,
        body_html="",
        vendor=p.vendor,
        product_type="",
        status=p.status,
        tags=", ".join(p.tags),
        created_at=iso(p.created_at),
        updated_at=iso(p.updated_at),
        published_at=iso(p.created_at),
        published_scope="global",
        template_suffix=None,
        category=None,
        image=_image(p),
        variants=variants,
        variant_gids=[
            {"admin_graphql_api_id": gid("ProductVariant", v.id), "updated_at": iso(v.updated_at)}
            for v in p.variants
        ],
        options=[],
        images=[_image(p)],
        media=[],
    )
    return d


def _image(p: Product) -> dict[str, Any]:
    image = template("product")["image"]
    image_id = p.id + 1
    image.update(
        id=image_id,
        admin_graphql_api_id=gid("ProductImage", image_id),
        product_id=p.id,
        position=1,
        src=f"https://cdn.shopify.com/s/files/1/sandbox/{p.handle}.jpg",
        width=800,
        height=800,
        alt=None,
        variant_ids=[],
        created_at=iso(p.created_at),
        updated_at=iso(p.updated_at),
    )
    return image


def rest_inventory_level(level: Level) -> dict[str, Any]:
    d = template("inventory_level")
    d.update(
        admin_graphql_api_id=f"gid://shopify/InventoryLevel/{level.location_id}?inventory_item_id={level.inventory_item_id}",
        available=level.available,
        inventory_item_id=level.inventory_item_id,
        location_id=level.location_id,
        updated_at=iso(level.updated_at),
    )
    return d


def rest_shop(shop: Shop) -> dict[str, Any]:
    """The shop object, as in app/uninstalled and shop/update payloads."""
    d = template("shop")
    d.update(
        id=shop.id,
        name=shop.name,
        domain=shop.domain,
        myshopify_domain=shop.domain,
        email=f"owner@{shop.domain}",
        customer_email=f"support@{shop.domain}",
        shop_owner="Sandbox Owner",
        currency=shop.currency,
        enabled_presentment_currencies=[shop.currency],
        money_format="${{amount}}",
        money_with_currency_format="${{amount}} " + shop.currency,
        money_in_emails_format="${{amount}}",
        money_with_currency_in_emails_format="${{amount}} " + shop.currency,
        country="US",
        country_code="US",
        country_name="United States",
        primary_locale="en",
        primary_location_id=shop.primary_location_id,
        multi_location_enabled=len(shop.locations) > 1,
        plan_name="basic",
        plan_display_name="Basic",
        timezone=f"(GMT) {shop.iana_timezone}",
        iana_timezone=shop.iana_timezone,
        weight_unit="kg",
        created_at=iso(utcnow()),
        updated_at=iso(utcnow()),
    )
    return d
