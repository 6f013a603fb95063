"""GraphQL resolvers of the sandbox: real-shaped views over ``store.Shop`` and the mutations.

graphql-core's default resolver reads dict keys and calls callables with ``(info, **args)``, so
the views are plain dicts whose paginated fields are closures. ``Root`` serves both the query
and the mutation root. Every mutation is recorded in ``Sandbox.mutations``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from sandbox.shopify import store
from sandbox.shopify.store import Level, Order, Shop, Variant, gid, iso, money

if TYPE_CHECKING:
    from sandbox.shopify.server import SandboxShopify

MAX_PAGE = 250
QUANTITY_NAMES = {
    "available",
    "on_hand",
    "committed",
    "incoming",
    "reserved",
    "damaged",
    "safety_stock",
    "quality_control",
}
_GID = re.compile(r"gid://shopify/([A-Za-z]+)/([0-9]+)")
_SEARCH = re.compile(r"(updated_at|created_at):(>=|<=|>|<)?'?([^' ]+)'?")
METAFIELD_TYPES: dict[str, Callable[[str], bool]] = {
    "date": lambda v: bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)),
    "single_line_text_field": lambda v: "\n" not in v and len(v) <= 5000,
    "multi_line_text_field": lambda v: True,
    "json": lambda v: _is_json(v),
    "number_integer": lambda v: bool(re.fullmatch(r"-?\d+", v)),
    "boolean": lambda v: v in ("true", "false"),
}


def _is_json(value: str) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def parse_gid(value: Any) -> tuple[str, int] | None:
    m = _GID.fullmatch(str(value).split("?")[0])
    return (m.group(1), int(m.group(2))) if m else None


def _cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last_index": index}).encode()).decode()


def _uncursor(cursor: str | None) -> int:
    if not cursor:
        return -1
    try:
        return int(json.loads(base64.b64decode(cursor))["last_index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError("Invalid cursor for current pagination sort.") from exc


def connection(
    items: list[Any],
    view: Callable[[Any], dict[str, Any] | None],
    first: int | None,
    after: str | None,
    bulk: bool,
    last: int | None = None,
) -> dict[str, Any]:
    if first is None and last is None and not bulk:
        raise GraphQLError("you must provide one of first or last")
    size = first if first is not None else last
    if size is not None and (size < 0 or size > MAX_PAGE):
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE}.")
    start = _uncursor(after) + 1
    chosen = items[start:] if size is None else items[start : start + size]
    views = [view(item) for item in chosen]
    end = start + len(chosen)
    return {
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(start) if chosen else None,
            "endCursor": _cursor(end - 1) if chosen else None,
        },
        "nodes": views,
        "edges": [{"node": v, "cursor": _cursor(start + i)} for i, v in enumerate(views)],
    }


class _Dated:
    """The two dates a search filter reads, for things that have no dataclass of their own."""

    def __init__(self, updated_at: datetime, created_at: datetime) -> None:
        self.updated_at = updated_at
        self.created_at = created_at


def item_updated_at(shop: Shop, v: Variant) -> datetime:
    """An inventory item's ``updatedAt``: the sandbox moves it with its variant and its levels
    (an assumption: Shopify does not document which quantity changes touch the item)."""
    stamps = [lv.updated_at for (item, _), lv in shop.levels.items() if item == v.inventory_item_id]
    return max([v.updated_at, *stamps])


def _search_filter(query: str | None) -> Callable[[Any], bool]:
    if not query:
        return lambda o: True
    tests = []
    for field, op, raw in _SEARCH.findall(query):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise GraphQLError(f"Invalid search date {raw!r}") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        ops = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            "": lambda a, b: a.date() == b.date(),
        }
        tests.append((field, ops[op], when))
    return lambda o: all(cmp(getattr(o, field), when) for field, cmp, when in tests)


class Views:
    def __init__(self, sandbox: SandboxShopify, shop: Shop, bulk: bool = False) -> None:
        self.sb = sandbox
        self.shop = shop
        self.bulk = bulk

    def _metafield(self, owner: str) -> Callable[..., dict[str, Any] | None]:
        def resolve(info: Any, key: str, namespace: str | None = None) -> dict[str, Any] | None:
            return self.shop.metafields.get((owner, namespace or "$app", key))

        return resolve

    def money_bag(self, cents: int) -> dict[str, Any]:
        m = {"amount": money(cents), "currencyCode": self.shop.currency}
        return {"shopMoney": m, "presentmentMoney": dict(m)}

    def product(self, product_id: int | None) -> dict[str, Any] | None:
        p = self.shop.products.get(product_id) if product_id else None
        if p is None:
            return None
        return {
            "__typename": "Product",
            "id": gid("Product", p.id),
            "title": p.title,
            "handle": p.handle,
            "status": p.status.upper(),
            "vendor": p.vendor,
            "tags": sorted(p.tags, key=str.lower),
            "updatedAt": iso(p.updated_at),
            "variants": lambda info, first=None, after=None, **kw: connection(
                sorted(p.variants, key=lambda v: v.position),
                self.variant,
                first,
                after,
                self.bulk,
                kw.get("last"),
            ),
        }

    def level(self, level: Level) -> dict[str, Any]:
        committed = 0

        def quantities(info: Any, names: list[str]) -> list[dict[str, Any]]:
            values = {
                "available": level.available,
                "on_hand": level.on_hand,
                "incoming": level.incoming,
                "committed": max(0, level.on_hand - level.available) + committed,
            }
            out = []
            for name in names:
                if name not in QUANTITY_NAMES:
                    raise GraphQLError(f"The quantity name '{name}' is not valid.")
                out.append({"name": name, "quantity": values.get(name, 0)})
            return out

        variant = next(
            (v for v in self.shop.variants() if v.inventory_item_id == level.inventory_item_id), None
        )
        return {
            "__typename": "InventoryLevel",
            "id": f"gid://shopify/InventoryLevel/{level.location_id}?inventory_item_id={level.inventory_item_id}",
            "updatedAt": iso(level.updated_at),
            "location": {
                "id": gid("Location", level.location_id),
                "name": self.shop.locations[level.location_id],
            },
            "quantities": quantities,
            "item": (lambda info: self.inventory_item(variant)) if variant else None,
        }

    def inventory_item(self, v: Variant) -> dict[str, Any]:
        levels = sorted(
            (lv for (item, _), lv in self.shop.levels.items() if item == v.inventory_item_id),
            key=lambda lv: lv.location_id,
        )
        return {
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", v.inventory_item_id),
            "sku": v.sku,
            "tracked": v.tracked,
            "updatedAt": iso(item_updated_at(self.shop, v)),
            "inventoryLevels": lambda info, first=None, after=None, **kw: connection(
                levels, self.level, first, after, self.bulk, kw.get("last")
            ),
        }

    def variant(self, v: Variant) -> dict[str, Any]:
        p = self.shop.products[v.product_id]
        owner = gid("ProductVariant", v.id)
        return {
            "__typename": "ProductVariant",
            "id": owner,
            "legacyResourceId": str(v.id),
            "title": v.title,
            "displayName": f"{p.title} - {v.title}",
            "sku": v.sku,
            "inventoryPolicy": v.inventory_policy.upper(),
            "price": money(v.price_cents),
            "updatedAt": iso(v.updated_at),
            "inventoryQuantity": sum(
                lv.available for (item, _), lv in self.shop.levels.items() if item == v.inventory_item_id
            ),
            "product": self.product(p.id),
            "inventoryItem": self.inventory_item(v),
            "metafield": self._metafield(owner),
        }

    def order(self, o: Order) -> dict[str, Any]:
        owner = gid("Order", o.id)
        fulfilled = sum(min(li.fulfilled, li.current) for li in o.line_items)
        wanted = sum(li.current for li in o.line_items)
        display_fulfillment = (
            "FULFILLED"
            if wanted and fulfilled >= wanted
            else "PARTIALLY_FULFILLED"
            if fulfilled
            else "UNFULFILLED"
        )
        addr = o.shipping_address
        return {
            "__typename": "Order",
            "id": owner,
            "legacyResourceId": str(o.id),
            "name": o.name,
            "createdAt": iso(o.created_at),
            "updatedAt": iso(o.updated_at),
            "cancelledAt": iso(o.cancelled_at),
            "closedAt": iso(o.closed_at),
            "email": o.email,
            "currencyCode": o.currency,
            "tags": sorted(o.tags, key=str.lower),
            "note": o.note,
            "displayFinancialStatus": o.financial_status.upper(),
            "displayFulfillmentStatus": display_fulfillment,
            "customer": None
            if o.customer is None
            else {
                "id": gid("Customer", o.customer["id"]),
                "firstName": o.customer.get("first_name"),
                "lastName": o.customer.get("last_name"),
                "displayName": " ".join(
                    p for p in (o.customer.get("first_name"), o.customer.get("last_name")) if p
                )
                or (o.email or ""),
            },
            "shippingAddress": None
            if addr is None
            else {
                "name": addr.get("name")
                or " ".join(p for p in (addr.get("first_name"), addr.get("last_name")) if p),
                "firstName": addr.get("first_name"),
                "lastName": addr.get("last_name"),
                "company": addr.get("company"),
                "address1": addr.get("address1"),
                "address2": addr.get("address2"),
                "city": addr.get("city"),
                "province": addr.get("province"),
                "provinceCode": addr.get("province_code"),
                "zip": addr.get("zip"),
                "countryCodeV2": addr.get("country_code"),
                "phone": addr.get("phone"),
            },
            "lineItems": lambda info, first=None, after=None, **kw: connection(
                o.line_items, self.line_item, first, after, self.bulk, kw.get("last")
            ),
            "metafield": self._metafield(owner),
            "fulfillmentOrders": lambda info, first=None, after=None, **kw: connection(
                [o], self.fulfillment_order, first, after, self.bulk, kw.get("last")
            ),
            "refunds": lambda info, first=None: [self.refund(o, r) for r in o.refunds[:first]],
            "totalRefundedSet": self.money_bag(o.refunded_cents),
            "transactions": lambda info, first=None, **kw: [self.transaction(o, t) for t in o.transactions[:first]],
            "suggestedRefund": lambda info, refundLineItems=None, suggestFullRefund=None, **kw: (  # noqa: N803
                self.suggested_refund(o, refundLineItems or [], bool(suggestFullRefund))
            ),
        }

    def transaction(self, o: Order, t: store.Transaction) -> dict[str, Any]:
        parent = next((p for p in o.transactions if p.id == t.parent_id), None)
        return {
            "__typename": "OrderTransaction",
            "id": gid("OrderTransaction", t.id),
            "kind": t.kind,
            "status": t.status,
            "gateway": t.gateway,
            "amountSet": self.money_bag(t.amount_cents),
            "createdAt": iso(t.created_at),
            "parentTransaction": (lambda info: self.transaction(o, parent)) if parent else None,
        }

    def suggested_refund(self, o: Order, items: list[dict[str, Any]], full: bool) -> dict[str, Any]:
        """What Shopify proposes to give back for ``items``: line price × units (no taxes, no
        discounts, no shipping in the sandbox), spread over the order's payments, largest first."""
        lines = {li.id: li for li in o.line_items}
        chosen = []
        for item in items:
            parsed = parse_gid(item.get("lineItemId"))
            li = lines.get(parsed[1]) if parsed and parsed[0] == "LineItem" else None
            if li is None:
                raise GraphQLError(f"Line item {item.get('lineItemId')} does not exist on this order.")
            units = min(int(item.get("quantity") or 0), li.current)
            if units > 0:
                chosen.append((li, units, item.get("restockType") or "NO_RESTOCK"))
        subtotal = sum(li.price_cents * units for li, units, _ in chosen)
        parents = [t for t in o.transactions if t.kind in ("SALE", "CAPTURE") and t.status == "SUCCESS"]
        refundable = sum(o.refundable_cents(t) for t in parents)
        wanted = min(refundable if full else subtotal, refundable)
        suggested = []
        for parent in sorted(parents, key=lambda t: -o.refundable_cents(t)):
            take = min(wanted, o.refundable_cents(parent))
            if take <= 0:
                continue
            wanted -= take
            suggested.append({
                "kind": "SUGGESTED_REFUND",
                "gateway": parent.gateway,
                "amountSet": self.money_bag(take),
                "maximumRefundableSet": self.money_bag(o.refundable_cents(parent)),
                "parentTransaction": self.transaction(o, parent),
            })
        amount = sum(int(round(float(t["amountSet"]["shopMoney"]["amount"]) * 100)) for t in suggested)
        return {
            "amountSet": self.money_bag(amount),
            "subtotalSet": self.money_bag(subtotal),
            "totalTaxSet": self.money_bag(0),
            "maximumRefundableSet": self.money_bag(refundable),
            "refundLineItems": [
                {"lineItem": self.line_item(li), "quantity": units, "restockType": restock}
                for li, units, restock in chosen
            ],
            "suggestedTransactions": suggested,
        }

    def refund(self, o: Order, r: store.Refund) -> dict[str, Any]:
        lines = {li.id: li for li in o.line_items}
        refunded = [(lines[line_id], units) for line_id, units in r.quantities.items() if line_id in lines]
        return {
            "__typename": "Refund",
            "id": gid("Refund", r.id),
            "note": r.note,
            "createdAt": iso(r.created_at),
            "totalRefundedSet": self.money_bag(r.amount_cents),
            "transactions": lambda info, first=None, after=None, **kw: connection(
                r.transactions, lambda t: self.transaction(o, t), first, after, self.bulk, kw.get("last")
            ),
            "refundLineItems": lambda info, first=None, after=None, **kw: connection(
                refunded,
                lambda item: {
                    "lineItem": self.line_item(item[0]),
                    "quantity": item[1],
                    "restockType": r.restock_type[item[0].id],
                },
                first,
                after,
                self.bulk,
                kw.get("last"),
            ),
        }

    def fulfillment_order(self, o: Order) -> dict[str, Any]:
        remaining = sum(max(0, li.current - li.fulfilled) for li in o.line_items)
        status = "CANCELLED" if o.cancelled_at else "OPEN" if remaining else "CLOSED"
        return {
            "__typename": "FulfillmentOrder",
            "id": gid("FulfillmentOrder", o.fulfillment_order_id),
            "status": status,
            "lineItems": lambda info, first=None, after=None, **kw: connection(
                o.line_items, self.fulfillment_order_line, first, after, self.bulk, kw.get("last")
            ),
        }

    def fulfillment_order_line(self, li: store.LineItem) -> dict[str, Any]:
        return {
            "__typename": "FulfillmentOrderLineItem",
            "id": gid("FulfillmentOrderLineItem", li.fulfillment_order_line_id),
            "remainingQuantity": max(0, li.current - li.fulfilled),
            "totalQuantity": li.current,
            "lineItem": self.line_item(li),
        }

    def line_item(self, li: store.LineItem) -> dict[str, Any]:
        variant = self.shop.variant(li.variant_id) if li.variant_id else None
        return {
            "__typename": "LineItem",
            "id": gid("LineItem", li.id),
            "title": li.title,
            "name": li.title if not li.variant_title else f"{li.title} - {li.variant_title}",
            "sku": li.sku,
            "quantity": li.quantity,
            "currentQuantity": li.current,
            "unfulfilledQuantity": max(0, li.current - li.fulfilled),
            "originalUnitPriceSet": self.money_bag(li.price_cents),
            "variant": self.variant(variant) if variant else None,
            "product": self.product(li.product_id),
        }


