"""Translate Shopify payloads (REST-shaped webhooks, GraphQL nodes) into normalized records.

Pure functions, no I/O. Every malformed input raises :class:`connector.errors.MappingError`
naming the offending field (a dotted path such as ``line_items[2].quantity``), never a bare
``KeyError``/``TypeError``: a webhook handler can then store the delivery as rejected with a
reason instead of crashing.

Ids are normalized to the numeric legacy id as a string (``"450789469"``), whether they arrive as
a JSON number (webhooks) or as a GraphQL global id (``gid://shopify/Order/450789469``), so a
webhook and a later poll of the same order land on the same key. The global id is kept in
``graphql_id`` where the record has one.

Order state, decided in this order:

* ``cancelled_at`` set → ``CLOSED`` (stock is released);
* financial status ``refunded`` / ``voided`` → ``CLOSED`` (nothing will ship);
* fulfillment status ``fulfilled`` → ``FULFILLED``;
* everything else → ``OPEN``, *including* financial status ``pending`` / ``authorized`` /
  ``partially_paid``: Shopify commits inventory when the order is created, not when it is paid
  (payment-terms and manual-payment orders ship before payment), so an unpaid order already
  competes for stock. ``PENDING`` is left to drafts, which never reach us as orders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connector.domain.records import (
    Address,
    InventoryLevelRecord,
    OrderLineRecord,
    OrderRecord,
    OrderState,
    ProductRecord,
    VariantRecord,
)
from connector.errors import MappingError

_GID = re.compile(r"gid://shopify/[A-Za-z]+/([0-9]+)(?:\?[^\n]*)?")
_DIGITS = re.compile(r"[0-9]+")
_CLOSED_FINANCIAL = frozenset({"refunded", "voided"})


# ---------------------------------------------------------------------------------------------
# small typed readers: each names the field it failed on
# ---------------------------------------------------------------------------------------------


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MappingError(f"{path or 'payload'} must be an object", field=path or "payload")
    return value


def _req(d: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in d or d[key] is None:
        raise MappingError(f"{_join(path, key)} is required", field=_join(path, key))
    return d[key]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _id(value: Any, path: str) -> str:
    """A numeric id (int or digit string) or a GraphQL gid → the numeric part as a string."""
    if isinstance(value, bool):
        raise MappingError(f"{path} must be an id", field=path)
    if isinstance(value, int):
        if value < 0:
            raise MappingError(f"{path} must be a positive id", field=path)
        return str(value)
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return value
        m = _GID.fullmatch(value)
        if m:
            return m.group(1)
    raise MappingError(f"{path} must be an id or gid, got {type(value).__name__}", field=path)


def external_id(value: Any, field: str = "id") -> str:
    """Public form of the id normalizer: ``123``, ``"123"`` or a gid → ``"123"`` (MappingError otherwise)."""
    return _id(value, field)


def _opt_id(value: Any, path: str) -> str | None:
    return None if value is None else _id(value, path)


def _gid(value: Any, path: str) -> str:
    if isinstance(value, str) and _GID.fullmatch(value):
        return value
    raise MappingError(f"{path} must be a gid://shopify/... id", field=path)


def _opt_gid(value: Any, path: str) -> str | None:
    return None if value is None else _gid(value, path)


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise MappingError(f"{path} must be a string", field=path)
    return value


def _opt_str(value: Any, path: str) -> str | None:
    return None if value is None else _str(value, path)


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{path} must be an integer", field=path)
    return value


def _opt_int(value: Any, path: str) -> int | None:
    return None if value is None else _int(value, path)


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise MappingError(f"{path} must be a list", field=path)
    return value


def _cents(value: Any, path: str) -> int:
    """Money as Shopify sends it (``"19.99"``; numbers tolerated) → integer cents, half-up."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MappingError(f"{path} must be a money amount", field=path)
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or abs(amount) > Decimal(10) ** 15:
            raise MappingError(f"{path} is not a finite amount", field=path)
        return int((amount * 100).quantize(Decimal(1), rounding="ROUND_HALF_UP"))
    except (InvalidOperation, ValueError, ArithmeticError) as exc:
        raise MappingError(f"{path} is not a money amount: {value!r}", field=path) from exc


