"""WooCommerce as a storefront: pull orders/products, register webhooks, push statuses.

:class:`WooStorefront` speaks only normalized records to its callers; the REST shapes stay in
here and in :mod:`adapters.woocommerce.mapping`. The connect flow helpers
(:func:`authorize_url`, :func:`parse_auth_callback`) need no client: they run before any keys
exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from connector.domain.records import (
    InventoryLevelRecord,
    LineStatusPush,
    OrderRecord,
    OrderStatusPush,
    ProductRecord,
    VariantRecord,
    VariantStatusPush,
)
from connector.errors import MappingError, PlatformError, ValidationError

from .client import PageStats, WooClient, batch_errors, check_store_url
from .mapping import order_from_payload, product_from_payload

WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "product.updated")
META_ETA = "_backorder_eta"
META_TEXT = "_backorder_text"
META_ORDER_STATUS = "_backorder_status"
STOCK_LOCATION = "woocommerce-stock"  # WooCommerce has no locations: one pseudo-location


def _gmt(moment: datetime) -> str:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValidationError("modified_after must be timezone-aware", field="modified_after")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class WooStorefront:
    """The Storefront port for one WooCommerce store."""

    def __init__(self, client: WooClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ reading

    def fetch_orders_since(
        self, modified_after: datetime | None, *, include_trash: bool = True, max_repeats: int = 2
    ) -> Iterator[OrderRecord]:
        """Orders modified strictly after ``modified_after`` (all when None), oldest change first.

        WooCommerce compares at one-second resolution and strictly; callers should pass their
        cursor minus a small overlap and rely on ``updated_at`` to drop versions already seen
        (the same order can be yielded twice). ``status=any`` hides trashed orders, so (with
        ``include_trash``) a second, usually one-request, pass reads ``status=trash`` changes.

        Offset paging over a list sorted by ``modified`` is not stable: an order changed (or
        trashed) while we page moves to the end (or out) and shifts the rest back by one, so one
        unchanged order slips past the page boundary unseen, and a cursor taken from the newest
        ``updated_at`` would then lose it for good. We detect it (fewer distinct orders than the
        first page's ``X-WP-Total``) and pull again from the same cursor, at most ``max_repeats``
        times; past that the pull raises a retryable PlatformError rather than silently losing.
        """
        params: dict[str, Any] = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true"}
        if modified_after is not None:
            params["modified_after"] = _gmt(modified_after)
        passes = [params, {**params, "status": "trash"}] if include_trash else [params]
        for query in passes:
            for attempt in range(max_repeats + 1):
                stats = PageStats()
                seen: set[object] = set()
                for payload in self.client.paginate("orders", query, stats=stats):
                    seen.add(payload.get("id") if isinstance(payload, dict) else None)
                    yield _map_or_explain(order_from_payload, payload, "order")
                if stats.total is None or len(seen) >= stats.total:
                    break
                if attempt == max_repeats:
                    raise PlatformError(
                        f"orders changed too fast to page through: saw {len(seen)} of {stats.total}",
                        retryable=True,
                    )

    def fetch_products(self) -> Iterator[ProductRecord]:
        """Every product; variable products come with their variations (one extra list each)."""
        for payload in self.client.paginate("products", {"orderby": "id", "order": "asc"}):
            variations = None
            if isinstance(payload, dict) and payload.get("type") == "variable":
                variations = list(
                    self.client.paginate(
                        f"products/{payload.get('id')}/variations", {"orderby": "id", "order": "asc"}
                    )
                )
            yield _map_or_explain(lambda p, v=variations: product_from_payload(p, v), payload, "product")

    def fetch_variants(self) -> Iterator[VariantRecord]:
        """Every sellable variant (simple products and variations), like the Shopify storefront's."""
        for product in self.fetch_products():
            yield from product.variants

    def fetch_inventory_levels(self) -> Iterator[InventoryLevelRecord]:
        """The stock of every stock-managed variant again, as one level per variant at a single
        pseudo-location ``STOCK_LOCATION``.

        WooCommerce keeps one *available* number on the product/variation (already minus every
        unshipped order). It also arrives with the products, but a pull applies products before
        orders, when the engine does not yet know which orders hold units; re-applying it after
        the orders (the pull's last step) lets the engine count those units back onto the shelf.
        ``updated_at`` is None on purpose: stock changes do not bump ``date_modified``, so a
        timestamp would make a changed level look unchanged.
        """
        for product in self.fetch_products():
            for variant in product.variants:
                if variant.tracks_inventory and variant.stock_quantity is not None:
                    yield InventoryLevelRecord(
                        inventory_item_external_id=variant.inventory_item_external_id or variant.external_id,
                        location_external_id=STOCK_LOCATION,
                        available=variant.stock_quantity,
                    )

    def fetch_order(self, order_id: str) -> OrderRecord:
        return _map_or_explain(order_from_payload, self.client.get(f"orders/{order_id}"), "order")

    # ------------------------------------------------------------------ webhooks

    def register_webhooks(
        self, delivery_url: str, secret: str, topics: Sequence[str] = WEBHOOK_TOPICS
    ) -> dict[str, int]:
        """Subscribe ``delivery_url`` to ``topics``; idempotent. Returns topic -> webhook id.

        An existing webhook for the same topic and URL is reactivated and re-keyed (WooCommerce
        disables a webhook after 5 failed deliveries) instead of creating a duplicate.
        """
        if not secret:
            raise ValidationError("webhook secret is required", field="secret")
        existing: dict[str, dict[str, Any]] = {}
        for hook in self.client.paginate("webhooks"):
            if hook.get("delivery_url") == delivery_url and hook.get("topic") in topics and "id" in hook:
                existing.setdefault(hook["topic"], hook)
        result: dict[str, int] = {}
        for topic in topics:
            found = existing.get(topic)
            if found is not None:
                answer = self.client.put(f"webhooks/{found['id']}", {"status": "active", "secret": secret})
            else:
                answer = self.client.post(
                    "webhooks",
                    {
                        "name": f"Backorder connector {topic}",
                        "topic": topic,
                        "delivery_url": delivery_url,
                        "secret": secret,
                        "status": "active",
                    },
                )
            if not isinstance(answer, dict) or not isinstance(answer.get("id"), int):
                raise PlatformError(f"webhook {topic}: the store's answer has no id")
            result[topic] = answer["id"]
        return result

    # ------------------------------------------------------------------ writing

    def push_variants(self, pushes: Iterable[VariantStatusPush]) -> None:
        """Backorder policy and ETA meta per variant, batched per endpoint (<= 100 per call).

        ``backorders`` is "notify" when allowed (customers see "Available on backorder") and
        "no" otherwise. It only has an effect on stock-managed items; we do not switch
        ``manage_stock`` on, that stays the merchant's decision.
        """
        simple: list[dict[str, Any]] = []
        by_parent: dict[str, list[dict[str, Any]]] = {}
        for push in pushes:
            update = {
                "id": _numeric_id(push.variant_external_id, "variant_external_id"),
                "backorders": "notify" if push.allow_backorder else "no",
                "meta_data": [
                    {"key": META_ETA, "value": push.eta.isoformat() if push.eta else ""},
                    {"key": META_TEXT, "value": push.text},
                ],
            }
            parent = push.product_external_id
            if parent is None or parent == push.variant_external_id:
                simple.append(update)
            else:
                by_parent.setdefault(parent, []).append(update)
        if simple:
            _raise_on_refusals(self.client.batch("products/batch", update=simple), "products/batch")
        for parent, updates in by_parent.items():
            path = f"products/{parent}/variations/batch"
            _raise_on_refusals(self.client.batch(path, update=updates), path)

    def push_orders(self, pushes: Iterable[OrderStatusPush]) -> None:
        """Per order: a private note with every line's status and ETA, a customer note if set,
        and the summary in order meta ``_backorder_status`` (batched).

        Notes are not idempotent on WooCommerce's side, and a connection dropped after the store
        applied a note leaves the outbox to retry the push: :meth:`_note_once` makes the retry
        skip a note the store already has.
        """
        pushes = list(pushes)
        for push in pushes:
            self._note_once(push.order_external_id, internal_note(push), customer=False)
            if push.customer_note:
                self.add_customer_note(push.order_external_id, push.customer_note)
        updates = [
            {
                "id": _numeric_id(push.order_external_id, "order_external_id"),
                "meta_data": [{"key": META_ORDER_STATUS, "value": json.dumps(_lines_summary(push.lines))}],
            }
            for push in pushes
        ]
        if updates:
            _raise_on_refusals(self.client.batch("orders/batch", update=updates), "orders/batch")

    # Connect-flow helpers, also reachable from the class (they need no keys).
    @staticmethod
    def authorize_url(store_url: str, app_name: str, user_id: str, return_url: str, callback_url: str) -> str:
        return authorize_url(store_url, app_name, user_id, return_url, callback_url)

    @staticmethod
    def parse_auth_callback(body: bytes) -> WooAuthKeys:
        return parse_auth_callback(body)

    def fulfil_lines(
        self, order_external_id: str, quantities: Mapping[str, int], tracking: Mapping[str, str | None]
    ) -> None:
        """The ``connector.ports.Storefront`` way to report shipped lines. WooCommerce core ships
        whole orders: the order is completed, with the tracking in a private note. The customer
        hears of the shipment once, from the connector's shipped notice (an e-mail, or a customer
        note when the shop chose ``notify_by`` "store_note"), not a second time from here."""
        parts = [p for p in (tracking.get("company"), tracking.get("number"), tracking.get("url")) if p]
        self._note_once(order_external_id, "Shipped: " + " ".join(parts), customer=False)
        self.client.put(f"orders/{order_external_id}", {"status": "completed"})

    def cancel_lines(
        self, order_external_id: str, quantities: Mapping[str, int], reason: str, reference: str
    ) -> None:
        """Refund ``{line item id: units}`` of an order through ``POST orders/<id>/refunds``,
        restocking them and asking the payment gateway to return the money (``api_refund``).

        WooCommerce has no idempotency key for refunds, so ``reference`` (the outbox key) ends
        the refund's reason and an existing refund carrying it means done: a retry after a lost
        answer does not refund twice. Each line is refunded at its paid unit price.
        """
        wanted = {line: int(units) for line, units in quantities.items() if int(units) > 0}
        if not wanted:
            return
        order_id = _numeric_id(order_external_id, "order_external_id")
        marker = f"[{reference}]"
        for refund in self.client.paginate(f"orders/{order_id}/refunds"):
            if marker in str(refund.get("reason") or ""):
                return
        order = self.client.get(f"orders/{order_id}")
        items = {str(item.get("id")): item for item in (order.get("line_items") or []) if isinstance(item, dict)}
        lines: list[dict[str, Any]] = []
        amount = Decimal(0)
        for line, units in sorted(wanted.items()):
            item = items.get(line)
            if item is None:
                raise ValidationError(f"order {order_id} has no line item {line}", field=f"quantities.{line}")
            total = _unit_price(item, line) * units
            amount += total
            lines.append({"id": int(line), "quantity": units, "refund_total": str(total), "refund_tax": []})
        self.client.post(
            f"orders/{order_id}/refunds",
            {"amount": str(amount), "reason": f"{reason} {marker}", "api_refund": True, "api_restock": True,
             "line_items": lines},
        )

    def add_customer_note(self, order_external_id: str, note: str) -> None:
        """A note the customer sees and receives by e-mail (WooCommerce's ``customer_note`` mail):
        the store's own way to tell the customer something about the order."""
        _numeric_id(order_external_id, "order_external_id")
        self._note_once(order_external_id, note, customer=True)

    def _note_once(self, order_external_id: str, note: str, *, customer: bool) -> None:
        """Add a note unless the order's newest note of that kind already says exactly this.

        A retry after a lost answer (a dropped connection, a 502 after the store saved the note)
        would otherwise add it twice, and a customer note is also an e-mail to the customer. A
        repeat of the same text right after itself carries no news, so skipping it is right in
        any case; the same text after a different one is still added.
        """
        path = f"orders/{order_external_id}/notes"
        newest = self.client.get(path, {"type": "customer" if customer else "internal"})
        if isinstance(newest, list) and newest and isinstance(newest[0], dict):
            if str(newest[0].get("note") or "").strip() == note.strip():
                return
        self.client.post(path, {"note": note, "customer_note": customer})

    def complete_order_with_tracking(self, order_id: str, tracking_text: str) -> None:
        """Tell the customer how to track the parcel, then mark the order completed.

        Note first: if completing fails, the customer has the tracking and a retry only repeats
        the status change (idempotent). WooCommerce core has no tracking field; shipment-tracking
        plugins differ, so a customer note is the portable channel.
        """
        self.add_customer_note(order_id, tracking_text)
        self.client.put(f"orders/{order_id}", {"status": "completed"})


def _numeric_id(value: str, field: str) -> int:
    if not (isinstance(value, str) and value.isdigit()):
        raise ValidationError(f"{field} must be a WooCommerce numeric id, got {value!r}", field=field)
    return int(value)


def _unit_price(item: Mapping[str, Any], line: str) -> Decimal:
    """What one unit of a line item cost the customer (its total over its quantity, in cents)."""
    try:
        total, quantity = Decimal(str(item.get("total"))), int(item.get("quantity") or 0)
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(f"line item {line} has no usable total", field=f"quantities.{line}") from exc
    if quantity <= 0:
        raise ValidationError(f"line item {line} has no quantity left to refund", field=f"quantities.{line}")
    return (total / quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def internal_note(push: OrderStatusPush) -> str:
    lines = [push.note] if push.note else []
    lines.append("Backorder status:" if push.backordered else "Stock status:")
    for line in push.lines:
        label = line.sku or f"line {line.line_external_id}"
        eta = f", ETA {line.eta.isoformat()}" if line.eta else ""
        lines.append(f"- {label}: {line.status}{eta}")
    return "\n".join(lines)


def _lines_summary(lines: Sequence[LineStatusPush]) -> list[dict[str, Any]]:
    return [
        {
            "line": ln.line_external_id,
            "sku": ln.sku,
            "status": ln.status,
            "eta": ln.eta.isoformat() if ln.eta else None,
        }
        for ln in lines
    ]


def _raise_on_refusals(results: dict[str, list[Any]], path: str) -> None:
    refused = batch_errors(results)
    if refused:
        detail = "; ".join(f"id {item.get('id')}: {item['error'].get('message')}" for item in refused[:5])
        raise PlatformError(
            f"POST {path}: {len(refused)} object(s) refused ({detail})",
            refused=[item.get("id") for item in refused],
        )


def _map_or_explain(mapper: Any, payload: Any, kind: str) -> Any:
    try:
        return mapper(payload)
    except MappingError as exc:
        ident = payload.get("id") if isinstance(payload, dict) else None
        raise MappingError(f"{kind} {ident}: {exc.message}", field=exc.field, external_id=ident) from exc


# ---------------------------------------------------------------------- connect flow


@dataclass(frozen=True, slots=True)
class WooAuthKeys:
    """What WooCommerce POSTs to the callback URL after the merchant approves."""

    key_id: int
    user_id: str
    consumer_key: str
    consumer_secret: str
    key_permissions: str

    def __repr__(self) -> str:  # keep the secret out of logs
        return f"WooAuthKeys(key_id={self.key_id}, user_id={self.user_id!r}, key_permissions={self.key_permissions!r})"


def authorize_url(store_url: str, app_name: str, user_id: str, return_url: str, callback_url: str) -> str:
    """Where to send the merchant to create keys for us (``/wc-auth/v1/authorize``).

    ``user_id`` comes back unchanged in the callback body and the return URL: use an opaque,
    unguessable value bound to the pending connection (not a database id), and check it.
    """
    base = check_store_url(store_url)
    query = urlencode(
        {
            "app_name": app_name,
            "scope": "read_write",
            "user_id": user_id,
            "return_url": return_url,
            "callback_url": callback_url,
        }
    )
    return f"{base}/wc-auth/v1/authorize?{query}"


def parse_auth_callback(body: bytes) -> WooAuthKeys:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise MappingError("wc-auth callback body is not JSON", field="body") from None
    if not isinstance(data, dict):
        raise MappingError("wc-auth callback body must be a JSON object", field="body")
    values: dict[str, str] = {}
    for name in ("user_id", "consumer_key", "consumer_secret", "key_permissions"):
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and name == "user_id":
            value = str(value)
        if not isinstance(value, str) or not value:
            raise MappingError(f"wc-auth callback: {name} is missing", field=name)
        values[name] = value
    key_id = data.get("key_id")
    if isinstance(key_id, str) and key_id.isdigit():
        key_id = int(key_id)
    if not isinstance(key_id, int) or isinstance(key_id, bool):
        raise MappingError("wc-auth callback: key_id is missing", field="key_id")
    if not values["consumer_key"].startswith("ck_") or not values["consumer_secret"].startswith("cs_"):
        raise MappingError("wc-auth callback: keys do not look like WooCommerce keys", field="consumer_key")
    return WooAuthKeys(key_id=key_id, **values)
