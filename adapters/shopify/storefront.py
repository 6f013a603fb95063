"""The Shopify storefront port: read orders/variants/stock, push backorder status back.

Built on :class:`adapters.shopify.client.ShopifyClient` (all HTTP) and
:mod:`adapters.shopify.mapping` (all translation); this module only pages, batches and joins.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.shopify import mapping, queries
from adapters.shopify.client import ShopifyClient, raise_user_errors
from connector.domain.records import (
    InventoryLevelRecord,
    OrderRecord,
    OrderStatusPush,
    ProductRecord,
    VariantRecord,
    VariantStatusPush,
)
from connector.errors import PlatformError, ValidationError

log = logging.getLogger(__name__)

NAMESPACE = "backorder_connector"
BACKORDER_TAG = "backordered"
METAFIELDS_PER_CALL = 25  # metafieldsSet takes at most 25 and is atomic
WEBHOOK_TOPICS = (
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "INVENTORY_LEVELS_UPDATE",
    "PRODUCTS_UPDATE",
    "APP_UNINSTALLED",
    "BULK_OPERATIONS_FINISH",
)
_BULK_FAILED = {"FAILED", "CANCELED", "CANCELING", "EXPIRED"}
# A first pull of a shop with more orders than this goes through a bulk operation: paging stops at
# 25,000 objects and costs a query per 18 orders, a bulk query costs one request and no points.
DEFAULT_BULK_BACKFILL_ORDERS = 2000


def to_gid(kind: str, external_id: str) -> str:
    return external_id if external_id.startswith("gid://") else f"gid://shopify/{kind}/{external_id}"


def _search_time(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValidationError("updated_after must be timezone-aware", field="updated_after")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class ShopifyStorefront:
    def __init__(
        self,
        client: ShopifyClient,
        *,
        bulk_poll_interval: float = 2.0,
        bulk_timeout: float = 6 * 3600,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        bulk_threshold: int = DEFAULT_BULK_BACKFILL_ORDERS,
    ) -> None:
        self.client = client
        self.bulk_threshold = bulk_threshold
        self._bulk_poll_interval = bulk_poll_interval
        self._bulk_timeout = bulk_timeout
        self._sleep = sleep
        self._clock = clock

    # -- reading --------------------------------------------------------------------------------

    def _pages(self, query: str, variables: dict[str, Any], root: str) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            data = self.client.execute(query, {**variables, "after": after})
            conn = data.get(root)
            if not isinstance(conn, dict):
                raise PlatformError(f"response without {root}", field=root)
            yield from conn.get("nodes") or []
            page = conn.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                return
            after = page.get("endCursor")
            if not after:
                raise PlatformError(f"{root}: hasNextPage without endCursor", field=root)

    def fetch_orders_since(self, updated_after: datetime | None) -> Iterator[OrderRecord]:
        """Orders updated at or after ``updated_after`` (all visible orders when None), oldest first.

        The bound is inclusive (``>=``): Shopify timestamps have second resolution, so a strict
        bound would lose an order updated in the same second as the cursor. The caller sees such
        an order again and ignores it because its ``updated_at`` did not move.
        """
        if updated_after is None and self.count_orders(self.bulk_threshold + 1) > self.bulk_threshold:
            log.info("%s: first pull of a big shop, through a bulk operation", self.client.shop_domain)
            yield from self.bulk_backfill_orders(None)
            return
        search = f"updated_at:>='{_search_time(updated_after)}'" if updated_after else None
        variables = {"first": queries.ORDERS_PAGE_SIZE, "query": search}
        for node in self._pages(queries.ORDERS_PAGE, variables, "orders"):
            yield mapping.order_from_graphql(self._complete_line_items(node))

    def count_orders(self, limit: int) -> int:
        """The shop's order count, counted up to ``limit`` (enough to choose paging or bulk)."""
        data = self.client.execute(queries.ORDERS_COUNT, {"query": None, "limit": limit})
        counted = data.get("ordersCount") or {}
        try:
            return int(counted.get("count") or 0)
        except (TypeError, ValueError) as exc:
            raise PlatformError("ordersCount is not a number", field="ordersCount") from exc

    def shop_timezone(self) -> str:
        """The shop's IANA time zone as set in the Shopify admin (e.g. ``Europe/Paris``)."""
        zone = (self.client.execute(queries.SHOP_TIMEZONE).get("shop") or {}).get("ianaTimezone")
        if not isinstance(zone, str) or not zone:
            raise PlatformError("shop without ianaTimezone", field="shop.ianaTimezone")
        return zone

    def _complete_line_items(self, node: dict[str, Any]) -> dict[str, Any]:
        """Fetch the rest of an order's lines when it has more than fit in the page query."""
        line_items = node.get("lineItems") or {}
        page = line_items.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return node
        nodes = list(line_items.get("nodes") or [])
        after = page.get("endCursor")
        while after:
            data = self.client.execute(
                queries.ORDER_LINE_ITEMS_PAGE,
                {"id": node.get("id"), "first": queries.ORDER_LINE_ITEMS_PAGE_SIZE, "after": after},
            )
            conn = ((data.get("order") or {}).get("lineItems")) or {}
            nodes += conn.get("nodes") or []
            more = conn.get("pageInfo") or {}
            after = more.get("endCursor") if more.get("hasNextPage") else None
        return {**node, "lineItems": {"nodes": nodes}}

    def fetch_products(self) -> Iterator[ProductRecord]:
        """Every product with all its variants (the ``connector.ports.Storefront`` read)."""
        return self.fetch_products_since(None)

    def fetch_products_since(self, updated_after: datetime | None) -> Iterator[ProductRecord]:
        """Products updated at or after ``updated_after`` (inclusive, as for orders), all when None.

        A variant edit moves its product's ``updated_at``, so the product search finds it."""
        search = f"updated_at:>='{_search_time(updated_after)}'" if updated_after else None
        variables = {"first": queries.PRODUCTS_PAGE_SIZE, "query": search}
        for node in self._pages(queries.PRODUCTS_PAGE, variables, "products"):
            yield mapping.product_from_graphql(self._complete_variants(node))

    def _complete_variants(self, node: dict[str, Any]) -> dict[str, Any]:
        variants = node.get("variants") or {}
        page = variants.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return node
        nodes = list(variants.get("nodes") or [])
        after = page.get("endCursor")
        while after:
            data = self.client.execute(
                queries.PRODUCT_VARIANTS_PAGE,
                {"id": node.get("id"), "first": queries.PRODUCT_VARIANTS_PAGE_SIZE, "after": after},
            )
            conn = (data.get("product") or {}).get("variants") or {}
            nodes += conn.get("nodes") or []
            more = conn.get("pageInfo") or {}
            after = more.get("endCursor") if more.get("hasNextPage") else None
        return {**node, "variants": {"nodes": nodes}}

    def fetch_variants(self) -> Iterator[VariantRecord]:
        variables = {"first": queries.VARIANTS_PAGE_SIZE, "query": None}
        for node in self._pages(queries.VARIANTS_PAGE, variables, "productVariants"):
            yield mapping.variant_from_graphql(node)

    def fetch_inventory_levels(self) -> Iterator[InventoryLevelRecord]:
        """Every level (per inventory item and location) with available/on_hand/incoming."""
        variables = {"first": queries.VARIANT_LEVELS_PAGE_SIZE}
        for node in self._pages(queries.VARIANT_LEVELS_PAGE, variables, "productVariants"):
            yield from mapping.inventory_levels_from_variant_node(node)
            item = node.get("inventoryItem") or {}
            levels = item.get("inventoryLevels") or {}
            page = levels.get("pageInfo") or {}
            if page.get("hasNextPage"):  # stocked at more locations than one page query carries
                yield from self._more_levels(item, page.get("endCursor"))

    def fetch_inventory_levels_since(self, updated_after: datetime | None) -> Iterator[InventoryLevelRecord]:
        """Levels of the inventory items updated at or after ``updated_after`` (every level when None)."""
        if updated_after is None:
            yield from self.fetch_inventory_levels()
            return
        variables = {"first": queries.INVENTORY_ITEMS_PAGE_SIZE,
                     "query": f"updated_at:>='{_search_time(updated_after)}'"}
        for item in self._pages(queries.INVENTORY_ITEMS_LEVELS_PAGE, variables, "inventoryItems"):
            yield from mapping.inventory_levels_from_variant_node({"inventoryItem": item})
            page = (item.get("inventoryLevels") or {}).get("pageInfo") or {}
            if page.get("hasNextPage"):
                yield from self._more_levels(item, page.get("endCursor"))

    def _more_levels(self, item: dict[str, Any], after: str | None) -> Iterator[InventoryLevelRecord]:
        item_id = mapping.external_id(item.get("id"), "inventoryItem.id")
        while after:
            data = self.client.execute(
                queries.INVENTORY_ITEM_LEVELS_PAGE,
                {"id": item.get("id"), "first": queries.INVENTORY_ITEM_LEVELS_PAGE_SIZE, "after": after},
            )
            conn = (data.get("inventoryItem") or {}).get("inventoryLevels") or {}
            for level in conn.get("nodes") or []:
                yield mapping.inventory_level_from_graphql(level, item_id)
            page = conn.get("pageInfo") or {}
            after = page.get("endCursor") if page.get("hasNextPage") else None

    # -- webhooks -------------------------------------------------------------------------------

    def register_webhooks(
        self, callback_url: str, topics: Iterable[str] = WEBHOOK_TOPICS
    ) -> dict[str, str | None]:
        """Subscribe ``callback_url`` to each topic; already-subscribed topics are not an error.

        Returns topic → subscription gid (None where the subscription already existed).
        """
        newer = self.client.api_version >= "2025-10"
        document = queries.WEBHOOK_SUBSCRIPTION_CREATE_URI if newer else queries.WEBHOOK_SUBSCRIPTION_CREATE
        out: dict[str, str | None] = {}
        for topic in topics:
            variables = {"topic": topic, ("uri" if newer else "callbackUrl"): callback_url}
            data = self.client.execute(document, variables)
            payload = data.get("webhookSubscriptionCreate") or {}
            errors = payload.get("userErrors") or []
            if errors and all("already been taken" in str(e.get("message", "")) for e in errors):
                out[topic] = None
                continue
            result = raise_user_errors(data, "webhookSubscriptionCreate")
            out[topic] = (result.get("webhookSubscription") or {}).get("id")
        return out

    # -- writing --------------------------------------------------------------------------------

    def push_variants(self, pushes: list[VariantStatusPush]) -> None:
        """Set inventory policy (CONTINUE lets a variant sell past zero) and the theme metafields."""
        by_product: dict[str, list[VariantStatusPush]] = {}
        for push in pushes:
            if not push.product_external_id:
                raise ValidationError(
                    f"variant {push.variant_external_id} has no product id", field="product_external_id"
                )
            by_product.setdefault(push.product_external_id, []).append(push)
        for product_id, group in by_product.items():
            variants = [
                {
                    "id": to_gid("ProductVariant", p.variant_external_id),
                    "inventoryPolicy": "CONTINUE" if p.allow_backorder else "DENY",
                }
                for p in group
            ]
            data = self.client.execute(
                queries.PRODUCT_VARIANTS_BULK_UPDATE,
                {"productId": to_gid("Product", product_id), "variants": variants},
            )
            raise_user_errors(data, "productVariantsBulkUpdate")

        to_set: list[dict[str, str]] = []
        to_delete: list[dict[str, str]] = []
        for p in pushes:
            owner = to_gid("ProductVariant", p.variant_external_id)
            to_set.append(_metafield(owner, "status", "single_line_text_field", p.status))
            to_set.append(_metafield(owner, "text", "single_line_text_field", p.text))
            if p.eta is not None:
                to_set.append(_metafield(owner, "eta", "date", p.eta.isoformat()))
            else:  # no date any more: a stale ETA on the product page would be a broken promise
                to_delete.append({"ownerId": owner, "namespace": NAMESPACE, "key": "eta"})
        self._set_metafields(to_set)
        self._delete_metafields(to_delete)

    def push_orders(self, pushes: list[OrderStatusPush]) -> None:
        """Tag (``backordered``) and annotate orders with a JSON metafield of line statuses.

        ``tagsAdd``/``tagsRemove`` never overwrite the merchant's other tags (``orderUpdate.tags``
        would). Notes are not written here: ``orderUpdate.note`` overwrites the merchant's note.
        """
        to_set = []
        for push in pushes:
            owner = to_gid("Order", push.order_external_id)
            mutation, root = (
                (queries.TAGS_ADD, "tagsAdd") if push.backordered else (queries.TAGS_REMOVE, "tagsRemove")
            )
            raise_user_errors(self.client.execute(mutation, {"id": owner, "tags": [BACKORDER_TAG]}), root)
            lines = [
                {
                    "line_id": line.line_external_id,
                    "sku": line.sku,
                    "status": line.status,
                    "eta": line.eta.isoformat() if line.eta else None,
                }
                for line in push.lines
            ]
            to_set.append(
                _metafield(owner, "line_statuses", "json", json.dumps(lines, separators=(",", ":")))
            )
        self._set_metafields(to_set)

    def fulfil_lines(
        self, order_external_id: str, quantities: Mapping[str, int], tracking: Mapping[str, str | None]
    ) -> None:
        """The ``connector.ports.Storefront`` way to report shipped lines (dropship tracking).

        Shopify's own shipping e-mail stays off: the customer hears of the shipment once, from
        the connector's shipped notice, which carries the same tracking."""
        self.create_fulfillment(
            order_external_id, quantities, tracking_number=tracking.get("number"),
            tracking_company=tracking.get("company"), tracking_url=tracking.get("url"), notify_customer=False,
        )

    def cancel_lines(
        self, order_external_id: str, quantities: Mapping[str, int], reason: str, reference: str
    ) -> None:
        """Cancel and refund ``{line external id: units}`` that have not shipped (``refundCreate``
        with restock type CANCEL: the units leave the order and go back on sale).

        Shopify 2025-01 has no idempotency key on ``refundCreate``, so ``reference`` (the outbox
        key) goes into the refund's note and a refund already carrying it means done: a retry
        after a lost answer does not refund twice.

        Money only goes back through a refund's ``transactions`` (without them Shopify records the
        cancelled items and returns nothing), so Shopify's documented flow is followed: ask the
        order's ``suggestedRefund`` for these units, then ``refundCreate`` with the transactions
        it suggests (parent payment, gateway, amount, kind REFUND). An order with nothing left to
        refund (unpaid, or already refunded by hand) gets the units cancelled and no money moves.
        """
        wanted = {line: int(units) for line, units in quantities.items() if int(units) > 0}
        if not wanted:
            return
        owner = to_gid("Order", order_external_id)
        order = self.client.execute(queries.ORDER_REFUNDS, {"id": owner}).get("order")
        if not isinstance(order, dict):
            raise ValidationError(f"order {order_external_id} not found", field="order_external_id")
        marker = f"[{reference}]"
        if any(marker in str(refund.get("note") or "") for refund in order.get("refunds") or []):
            log.info("order %s: refund %s already on the store", order_external_id, reference)
            return
        refund_lines = [
            {"lineItemId": to_gid("LineItem", line), "quantity": units, "restockType": "CANCEL"}
            for line, units in sorted(wanted.items())
        ]
        refund_input = {
            "orderId": owner,
            "note": f"{reason} {marker}",
            "notify": True,
            "refundLineItems": refund_lines,
            "transactions": self._suggested_transactions(owner, refund_lines),
        }
        raise_user_errors(self.client.execute(queries.REFUND_CREATE, {"input": refund_input}), "refundCreate")

    def _suggested_transactions(self, owner: str, refund_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The REFUND transactions Shopify suggests for ``refund_lines`` (``OrderTransactionInput``)."""
        data = self.client.execute(queries.SUGGESTED_REFUND, {"id": owner, "refundLineItems": refund_lines})
        suggested = ((data.get("order") or {}).get("suggestedRefund")) or {}
        out = []
        for i, tx in enumerate(suggested.get("suggestedTransactions") or []):
            amount = ((tx.get("amountSet") or {}).get("shopMoney") or {}).get("amount")
            parent = (tx.get("parentTransaction") or {}).get("id")
            if not amount or not parent or not tx.get("gateway"):
                raise PlatformError(f"suggestedTransactions[{i}] without amount, parent or gateway",
                                    field=f"suggestedRefund.suggestedTransactions[{i}]")
            out.append({"orderId": owner, "parentId": parent, "gateway": tx["gateway"], "amount": amount,
                        "kind": "REFUND"})
        return out

    def create_fulfillment(
        self,
        order_external_id: str,
        quantities: Mapping[str, int],
        *,
        tracking_number: str | None = None,
        tracking_company: str | None = None,
        tracking_url: str | None = None,
        notify_customer: bool = False,
    ) -> str:
        """Mark ``{line_external_id: units}`` of an order as shipped; return the fulfillment gid.

        Shopify fulfills fulfillment-order lines, not order lines: the order's open fulfillment
        orders are read first and the units spread over them. Asking for more than remains is a
        :class:`ValidationError` naming the line, before anything is sent.
        """
        data = self.client.execute(
            queries.ORDER_FULFILLMENT_ORDERS, {"id": to_gid("Order", order_external_id)}
        )
        order = data.get("order")
        if not isinstance(order, dict):
            raise ValidationError(f"order {order_external_id} not found", field="order_external_id")
        wanted = {line: int(units) for line, units in quantities.items() if units > 0}
        groups: list[dict[str, Any]] = []
        for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
            if fo.get("status") not in ("OPEN", "IN_PROGRESS"):
                continue
            items = []
            for item in (fo.get("lineItems") or {}).get("nodes") or []:
                line_id = mapping.external_id(((item.get("lineItem") or {}).get("id")), "lineItem.id")
                take = min(wanted.get(line_id, 0), int(item.get("remainingQuantity") or 0))
                if take > 0:
                    items.append({"id": item["id"], "quantity": take})
                    wanted[line_id] -= take
            if items:
                groups.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": items})
        short = {line: units for line, units in wanted.items() if units > 0}
        if short:
            line = next(iter(short))
            raise ValidationError(
                f"line {line} has {short[line]} more units requested than remain to ship",
                field=f"quantities.{line}",
            )
        if not groups:
            raise ValidationError("nothing to fulfill", field="quantities")
        fulfillment: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": groups,
            "notifyCustomer": notify_customer,
        }
        if tracking_number or tracking_url:
            fulfillment["trackingInfo"] = {
                k: v
                for k, v in (
                    ("number", tracking_number),
                    ("company", tracking_company),
                    ("url", tracking_url),
                )
                if v
            }
        result = raise_user_errors(
            self.client.execute(queries.FULFILLMENT_CREATE, {"fulfillment": fulfillment}), "fulfillmentCreate"
        )
        return str((result.get("fulfillment") or {}).get("id"))

    def _set_metafields(self, metafields: list[dict[str, str]]) -> None:
        for batch in _batches(metafields, METAFIELDS_PER_CALL):
            raise_user_errors(
                self.client.execute(queries.METAFIELDS_SET, {"metafields": batch}), "metafieldsSet"
            )

    def _delete_metafields(self, identifiers: list[dict[str, str]]) -> None:
        for batch in _batches(identifiers, METAFIELDS_PER_CALL):
            data = self.client.execute(queries.METAFIELDS_DELETE, {"metafields": batch})
            raise_user_errors(data, "metafieldsDelete")

    # -- bulk backfill --------------------------------------------------------------------------

    def bulk_backfill_orders(self, updated_after: datetime | None = None) -> Iterator[OrderRecord]:
        """All orders (or those updated since) via a bulk operation, streamed from the JSONL file.

        Rows are read one at a time; an order is yielded when the next order row starts, so at
        most one order with its lines is in memory. Shopify writes each child row after its
        parent; a child whose parent is not the current order is refused rather than misjoined.
        """
        search = f"updated_at:>='{_search_time(updated_after)}'" if updated_after else None
        data = self.client.execute(
            queries.BULK_OPERATION_RUN_QUERY, {"query": queries.bulk_orders_query(search)}
        )
        payload = data.get("bulkOperationRunQuery") or {}
        if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in payload.get("userErrors") or []):
            raise PlatformError("another bulk query is running for this shop", retryable=True, retry_after=60)
        started = raise_user_errors(data, "bulkOperationRunQuery")
        op_id = (started.get("bulkOperation") or {}).get("id")
        url = self._wait_for_bulk(op_id)
        if url is None:
            return
        yield from self._orders_from_jsonl(self.client.stream_lines(url))

    def _wait_for_bulk(self, op_id: str | None) -> str | None:
        deadline = self._clock() + self._bulk_timeout
        while True:
            op = self.client.execute(queries.CURRENT_BULK_OPERATION).get("currentBulkOperation") or {}
            if op_id and op.get("id") and op.get("id") != op_id:
                raise PlatformError(f"bulk operation {op_id} was replaced by {op.get('id')}", retryable=True)
            status = op.get("status")
            if status == "COMPLETED":
                return op.get("url")  # None when the query matched nothing
            if status in _BULK_FAILED:
                raise PlatformError(
                    f"bulk operation {status}: {op.get('errorCode')}", retryable=status != "FAILED"
                )
            if self._clock() > deadline:
                raise PlatformError("bulk operation did not finish in time", retryable=True)
            self._sleep(self._bulk_poll_interval)

    def _orders_from_jsonl(self, lines: Iterable[bytes]) -> Iterator[OrderRecord]:
        current: dict[str, Any] | None = None
        for number, raw in enumerate(lines, start=1):
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise PlatformError(f"bulk result line {number} is not JSON") from exc
            if not isinstance(row, dict):
                raise PlatformError(f"bulk result line {number} is not an object")
            parent = row.pop("__parentId", None)
            if parent is None:
                if current is not None:
                    yield mapping.order_from_graphql(current)
                current = {**row, "lineItems": {"nodes": []}}
            elif current is not None and parent == current.get("id"):
                current["lineItems"]["nodes"].append(row)
            else:
                raise PlatformError(f"bulk result line {number}: child of {parent} outside its parent's rows")
        if current is not None:
            yield mapping.order_from_graphql(current)


def _metafield(owner: str, key: str, type_: str, value: str) -> dict[str, str]:
    return {"ownerId": owner, "namespace": NAMESPACE, "key": key, "type": type_, "value": value}