def _dt(value: Any, path: str) -> datetime:
    """ISO 8601 with an offset → aware UTC datetime. A naive timestamp is refused, not guessed."""
    if not isinstance(value, str):
        raise MappingError(f"{path} must be an ISO 8601 timestamp", field=path)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise MappingError(f"{path} is not an ISO 8601 timestamp: {value!r}", field=path) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise MappingError(f"{path} has no UTC offset", field=path)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise MappingError(f"{path} is out of range", field=path) from exc


def _opt_dt(value: Any, path: str) -> datetime | None:
    return None if value is None else _dt(value, path)


def _tags(value: Any, path: str) -> tuple[str, ...]:
    """Webhooks send ``"a, b"``; GraphQL sends ``["a", "b"]``."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    items = _list(value, path)
    return tuple(_str(t, f"{path}[{i}]").strip() for i, t in enumerate(items))


def _name(first: Any, last: Any, path: str) -> str | None:
    parts = [p for p in (_opt_str(first, f"{path}.first_name"), _opt_str(last, f"{path}.last_name")) if p]
    return " ".join(parts) or None


def _nodes(conn: Any, path: str) -> list[Any]:
    """A GraphQL connection given as ``{nodes: [...]}`` or ``{edges: [{node}]}`` → list of nodes."""
    if conn is None:
        return []
    c = _obj(conn, path)
    if "nodes" in c:
        return _list(c["nodes"], f"{path}.nodes")
    if "edges" in c:
        edges = _list(c["edges"], f"{path}.edges")
        return [
            _req(_obj(e, f"{path}.edges[{i}]"), "node", f"{path}.edges[{i}]") for i, e in enumerate(edges)
        ]
    raise MappingError(f"{path} has neither nodes nor edges", field=path)


# ---------------------------------------------------------------------------------------------
# webhooks (REST-shaped)
# ---------------------------------------------------------------------------------------------


def _address_from_rest(value: Any, path: str) -> Address | None:
    if value is None:
        return None
    a = _obj(value, path)
    name = _opt_str(a.get("name"), f"{path}.name") or _name(a.get("first_name"), a.get("last_name"), path)
    return Address(
        name=name,
        company=_opt_str(a.get("company"), f"{path}.company"),
        address1=_opt_str(a.get("address1"), f"{path}.address1"),
        address2=_opt_str(a.get("address2"), f"{path}.address2"),
        city=_opt_str(a.get("city"), f"{path}.city"),
        province=_opt_str(a.get("province_code") or a.get("province"), f"{path}.province"),
        zip=_opt_str(a.get("zip"), f"{path}.zip"),
        country_code=_opt_str(a.get("country_code"), f"{path}.country_code"),
        phone=_opt_str(a.get("phone"), f"{path}.phone"),
    )


def _removed_by_refunds(order: Mapping[str, Any]) -> dict[str, int]:
    """Units removed per line id by refunds, for payloads without ``current_quantity``."""
    removed: dict[str, int] = {}
    for i, refund in enumerate(_list(order.get("refunds") or [], "refunds")):
        r = _obj(refund, f"refunds[{i}]")
        for j, rli in enumerate(_list(r.get("refund_line_items") or [], f"refunds[{i}].refund_line_items")):
            p = f"refunds[{i}].refund_line_items[{j}]"
            item = _obj(rli, p)
            line_id = _id(_req(item, "line_item_id", p), f"{p}.line_item_id")
            removed[line_id] = removed.get(line_id, 0) + _int(_req(item, "quantity", p), f"{p}.quantity")
    return removed


def _fulfilled_by_fulfillments(order: Mapping[str, Any]) -> dict[str, int]:
    """Units shipped per line id, from successful fulfillments.

    ``fulfillable_quantity`` is not used: it also drops to zero for lines on a fulfillment hold,
    which would make held (unshipped) units look shipped.
    """
    shipped: dict[str, int] = {}
    for i, fulfillment in enumerate(_list(order.get("fulfillments") or [], "fulfillments")):
        f = _obj(fulfillment, f"fulfillments[{i}]")
        if f.get("status") not in (None, "success"):
            continue  # cancelled, error, failure: nothing left the building
        for j, item in enumerate(_list(f.get("line_items") or [], f"fulfillments[{i}].line_items")):
            p = f"fulfillments[{i}].line_items[{j}]"
            li = _obj(item, p)
            line_id = _id(_req(li, "id", p), f"{p}.id")
            shipped[line_id] = shipped.get(line_id, 0) + _int(_req(li, "quantity", p), f"{p}.quantity")
    return shipped


def _line_from_rest(
    value: Any, path: str, removed: Mapping[str, int], shipped: Mapping[str, int]
) -> OrderLineRecord:
    li = _obj(value, path)
    line_id = _id(_req(li, "id", path), f"{path}.id")
    ordered = _int(_req(li, "quantity", path), f"{path}.quantity")
    current = _opt_int(li.get("current_quantity"), f"{path}.current_quantity")
    quantity = current if current is not None else ordered - removed.get(line_id, 0)
    quantity = max(0, quantity)
    status = _opt_str(li.get("fulfillment_status"), f"{path}.fulfillment_status")
    fulfilled = quantity if status == "fulfilled" else shipped.get(line_id, 0)
    price = li.get("price")
    return OrderLineRecord(
        external_id=line_id,
        quantity=quantity,
        sku=_opt_str(li.get("sku"), f"{path}.sku") or None,  # "" on custom items means no SKU
        variant_external_id=_opt_id(li.get("variant_id"), f"{path}.variant_id"),
        product_external_id=_opt_id(li.get("product_id"), f"{path}.product_id"),
        title=_opt_str(li.get("title"), f"{path}.title"),
        unit_price_cents=0 if price is None else _cents(price, f"{path}.price"),
        fulfilled_quantity=min(max(0, fulfilled), quantity),
    )


def _order_state(cancelled: bool, financial: str | None, fulfillment: str | None) -> OrderState:
    if cancelled or (financial or "").lower() in _CLOSED_FINANCIAL:
        return OrderState.CLOSED
    if (fulfillment or "").lower() == "fulfilled":
        return OrderState.FULFILLED
    return OrderState.OPEN


def order_from_webhook(payload: Any) -> OrderRecord:
    """An ``orders/create|updated|cancelled`` webhook body (parsed JSON) → :class:`OrderRecord`."""
    o = _obj(payload, "")
    removed = _removed_by_refunds(o) if o.get("refunds") else {}
    shipped = _fulfilled_by_fulfillments(o)
    lines = tuple(
        _line_from_rest(li, f"line_items[{i}]", removed, shipped)
        for i, li in enumerate(_list(_req(o, "line_items", ""), "line_items"))
    )
    customer = o.get("customer")
    c = _obj(customer, "customer") if customer is not None else {}
    email = (
        _opt_str(o.get("email"), "email")
        or _opt_str(o.get("contact_email"), "contact_email")
        or _opt_str(c.get("email"), "customer.email")
    )
    ship_to = _address_from_rest(o.get("shipping_address"), "shipping_address")
    customer_name = _name(c.get("first_name"), c.get("last_name"), "customer") or (
        ship_to.name if ship_to else None
    )
    order_id = _id(_req(o, "id", ""), "id")
    number = o.get("name")
    if number is None:
        number = o.get("order_number")
    if number is None:
        raise MappingError("name is required", field="name")
    if isinstance(number, bool) or not isinstance(number, str | int):
        raise MappingError("name must be a string", field="name")
    return OrderRecord(
        external_id=order_id,
        number=str(number),
        state=_order_state(
            _opt_dt(o.get("cancelled_at"), "cancelled_at") is not None,
            _opt_str(o.get("financial_status"), "financial_status"),
            _opt_str(o.get("fulfillment_status"), "fulfillment_status"),
        ),
        placed_at=_dt(_req(o, "created_at", ""), "created_at"),
        updated_at=_dt(_req(o, "updated_at", ""), "updated_at"),
        lines=lines,
        customer_email=email or None,
        customer_name=customer_name,
        customer_external_id=_opt_id(c.get("id"), "customer.id"),
        ship_to=ship_to,
        currency=_opt_str(o.get("currency"), "currency"),
        tags=_tags(o.get("tags"), "tags"),
        graphql_id=_opt_gid(o.get("admin_graphql_api_id"), "admin_graphql_api_id"),
    )


def _variant_from_rest(value: Any, path: str, product_id: str) -> VariantRecord:
    v = _obj(value, path)
    policy = _opt_str(v.get("inventory_policy"), f"{path}.inventory_policy")
    management = _opt_str(v.get("inventory_management"), f"{path}.inventory_management")
    price = v.get("price")
    return VariantRecord(
        external_id=_id(_req(v, "id", path), f"{path}.id"),
        product_external_id=_opt_id(v.get("product_id"), f"{path}.product_id") or product_id,
        sku=_opt_str(v.get("sku"), f"{path}.sku") or None,
        title=_opt_str(v.get("title"), f"{path}.title") or "",
        allows_backorder=(policy or "").lower() == "continue",
        # Shopify says null when it does not track the item, "shopify" (or a fulfilment service's
        # handle) when it does; newer versions omit the field. Only an explicit null means untracked:
        # wrongly untracking a variant would let orders through without touching stock.
        tracks_inventory="inventory_management" not in v or management is not None,
        inventory_item_external_id=_opt_id(v.get("inventory_item_id"), f"{path}.inventory_item_id"),
        price_cents=0 if price is None else _cents(price, f"{path}.price"),
        updated_at=_opt_dt(v.get("updated_at"), f"{path}.updated_at"),
        graphql_id=_opt_gid(v.get("admin_graphql_api_id"), f"{path}.admin_graphql_api_id"),
    )


def product_from_webhook(payload: Any) -> ProductRecord:
    """A ``products/create|update`` webhook body → :class:`ProductRecord` with its variants."""
    p = _obj(payload, "")
    product_id = _id(_req(p, "id", ""), "id")
    variants = tuple(
        _variant_from_rest(v, f"variants[{i}]", product_id)
        for i, v in enumerate(_list(p.get("variants") or [], "variants"))
    )
    extra = {}
    for key in ("handle", "status", "vendor", "product_type"):
        val = p.get(key)
        if isinstance(val, str):
            extra[key] = val
    return ProductRecord(
        external_id=product_id,
        title=_str(_req(p, "title", ""), "title"),
        variants=variants,
        updated_at=_opt_dt(p.get("updated_at"), "updated_at"),
        tags=_tags(p.get("tags"), "tags"),
        extra=extra,
    )


def inventory_level_from_webhook(payload: Any) -> InventoryLevelRecord:
    """An ``inventory_levels/update`` body → :class:`InventoryLevelRecord`.

    ``available`` is null for an item Shopify does not track; there is no stock number to record,
    so that is a :class:`MappingError` (field ``available``) rather than a made-up zero.
    """
    d = _obj(payload, "")
    return InventoryLevelRecord(
        inventory_item_external_id=_id(_req(d, "inventory_item_id", ""), "inventory_item_id"),
        location_external_id=_id(_req(d, "location_id", ""), "location_id"),
        available=_int(_req(d, "available", ""), "available"),
        updated_at=_opt_dt(d.get("updated_at"), "updated_at"),
    )


# ---------------------------------------------------------------------------------------------
# GraphQL nodes
# ---------------------------------------------------------------------------------------------


def _money_set(value: Any, path: str) -> int:
    if value is None:
        return 0
    m = _obj(_req(_obj(value, path), "shopMoney", path), f"{path}.shopMoney")
    return _cents(_req(m, "amount", f"{path}.shopMoney"), f"{path}.shopMoney.amount")


def _address_from_graphql(value: Any, path: str) -> Address | None:
    if value is None:
        return None
    a = _obj(value, path)
    name = _opt_str(a.get("name"), f"{path}.name") or _name(a.get("firstName"), a.get("lastName"), path)
    return Address(
        name=name,
        company=_opt_str(a.get("company"), f"{path}.company"),
        address1=_opt_str(a.get("address1"), f"{path}.address1"),
        address2=_opt_str(a.get("address2"), f"{path}.address2"),
        city=_opt_str(a.get("city"), f"{path}.city"),
        province=_opt_str(a.get("provinceCode") or a.get("province"), f"{path}.province"),
        zip=_opt_str(a.get("zip"), f"{path}.zip"),
        country_code=_opt_str(a.get("countryCodeV2"), f"{path}.countryCodeV2"),
        phone=_opt_str(a.get("phone"), f"{path}.phone"),
    )


def _line_from_graphql(value: Any, path: str) -> OrderLineRecord:
    li = _obj(value, path)
    ordered = _int(_req(li, "quantity", path), f"{path}.quantity")
    current = _opt_int(li.get("currentQuantity"), f"{path}.currentQuantity")
    quantity = max(0, ordered if current is None else current)
    unfulfilled = _opt_int(li.get("unfulfilledQuantity"), f"{path}.unfulfilledQuantity")
    fulfilled = 0 if unfulfilled is None else quantity - unfulfilled
    variant = li.get("variant")
    v = _obj(variant, f"{path}.variant") if variant is not None else {}
    product = li.get("product")
    p = _obj(product, f"{path}.product") if product is not None else {}
    sku = _opt_str(li.get("sku"), f"{path}.sku") or _opt_str(v.get("sku"), f"{path}.variant.sku")
    return OrderLineRecord(
        external_id=_id(_req(li, "id", path), f"{path}.id"),
        quantity=quantity,
        sku=sku or None,
        variant_external_id=_opt_id(v.get("id"), f"{path}.variant.id"),
        product_external_id=_opt_id(p.get("id"), f"{path}.product.id"),
        title=_opt_str(li.get("title") if "title" in li else li.get("name"), f"{path}.title"),
        unit_price_cents=_money_set(li.get("originalUnitPriceSet"), f"{path}.originalUnitPriceSet"),
        fulfilled_quantity=min(max(0, fulfilled), quantity),
    )


def order_from_graphql(node: Any) -> OrderRecord:
    """An ``Order`` node (as selected by ``queries.ORDERS_PAGE``) → :class:`OrderRecord`.

    Line items may be given as ``lineItems.nodes``/``lineItems.edges`` or, for bulk operation
    rows re-joined by the caller, as ``lineItems.nodes`` built from ``__parentId`` children.
    """
    o = _obj(node, "")
    gid = _gid(_req(o, "id", ""), "id")
    lines = tuple(
        _line_from_graphql(li, f"lineItems.nodes[{i}]")
        for i, li in enumerate(_nodes(o.get("lineItems"), "lineItems"))
    )
    customer = o.get("customer")
    c = _obj(customer, "customer") if customer is not None else {}
    ship_to = _address_from_graphql(o.get("shippingAddress"), "shippingAddress")
    financial = _opt_str(o.get("displayFinancialStatus"), "displayFinancialStatus")
    fulfillment = _opt_str(o.get("displayFulfillmentStatus"), "displayFulfillmentStatus")
    customer_name = (
        _opt_str(c.get("displayName"), "customer.displayName")
        or _name(c.get("firstName"), c.get("lastName"), "customer")
        or (ship_to.name if ship_to else None)
    )
    return OrderRecord(
        external_id=_id(gid, "id"),
        number=_str(_req(o, "name", ""), "name"),
        state=_order_state(_opt_dt(o.get("cancelledAt"), "cancelledAt") is not None, financial, fulfillment),
        placed_at=_dt(_req(o, "createdAt", ""), "createdAt"),
        updated_at=_dt(_req(o, "updatedAt", ""), "updatedAt"),
        lines=lines,
        customer_email=_opt_str(o.get("email"), "email")
        or _opt_str(c.get("email"), "customer.email")
        or None,
        customer_name=customer_name,
        customer_external_id=_opt_id(c.get("id"), "customer.id"),
        ship_to=ship_to,
        currency=_opt_str(o.get("currencyCode"), "currencyCode"),
        tags=_tags(o.get("tags"), "tags"),
        graphql_id=gid,
    )


def variant_from_graphql(node: Any) -> VariantRecord:
    """A ``ProductVariant`` node (as selected by ``queries.VARIANTS_PAGE``) → :class:`VariantRecord`."""
    v = _obj(node, "")
    gid = _gid(_req(v, "id", ""), "id")
    product = v.get("product")
    p = _obj(product, "product") if product is not None else {}
    item = v.get("inventoryItem")
    it = _obj(item, "inventoryItem") if item is not None else {}
    tracked = it.get("tracked")
    if tracked is not None and not isinstance(tracked, bool):
        raise MappingError("inventoryItem.tracked must be a boolean", field="inventoryItem.tracked")
    policy = _str(_req(v, "inventoryPolicy", ""), "inventoryPolicy")
    price = v.get("price")
    quantity = _opt_int(v.get("inventoryQuantity"), "inventoryQuantity")
    return VariantRecord(
        external_id=_id(gid, "id"),
        product_external_id=_opt_id(p.get("id"), "product.id"),
        sku=_opt_str(v.get("sku"), "sku") or None,
        title=_opt_str(v.get("displayName"), "displayName") or _opt_str(v.get("title"), "title") or "",
        allows_backorder=policy.upper() == "CONTINUE",
        tracks_inventory=True if tracked is None else tracked,
        inventory_item_external_id=_opt_id(it.get("id"), "inventoryItem.id"),
        price_cents=0 if price is None else _cents(price, "price"),
        updated_at=_opt_dt(v.get("updatedAt"), "updatedAt"),
        stock_quantity=quantity,
        graphql_id=gid,
    )


def product_from_graphql(node: Any) -> ProductRecord:
    """A ``Product`` node with ``variants`` (as selected by ``queries.PRODUCTS_PAGE``) → record."""
    p = _obj(node, "")
    gid = _gid(_req(p, "id", ""), "id")
    variants = []
    for i, v in enumerate(_nodes(p.get("variants"), "variants")):
        try:
            variants.append(variant_from_graphql({**_obj(v, f"variants[{i}]"), "product": {"id": gid}}))
        except MappingError as exc:
            field = f"variants[{i}].{exc.field}"
            raise MappingError(f"{field}: {exc.message}", field=field) from exc
    extra = {}
    for key in ("handle", "status", "vendor"):
        val = p.get(key)
        if isinstance(val, str):
            extra[key] = val.lower() if key == "status" else val
    return ProductRecord(
        external_id=_id(gid, "id"),
        title=_str(_req(p, "title", ""), "title"),
        variants=tuple(variants),
        updated_at=_opt_dt(p.get("updatedAt"), "updatedAt"),
        tags=_tags(p.get("tags"), "tags"),
        extra=extra,
    )


def inventory_level_from_graphql(node: Any, inventory_item_id: str | None = None) -> InventoryLevelRecord:
    """An ``InventoryLevel`` node with ``quantities(names: [...]) {name quantity}`` → record.

    The item id comes from ``node.item.id`` when selected, else from ``inventory_item_id``.
    ``available`` is required among the quantities; ``on_hand`` and ``incoming`` are optional.
    """
    n = _obj(node, "")
    item = n.get("item")
    if item is not None:
        item_id = _id(_req(_obj(item, "item"), "id", "item"), "item.id")
    elif inventory_item_id is not None:
        item_id = _id(inventory_item_id, "item.id")
    else:
        raise MappingError("item.id is required", field="item.id")
    location = _obj(_req(n, "location", ""), "location")
    quantities: dict[str, int] = {}
    for i, q in enumerate(_list(_req(n, "quantities", ""), "quantities")):
        qd = _obj(q, f"quantities[{i}]")
        name = _str(_req(qd, "name", f"quantities[{i}]"), f"quantities[{i}].name")
        quantities[name] = _int(_req(qd, "quantity", f"quantities[{i}]"), f"quantities[{i}].quantity")
    if "available" not in quantities:
        raise MappingError("quantities has no 'available' entry", field="quantities.available")
    return InventoryLevelRecord(
        inventory_item_external_id=item_id,
        location_external_id=_id(_req(location, "id", "location"), "location.id"),
        available=quantities["available"],
        on_hand=quantities.get("on_hand"),
        incoming=quantities.get("incoming"),
        updated_at=_opt_dt(n.get("updatedAt"), "updatedAt"),
    )


def inventory_levels_from_variant_node(node: Any) -> list[InventoryLevelRecord]:
    """All ``inventoryItem.inventoryLevels`` of a ``ProductVariant`` node, one record per location."""
    v = _obj(node, "")
    item = v.get("inventoryItem")
    if item is None:
        return []
    it = _obj(item, "inventoryItem")
    item_id = _id(_req(it, "id", "inventoryItem"), "inventoryItem.id")
    levels = _nodes(it.get("inventoryLevels"), "inventoryItem.inventoryLevels")
    out = []
    for i, level in enumerate(levels):
        try:
            out.append(inventory_level_from_graphql(level, item_id))
        except MappingError as exc:
            field = f"inventoryItem.inventoryLevels[{i}].{exc.field}"
            raise MappingError(f"{field}: {exc.message}", field=field) from exc
    return out