class Root:
    """Query and mutation root for one request (one shop)."""

    def __init__(self, sandbox: SandboxShopify, shop: Shop, bulk: bool = False) -> None:
        self.sb = sandbox
        self.shop_data = shop
        self.v = Views(sandbox, shop, bulk)
        self.bulk = bulk

    # -- queries --------------------------------------------------------------------------------

    def orders(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        reverse: bool | None = None,
        sortKey: str | None = None,  # noqa: N803
        query: str | None = None,
    ) -> dict[str, Any]:
        keep = _search_filter(query)
        items = [o for o in self.shop_data.orders.values() if keep(o)]
        if sortKey == "UPDATED_AT":
            items.sort(key=lambda o: (o.updated_at, o.id))
        elif sortKey == "CREATED_AT":
            items.sort(key=lambda o: (o.created_at, o.id))
        else:
            items.sort(key=lambda o: o.id)
        if reverse:
            items.reverse()
        return connection(items, self.v.order, first, after, self.bulk, last)

    def order(self, info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        parsed = parse_gid(id)
        o = self.shop_data.orders.get(parsed[1]) if parsed and parsed[0] == "Order" else None
        return self.v.order(o) if o else None

    def products(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        reverse: bool | None = None,
        sortKey: str | None = None,  # noqa: N803
        query: str | None = None,
    ) -> dict[str, Any]:
        keep = _search_filter(query)
        items = sorted(pid for pid, p in self.shop_data.products.items() if keep(p))
        if reverse:
            items.reverse()
        return connection(items, self.v.product, first, after, self.bulk, last)

    def product(self, info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        parsed = parse_gid(id)
        return self.v.product(parsed[1]) if parsed and parsed[0] == "Product" else None

    def productVariants(
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,  # noqa: N802
        last: int | None = None,
        before: str | None = None,
        reverse: bool | None = None,
        sortKey: str | None = None,
        query: str | None = None,
    ) -> dict[str, Any]:  # noqa: N803
        keep = _search_filter(query)
        items = sorted((v for v in self.shop_data.variants() if keep(v)), key=lambda v: v.id)
        if query:
            m = re.search(r"sku:'?([^' ]+)'?", query)
            if m:
                items = [v for v in items if v.sku == m.group(1)]
        if reverse:
            items.reverse()
        return connection(items, self.v.variant, first, after, self.bulk, last)

    def inventoryItem(self, info: Any, id: str) -> dict[str, Any] | None:  # noqa: N802,A002
        parsed = parse_gid(id)
        if not parsed or parsed[0] != "InventoryItem":
            return None
        variant = next((v for v in self.shop_data.variants() if v.inventory_item_id == parsed[1]), None)
        return self.v.inventory_item(variant) if variant else None

    def inventoryItems(  # noqa: N802
        self,
        info: Any,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        reverse: bool | None = None,
        query: str | None = None,
    ) -> dict[str, Any]:
        keep = _search_filter(query)
        items = sorted(
            (v for v in self.shop_data.variants() if keep(_Dated(item_updated_at(self.shop_data, v), v.created_at))),
            key=lambda v: v.inventory_item_id,
        )
        if reverse:
            items.reverse()
        return connection(items, self.v.inventory_item, first, after, self.bulk, last)

    def ordersCount(self, info: Any, query: str | None = None, limit: int | None = 10000) -> dict[str, Any]:  # noqa: N802
        keep = _search_filter(query)
        count = sum(1 for o in self.shop_data.orders.values() if keep(o))
        if limit is not None and count > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": count, "precision": "EXACT"}

    def shop(self, info: Any) -> dict[str, Any]:
        return {
            "__typename": "Shop",
            "id": gid("Shop", self.shop_data.id),
            "name": self.shop_data.name,
            "myshopifyDomain": self.shop_data.domain,
            "ianaTimezone": self.shop_data.iana_timezone,
            "currencyCode": self.shop_data.currency,
        }

    def currentBulkOperation(self, info: Any, type: str | None = None) -> dict[str, Any] | None:  # noqa: N802,A002
        return self.sb._current_bulk(self.shop_data, type or "QUERY")

    def node(self, info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        parsed = parse_gid(id)
        if not parsed:
            return None
        kind, num = parsed
        if kind == "Order" and num in self.shop_data.orders:
            return self.v.order(self.shop_data.orders[num])
        if kind == "ProductVariant" and (variant := self.shop_data.variant(num)):
            return self.v.variant(variant)
        return None

    # -- mutations ------------------------------------------------------------------------------

    def _record(self, name: str, **args: Any) -> None:
        self.sb.mutations.append({"shop": self.shop_data.domain, "mutation": name, "args": args})

    def webhookSubscriptionCreate(self, info: Any, topic: str, webhookSubscription: dict[str, Any]) -> dict:  # noqa: N802,N803
        self._record("webhookSubscriptionCreate", topic=topic, webhookSubscription=webhookSubscription)
        url = webhookSubscription.get("callbackUrl") or webhookSubscription.get("uri")
        if not url:
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {"field": ["webhookSubscription", "callbackUrl"], "message": "Address can't be blank"}
                ],
            }
        if any(s.topic == topic and s.callback_url == url for s in self.shop_data.subscriptions):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "callbackUrl"],
                        "message": "Address for this topic has already been taken",
                    }
                ],
            }
        sub = store.Subscription(id=store.next_id(), topic=topic, callback_url=url)
        self.shop_data.subscriptions.append(sub)
        return {
            "webhookSubscription": {"id": gid("WebhookSubscription", sub.id), "topic": topic},
            "userErrors": [],
        }

    def productVariantsBulkUpdate(
        self,
        info: Any,
        productId: str,
        variants: list[dict[str, Any]],  # noqa: N802,N803
        media: Any = None,
        allowPartialUpdates: bool | None = None,
    ) -> dict:  # noqa: N803
        self._record("productVariantsBulkUpdate", productId=productId, variants=variants)
        parsed = parse_gid(productId)
        product = self.shop_data.products.get(parsed[1]) if parsed and parsed[0] == "Product" else None
        if product is None:
            return {
                "productVariants": None,
                "userErrors": [
                    {
                        "field": ["productId"],
                        "message": "Product does not exist",
                        "code": "PRODUCT_DOES_NOT_EXIST",
                    }
                ],
            }
        errors, changes = [], []
        for i, item in enumerate(variants):
            vid = parse_gid(item.get("id"))
            variant = next((v for v in product.variants if vid and v.id == vid[1]), None)
            if item.get("id") is None:
                errors.append(
                    {
                        "field": ["variants", str(i), "id"],
                        "message": "Product variant is missing ID attribute",
                        "code": "PRODUCT_VARIANT_ID_MISSING",
                    }
                )
            elif variant is None:
                errors.append(
                    {
                        "field": ["variants", str(i), "id"],
                        "message": "Product variant does not exist",
                        "code": "PRODUCT_VARIANT_DOES_NOT_EXIST",
                    }
                )
            else:
                changes.append((variant, item))
        if errors:
            return {"productVariants": None, "userErrors": errors}
        for variant, item in changes:
            if item.get("inventoryPolicy"):
                variant.inventory_policy = item["inventoryPolicy"].lower()
            if item.get("price") is not None:
                variant.price_cents = int(round(float(item["price"]) * 100))
            variant.updated_at = self.sb._tick(variant.updated_at)
        product.updated_at = self.sb._tick(product.updated_at)
        self.sb._after_commit(
            lambda: self.sb._emit(self.shop_data, "PRODUCTS_UPDATE", store.rest_product(self.shop_data, product))
        )
        return {"productVariants": [self.v.variant(v) for v, _ in changes], "userErrors": []}

    def metafieldsSet(self, info: Any, metafields: list[dict[str, Any]]) -> dict:  # noqa: N802
        self._record("metafieldsSet", metafields=metafields)
        if len(metafields) > 25:
            return {
                "metafields": None,
                "userErrors": [
                    {
                        "field": ["metafields"],
                        "elementIndex": None,
                        "message": "Exceeded the maximum metafields input limit of 25.",
                        "code": "LESS_THAN_OR_EQUAL_TO",
                    }
                ],
            }
        errors = []
        for i, m in enumerate(metafields):
            owner = parse_gid(m["ownerId"])
            exists = owner is not None and (
                (owner[0] == "Order" and owner[1] in self.shop_data.orders)
                or (owner[0] == "ProductVariant" and self.shop_data.variant(owner[1]) is not None)
                or (owner[0] == "Product" and owner[1] in self.shop_data.products)
            )
            ns = m.get("namespace") or "$app"
            if not exists:
                errors.append(("ownerId", i, "Owner does not exist.", "INVALID_VALUE"))
            elif not 2 <= len(m["key"]) <= 64:
                errors.append(("key", i, "Key is too short or too long.", "TOO_SHORT"))
            elif ns != "$app" and not 3 <= len(ns) <= 255:
                errors.append(("namespace", i, "Namespace is too short.", "TOO_SHORT"))
            elif not m.get("type"):
                errors.append(("type", i, "Type can't be blank.", "BLANK"))
            elif m["type"] not in METAFIELD_TYPES:
                errors.append(("type", i, f"Type '{m['type']}' is not a valid type.", "INVALID_TYPE"))
            elif not METAFIELD_TYPES[m["type"]](m["value"]):
                errors.append(("value", i, f"Value is invalid for type {m['type']}.", "INVALID_VALUE"))
        if errors:  # metafieldsSet is atomic: one bad entry and nothing is written
            return {
                "metafields": None,
                "userErrors": [
                    {"field": ["metafields", str(i), f], "message": msg, "code": code, "elementIndex": i}
                    for f, i, msg, code in errors
                ],
            }
        out = []
        for m in metafields:
            ns = m.get("namespace") or "$app"
            key = (m["ownerId"], ns, m["key"])
            existing = self.shop_data.metafields.get(key)
            mid = existing["id"] if existing else gid("Metafield", store.next_id())
            self.shop_data.metafields[key] = {
                "id": mid,
                "namespace": ns,
                "key": m["key"],
                "value": m["value"],
                "type": m["type"],
            }
            out.append(self.shop_data.metafields[key])
        return {"metafields": out, "userErrors": []}

    def metafieldsDelete(self, info: Any, metafields: list[dict[str, Any]]) -> dict:  # noqa: N802
        self._record("metafieldsDelete", metafields=metafields)
        deleted = []
        for m in metafields:
            found = self.shop_data.metafields.pop((m["ownerId"], m["namespace"], m["key"]), None)
            deleted.append(dict(m) if found else None)
        return {"deletedMetafields": deleted, "userErrors": []}

    def _tags(self, name: str, id: str, tags: list[str], add: bool) -> dict:  # noqa: A002
        self._record(name, id=id, tags=tags)
        parsed = parse_gid(id)
        order = self.shop_data.orders.get(parsed[1]) if parsed and parsed[0] == "Order" else None
        if order is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        flat = [t.strip() for tag in tags for t in tag.split(",") if t.strip()]
        lowered = {t.lower() for t in order.tags}
        if add:
            order.tags += [t for t in dict.fromkeys(flat) if t.lower() not in lowered]
        else:
            drop = {t.lower() for t in flat}
            order.tags = [t for t in order.tags if t.lower() not in drop]
        order.updated_at = self.sb._tick(order.updated_at)
        self.sb._after_commit(
            lambda: self.sb._emit(self.shop_data, "ORDERS_UPDATED", store.rest_order(self.shop_data, order))
        )
        return {"node": {"__typename": "Order", "id": id}, "userErrors": []}

    def tagsAdd(self, info: Any, id: str, tags: list[str]) -> dict:  # noqa: N802,A002
        return self._tags("tagsAdd", id, tags, add=True)

    def tagsRemove(self, info: Any, id: str, tags: list[str]) -> dict:  # noqa: N802,A002
        return self._tags("tagsRemove", id, tags, add=False)

    def fulfillmentCreate(self, info: Any, fulfillment: dict[str, Any], message: str | None = None) -> dict:  # noqa: N802
        self._record("fulfillmentCreate", fulfillment=fulfillment)
        by_fo = {o.fulfillment_order_id: o for o in self.shop_data.orders.values()}
        errors: list[dict[str, Any]] = []
        quantities: dict[int, int] = {}
        order = None
        for i, group in enumerate(fulfillment["lineItemsByFulfillmentOrder"]):
            parsed = parse_gid(group["fulfillmentOrderId"])
            fo_order = by_fo.get(parsed[1]) if parsed and parsed[0] == "FulfillmentOrder" else None
            field = ["fulfillment", "lineItemsByFulfillmentOrder", str(i)]
            if fo_order is None:
                errors.append(
                    {"field": [*field, "fulfillmentOrderId"], "message": "Fulfillment order does not exist."}
                )
                continue
            if order is not None and fo_order is not order:
                errors.append(
                    {"field": field, "message": "All fulfillment orders must belong to the same order."}
                )
                continue
            order = fo_order
            if order.cancelled_at is not None:
                errors.append({"field": field, "message": "Fulfillment order is cancelled."})
                continue
            lines = {li.fulfillment_order_line_id: li for li in order.line_items}
            wanted = group.get("fulfillmentOrderLineItems")
            if wanted is None:  # no list: everything that remains
                wanted = [
                    {"id": gid("FulfillmentOrderLineItem", k), "quantity": li.current - li.fulfilled}
                    for k, li in lines.items()
                    if li.current > li.fulfilled
                ]
            for j, item in enumerate(wanted):
                parsed_line = parse_gid(item["id"])
                li = lines.get(parsed_line[1]) if parsed_line else None
                item_field = [*field, "fulfillmentOrderLineItems", str(j)]
                if li is None:
                    errors.append({"field": [*item_field, "id"], "message": "Line item does not exist."})
                elif not 0 < item["quantity"] <= li.current - li.fulfilled - quantities.get(li.id, 0):
                    errors.append(
                        {
                            "field": [*item_field, "quantity"],
                            "message": "Quantity must be between 1 and the remaining quantity.",
                        }
                    )
                else:
                    quantities[li.id] = quantities.get(li.id, 0) + item["quantity"]
        if errors or order is None or not quantities:
            return {
                "fulfillment": None,
                "userErrors": errors or [{"field": ["fulfillment"], "message": "Nothing to fulfill."}],
            }
        tracking = fulfillment.get("trackingInfo") or {}
        done = self.sb._apply_fulfillment(
            self.shop_data,
            order,
            quantities,
            tracking.get("number"),
            tracking.get("company"),
            tracking.get("url"),
            notify=False,
        )
        self.sb._after_commit(
            lambda: self.sb._emit(self.shop_data, "ORDERS_UPDATED", store.rest_order(self.shop_data, order))
        )
        return {
            "fulfillment": {
                "id": gid("Fulfillment", done.id),
                "status": "SUCCESS",
                "trackingInfo": [
                    {
                        "number": done.tracking_number,
                        "company": done.tracking_company,
                        "url": done.tracking_url,
                    }
                ]
                if done.tracking_number
                else [],
            },
            "userErrors": [],
        }

    def refundCreate(self, info: Any, input: dict[str, Any]) -> dict:  # noqa: N802,A002
        """Take units off an order like Shopify: ``currentQuantity`` drops, CANCEL/RETURN restock,
        and more than is left to refund (unfulfilled units only for CANCEL) is a user error."""
        self._record("refundCreate", input=input)
        parsed = parse_gid(input["orderId"])
        order = self.shop_data.orders.get(parsed[1]) if parsed and parsed[0] == "Order" else None
        if order is None:
            return {"order": None, "refund": None,
                    "userErrors": [{"field": ["orderId"], "message": "Order does not exist"}]}
        lines = {li.id: li for li in order.line_items}
        errors: list[dict[str, Any]] = []
        quantities: dict[int, int] = {}
        restock: dict[int, str] = {}
        for i, item in enumerate(input.get("refundLineItems") or []):
            field = ["refundLineItems", str(i)]
            parsed_line = parse_gid(item["lineItemId"])
            li = lines.get(parsed_line[1]) if parsed_line and parsed_line[0] == "LineItem" else None
            restock_type = item.get("restockType") or "NO_RESTOCK"
            if li is None:
                errors.append({"field": [*field, "lineItemId"], "message": "Line item does not exist"})
                continue
            left = li.current - quantities.get(li.id, 0)
            if restock_type == "CANCEL":
                left -= li.fulfilled  # only units that have not shipped can be cancelled
            if not 0 < item["quantity"] <= left:
                errors.append({"field": [*field, "quantity"],
                               "message": f"Quantity cannot refund more items than were purchased ({left} left)"})
                continue
            quantities[li.id] = quantities.get(li.id, 0) + item["quantity"]
            restock[li.id] = restock_type
        money_back, money_errors = self._refund_transactions(order, input.get("transactions") or [])
        errors += money_errors
        if errors or not (quantities or money_back):
            return {"order": None, "refund": None,
                    "userErrors": errors or [{"field": ["refundLineItems"], "message": "Nothing to refund"}]}
        refund = store.Refund(
            store.next_id(), quantities, restock, sum(t.amount_cents for t in money_back),
            input.get("note"), bool(input.get("notify")), transactions=money_back,
        )
        order.refunds.append(refund)
        order.transactions += money_back
        for line_id, units in quantities.items():
            li = lines[line_id]
            li.current_quantity = li.current - units
            v = self.shop_data.variant(li.variant_id) if li.variant_id and restock[line_id] != "NO_RESTOCK" else None
            level = self.shop_data.levels.get((v.inventory_item_id, self.shop_data.primary_location_id)) if v else None
            if level is not None:
                level.available += units  # the committed units go back on sale
        paid = sum(t.amount_cents for t in order.transactions if t.kind in ("SALE", "CAPTURE"))
        if paid and order.refunded_cents >= paid:
            order.financial_status = "refunded"
        elif order.refunded_cents:
            order.financial_status = "partially_refunded"
        order.updated_at = self.sb._tick(order.updated_at)
        self.sb._after_commit(
            lambda: self.sb._emit(self.shop_data, "ORDERS_UPDATED", store.rest_order(self.shop_data, order))
        )
        return {"order": self.v.order(order), "refund": self.v.refund(order, refund), "userErrors": []}

    def _refund_transactions(
        self, order: Order, items: list[dict[str, Any]]
    ) -> tuple[list[store.Transaction], list[dict[str, Any]]]:
        """The REFUND transactions of a ``refundCreate``, checked like Shopify: a refund goes back to
        one of the order's payments (``parentId``), through its gateway, never more than is left."""
        out: list[store.Transaction] = []
        errors: list[dict[str, Any]] = []
        taken: dict[int, int] = {}
        for i, item in enumerate(items):
            field = ["transactions", str(i)]
            parsed = parse_gid(item.get("parentId"))
            parent = next((t for t in order.transactions if parsed and parsed[0] == "OrderTransaction"
                           and t.id == parsed[1] and t.kind in ("SALE", "CAPTURE")), None)
            try:
                cents = int(round(float(item["amount"]) * 100))
            except (TypeError, ValueError):
                cents = -1
            if item.get("kind") != "REFUND":
                errors.append({"field": [*field, "kind"], "message": "Kind must be refund"})
            elif parse_gid(item.get("orderId")) != ("Order", order.id):
                errors.append({"field": [*field, "orderId"], "message": "Transaction must belong to the order"})
            elif parent is None:
                errors.append({"field": [*field, "parentId"], "message": "Parent transaction does not exist"})
            elif item.get("gateway") != parent.gateway:
                errors.append({"field": [*field, "gateway"], "message": "Gateway does not match the parent"})
            elif not 0 < cents <= order.refundable_cents(parent) - taken.get(parent.id, 0):
                errors.append({"field": [*field, "amount"],
                               "message": "Amount cannot be more than the remaining refundable amount"})
            else:
                taken[parent.id] = taken.get(parent.id, 0) + cents
                out.append(store.Transaction(store.next_id(), "REFUND", cents, parent.gateway,
                                             parent_id=parent.id))
        return out, errors

    def bulkOperationRunQuery(self, info: Any, query: str) -> dict:  # noqa: N802
        self._record("bulkOperationRunQuery", query=query)
        return self.sb._start_bulk(self.shop_data, query)
