"""Pure translation of WooCommerce REST v3 objects into normalized records.

Everything here is a function of its arguments: no I/O, no clock. Malformed input raises
:class:`connector.errors.MappingError` naming the offending field (``line_items[2].quantity``),
never ``KeyError``/``TypeError``, so one bad payload becomes a clear, storable error.

WooCommerce facts this relies on (see ``shared/design/platforms.md``):

* ``*_gmt`` dates carry no offset (``"2026-11-27T06:14:39"``) and are UTC; the non-gmt twins
  are in the site's timezone and are ignored here.
* ``line_items[].quantity`` is the ordered quantity; refunded quantities live in refund objects
  that the order payload does not expand, so they are not subtracted here.
* The core "Backordered" line meta is written only for stock-managed products with
  ``backorders == "notify"``; its *key* is translated into the store language. It is therefore
  recognised by its English key or, failing that, by shape (see :func:`_backordered_hint`), and
  only ever reported as ``backordered_hint``: the services compute backorders themselves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connector.domain.records import (
    Address,
    OrderLineRecord,
    OrderRecord,
    OrderState,
    ProductRecord,
    VariantRecord,
)
from connector.errors import MappingError

ORDER_STATES: dict[str, OrderState] = {
    "processing": OrderState.OPEN,
    "on-hold": OrderState.OPEN,
    "pending": OrderState.PENDING,
    "failed": OrderState.PENDING,
    "checkout-draft": OrderState.PENDING,  # block checkout drafts (WooCommerce >= 6.x)
    "cancelled": OrderState.CLOSED,
    "refunded": OrderState.CLOSED,
    "trash": OrderState.CLOSED,
    "completed": OrderState.FULFILLED,
}

BACKORDER_SETTINGS = ("no", "notify", "yes")
STOCK_STATUSES = ("instock", "outofstock", "onbackorder")
# English core key; translated stores are caught by the value-shape rule instead.
BACKORDERED_META_KEYS = frozenset({"backordered"})
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def _fail(field: str, problem: str) -> MappingError:
    return MappingError(f"WooCommerce payload: {field} {problem}", field=field)


def _mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(field, f"must be an object, got {type(value).__name__}")
    return value


def _get(obj: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in obj:
        raise _fail(field, "is missing")
    return obj[key]


def _int(value: object, field: str, *, minimum: int | None = None) -> int:
    """An integer from an int or a decimal-digit string (WooCommerce mixes both)."""
    if isinstance(value, bool):
        raise _fail(field, "must be an integer, got a boolean")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        result = int(value.strip())
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
        result = int(value)
    else:
        raise _fail(field, f"must be an integer, got {value!r:.40}")
    if minimum is not None and result < minimum:
        raise _fail(field, f"must be >= {minimum}, got {result}")
    return result


def _id(value: object, field: str) -> str:
    return str(_int(value, field, minimum=1))


def _optional_ref(value: object, field: str) -> str | None:
    """Product/variation/customer references where 0 (or null) means "none"."""
    if value is None:
        return None
    number = _int(value, field, minimum=0)
    return str(number) if number else None


def _str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise _fail(field, f"must be a string, got {type(value).__name__}")
    return value


def _optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    text = _str(value, field).strip()
    return text or None


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(field, f"must be true or false, got {value!r:.40}")
    return value


def _cents(value: object, field: str) -> int:
    """Money (``"24.50"``, ``24.5``, ``""``) to integer cents, half up; empty means 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(field, f"must be a decimal amount, got {type(value).__name__}")
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or abs(amount) >= Decimal(10) ** 15:
            raise InvalidOperation
        return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError, ArithmeticError):
        raise _fail(field, f"must be a decimal amount, got {value!r:.40}") from None


def parse_gmt(value: object, field: str) -> datetime:
    """A WooCommerce ``*_gmt`` timestamp as an aware UTC datetime.

    The API omits the offset on gmt fields; an explicit offset, if present, is honoured.
    """
    text = _str(value, field).strip()
    if not text or len(text) > 40:
        raise _fail(field, f"must be an ISO 8601 date, got {text!r:.40}")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise _fail(field, f"must be an ISO 8601 date, got {text!r:.40}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _fail(field, f"is out of range: {text!r:.40}") from None


def _optional_gmt(obj: Mapping[str, Any], key: str, field: str) -> datetime | None:
    value = obj.get(key)
    return None if value in (None, "") else parse_gmt(value, field)


def _list(value: object, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(field, f"must be a list, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- orders


def order_from_payload(payload: object) -> OrderRecord:
    """Translate a REST v3 order (GET /orders/{id} or an ``order.*`` webhook body)."""
    order = _mapping(payload, "order")
    order_id = _id(_get(order, "id", "id"), "id")
    status = _str(_get(order, "status", "status"), "status")
    if status not in ORDER_STATES:
        raise _fail("status", f"is not a known order status: {status!r:.40}")
    state = ORDER_STATES[status]
    raw_number = order.get("number")
    if isinstance(raw_number, int) and not isinstance(raw_number, bool):
        raw_number = str(raw_number)  # sequential-number plugins sometimes send an int
    number = _optional_str(raw_number, "number") or order_id

    placed_at = parse_gmt(_get(order, "date_created_gmt", "date_created_gmt"), "date_created_gmt")
    # Freshly created orders can carry date_modified_gmt == null in webhook bodies.
    updated_at = _optional_gmt(order, "date_modified_gmt", "date_modified_gmt") or placed_at

    lines = tuple(
        _line_from_payload(item, f"line_items[{index}]", fulfilled=state is OrderState.FULFILLED)
        for index, item in enumerate(_list(_get(order, "line_items", "line_items"), "line_items"))
    )

    billing = _mapping(order.get("billing") or {}, "billing")
    first = _optional_str(billing.get("first_name"), "billing.first_name")
    last = _optional_str(billing.get("last_name"), "billing.last_name")
    customer_name = " ".join(part for part in (first, last) if part) or None
    currency = _optional_str(order.get("currency"), "currency")

    return OrderRecord(
        external_id=order_id,
        number=number,
        state=state,
        placed_at=placed_at,
        updated_at=updated_at,
        lines=lines,
        customer_email=_optional_str(billing.get("email"), "billing.email"),
        customer_name=customer_name,
        customer_external_id=_optional_ref(order.get("customer_id"), "customer_id"),
        ship_to=_address(order.get("shipping"), "shipping"),
        currency=currency.upper() if currency else None,
    )


def _line_from_payload(payload: object, field: str, *, fulfilled: bool) -> OrderLineRecord:
    item = _mapping(payload, field)
    quantity = _int(_get(item, "quantity", f"{field}.quantity"), f"{field}.quantity", minimum=0)
    product_id = _optional_ref(item.get("product_id"), f"{field}.product_id")
    variation_id = _optional_ref(item.get("variation_id"), f"{field}.variation_id")
    return OrderLineRecord(
        external_id=_id(_get(item, "id", f"{field}.id"), f"{field}.id"),
        quantity=quantity,
        sku=_optional_str(item.get("sku"), f"{field}.sku"),
        variant_external_id=variation_id or product_id,
        product_external_id=product_id,
        title=_optional_str(item.get("name"), f"{field}.name"),
        unit_price_cents=_cents(item.get("price"), f"{field}.price"),
        # WooCommerce core has no partial fulfilment: "completed" means everything shipped.
        fulfilled_quantity=quantity if fulfilled else 0,
        backordered_hint=_backordered_hint(item.get("meta_data"), quantity, f"{field}.meta_data"),
    )


def _backordered_hint(meta: object, quantity: int, field: str) -> int | None:
    """The core "Backordered" line meta, if recognisable; None otherwise.

    Its key is ``__('Backordered', 'woocommerce')``, so a German store writes "Lieferrückstand".
    Rule: an entry whose key is the English "Backordered" wins. Otherwise exactly one visible
    entry (key not starting with ``_`` nor ``pa_``) whose value is a whole number in
    ``1..quantity`` is taken. Two candidates (say a numeric size attribute and the meta) give
    None: a wrong hint is worse than none, and the value is never trusted anyway. Malformed
    meta also gives None: a hint never makes an order unmappable.
    """
    if not isinstance(meta, list):
        return None
    candidates: list[int] = []
    for index, entry in enumerate(meta):
        if not isinstance(entry, Mapping):
            continue
        key, value = entry.get("key"), entry.get("value")
        if not isinstance(key, str) or key.startswith(("_", "pa_")):
            continue
        try:
            number = _int(value, f"{field}[{index}].value", minimum=1)
        except MappingError:
            continue
        if key.strip().lower() in BACKORDERED_META_KEYS:
            return min(number, quantity) if quantity else None
        if number <= quantity:
            candidates.append(number)
    return candidates[0] if len(candidates) == 1 else None


def _address(payload: object, field: str) -> Address | None:
    if not payload:
        return None  # null, or PHP's empty array serialized as []
    obj = _mapping(payload, field)

    def text(key: str) -> str | None:
        return _optional_str(obj.get(key), f"{field}.{key}")

    name = " ".join(part for part in (text("first_name"), text("last_name")) if part) or None
    address = Address(
        name=name,
        company=text("company"),
        address1=text("address_1"),
        address2=text("address_2"),
        city=text("city"),
        province=text("state"),
        zip=text("postcode"),
        country_code=text("country"),
        phone=text("phone"),
    )
    # Virtual-only orders come with every shipping field empty.
    return None if address == Address() else address


# --------------------------------------------------------------------------- products


def product_from_payload(payload: object, variations: list[dict[str, Any]] | None = None) -> ProductRecord:
    """Translate a REST v3 product; a variable product needs its variations.

    ``variations`` are the objects of GET /products/{id}/variations. A variable product without
    them is a MappingError (field ``variations``): the parent alone does not say which variants
    exist, and guessing would delete variants downstream. Simple and external products are their
    own single variant; grouped products have none.
    """
    product = _mapping(payload, "product")
    product_id = _id(_get(product, "id", "id"), "id")
    title = _optional_str(product.get("name"), "name") or f"Product {product_id}"
    kind = _optional_str(product.get("type"), "type") or "simple"
    updated_at = _optional_gmt(product, "date_modified_gmt", "date_modified_gmt")
    tags = tuple(
        _str(_get(_mapping(tag, f"tags[{i}]"), "name", f"tags[{i}].name"), f"tags[{i}].name")
        for i, tag in enumerate(_list(product.get("tags"), "tags"))
    )
    parent_stock = _stock(product, "", parent=None)

    if kind == "variation":
        raise _fail("type", "is a variation: map it with variant_from_payload, or its parent product")
    if kind == "variable":
        if variations is None:
            raise _fail("variations", "are required for a variable product")
        variants = tuple(
            _variation(v, f"variations[{i}]", product_id, title, parent_stock)
            for i, v in enumerate(_list(variations, "variations"))
        )
    elif kind == "grouped":
        variants = ()
    else:
        variants = (
            VariantRecord(
                external_id=product_id,
                product_external_id=product_id,
                # WooCommerce keeps stock on the product itself: the stock "item" is the product.
                inventory_item_external_id=product_id,
                sku=_optional_str(product.get("sku"), "sku"),
                title=title,
                allows_backorder=parent_stock.allows_backorder,
                tracks_inventory=parent_stock.manage_stock,
                price_cents=_cents(product.get("price"), "price"),
                updated_at=updated_at,
                stock_quantity=parent_stock.quantity,
            ),
        )

    extra = {"type": kind}
    if parent_stock.status:
        extra["stock_status"] = parent_stock.status
    if kind == "variable":
        for variant, variation in zip(variants, variations or [], strict=True):
            status = variation.get("stock_status")
            if isinstance(status, str):
                extra[f"stock_status:{variant.external_id}"] = status
    return ProductRecord(
        external_id=product_id, title=title, variants=variants, updated_at=updated_at, tags=tags, extra=extra
    )


class _Stock:
    __slots__ = ("manage_stock", "quantity", "allows_backorder", "status")

    def __init__(self, manage_stock: bool, quantity: int | None, allows_backorder: bool, status: str | None):
        self.manage_stock = manage_stock
        self.quantity = quantity
        self.allows_backorder = allows_backorder
        self.status = status


def _stock(obj: Mapping[str, Any], prefix: str, parent: _Stock | None) -> _Stock:
    manage = obj.get("manage_stock", False)
    if manage == "parent" and parent is not None:
        # Variation stock managed at product level: quantity and backorder rule are the parent's.
        status = obj.get("stock_status")
        return _Stock(
            parent.manage_stock,
            parent.quantity,
            parent.allows_backorder,
            status if isinstance(status, str) else parent.status,
        )
    manage_stock = _bool(manage, f"{prefix}manage_stock")
    quantity_raw = obj.get("stock_quantity")
    quantity = None if quantity_raw is None else _int(quantity_raw, f"{prefix}stock_quantity")
    backorders = obj.get("backorders", "no")
    if backorders not in BACKORDER_SETTINGS:
        raise _fail(f"{prefix}backorders", f"must be one of no|notify|yes, got {backorders!r:.40}")
    status = obj.get("stock_status")
    if status is not None and status not in STOCK_STATUSES:
        raise _fail(f"{prefix}stock_status", f"must be one of {'|'.join(STOCK_STATUSES)}, got {status!r:.40}")
    return _Stock(manage_stock, quantity if manage_stock else None, backorders != "no", status)


def _variation(
    payload: object, field: str, product_id: str, product_title: str, parent: _Stock
) -> VariantRecord:
    variation = _mapping(payload, field)
    variation_id = _id(_get(variation, "id", f"{field}.id"), f"{field}.id")
    options = []
    for i, attribute in enumerate(_list(variation.get("attributes"), f"{field}.attributes")):
        option = _mapping(attribute, f"{field}.attributes[{i}]").get("option")
        if isinstance(option, str) and option:
            options.append(option)
    stock = _stock(variation, f"{field}.", parent)
    return VariantRecord(
        external_id=variation_id,
        product_external_id=product_id,
        inventory_item_external_id=variation_id,
        sku=_optional_str(variation.get("sku"), f"{field}.sku"),
        title=f"{product_title} - {' / '.join(options)}" if options else product_title,
        allows_backorder=stock.allows_backorder,
        tracks_inventory=stock.manage_stock,
        price_cents=_cents(variation.get("price"), f"{field}.price"),
        updated_at=_optional_gmt(variation, "date_modified_gmt", f"{field}.date_modified_gmt"),
        stock_quantity=stock.quantity,
    )


def variant_from_payload(payload: object, parent: object | None = None) -> VariantRecord:
    """One variation on its own (GET /products/{id}/variations/{vid}); ``parent`` is the product,
    needed only to resolve ``manage_stock == "parent"`` (without it such stock is unknown: None)."""
    variation = _mapping(payload, "variation")
    parent_obj = _mapping(parent, "parent") if parent is not None else None
    product_id = _optional_ref(variation.get("parent_id"), "parent_id")
    if product_id is None and parent_obj is not None:
        product_id = _id(_get(parent_obj, "id", "parent.id"), "parent.id")
    if product_id is None:
        raise _fail("parent_id", "is missing")
    if parent_obj is not None:
        parent_stock = _stock(parent_obj, "parent.", parent=None)
        title = _optional_str(parent_obj.get("name"), "parent.name") or f"Product {product_id}"
    else:
        parent_stock = _Stock(False, None, False, None)
        title = _optional_str(variation.get("name"), "name") or f"Product {product_id}"
    return _variation(variation, "variation", product_id, title, parent_stock)
