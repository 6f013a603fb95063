"""In-memory WooCommerce store state and its REST semantics (no HTTP here).

:class:`WooStore` holds products, variations, orders, order notes and webhooks as the full JSON
dicts the REST API serves, and applies changes the way WooCommerce does: ``date_modified`` bumps,
derived stock fields, stock reduction at checkout (with the translated "Backordered" line meta),
stock restore on cancellation, meta_data merge by id or key. Mutations queue webhook events;
:class:`sandbox.woocommerce.server.SandboxWoo` delivers them once the lock is released.
"""

from __future__ import annotations

import copy
import html
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import payloads

ORDER_STATUSES = ("pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash")
STOCK_HOLDING = ("processing", "on-hold", "completed")
WEBHOOK_RESOURCES = ("order", "product", "customer", "coupon")
WEBHOOK_EVENTS = ("created", "updated", "deleted", "restored")
BACKORDER_VALUES = ("no", "notify", "yes")


class RestError(Exception):
    """A WP_Error: rendered as ``{"code", "message", "data": {"status"}}``."""

    def __init__(self, status: int, code: str, message: str, params: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.params = params

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if self.params:
            data["params"] = self.params
        return {"code": self.code, "message": self.message, "data": data}


def invalid_param(name: str, why: str) -> RestError:
    return RestError(400, "rest_invalid_param", f"Invalid parameter(s): {name}", {name: why})


def gmt_of(obj: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(obj[f"{key}_gmt"]).replace(tzinfo=UTC)


class WooStore:
    def __init__(
        self,
        *,
        base_url: str = "http://127.0.0.1",
        start_time: datetime = datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        site_utc_offset_hours: float = 1.0,
        backordered_label: str = "Backordered",
    ) -> None:
        self._lock = threading.RLock()
        self.base_url = base_url
        self.site_tz = payloads.site_timezone(site_utc_offset_hours)
        self.backordered_label = backordered_label  # __('Backordered') in the store's language
        self._now = start_time
        self._next_post_id = 100  # products, variations and orders share wp_posts ids
        self._next_item_id = 1
        self._next_note_id = 1
        self._next_meta_id = 1000
        self._next_webhook_id = 1
        self.products: dict[int, dict[str, Any]] = {}
        self.variations: dict[int, dict[int, dict[str, Any]]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}  # order id -> refunds, newest first
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._webhook_secrets: dict[int, str] = {}  # stored HTML-escaped, like WordPress does
        self._webhook_failures: dict[int, int] = {}
        self._reduced: dict[int, list[tuple[int, int, int]]] = {}  # order -> (product, variation, qty)
        self._events: list[tuple[str, int]] = []  # (topic, resource id) waiting for delivery
        self.emails: list[dict[str, Any]] = []  # customer e-mails WooCommerce would have sent

    # ------------------------------------------------------------------ clock and ids

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def _tick(self) -> datetime:
        """Every change happens one second after the previous one: distinct, ordered versions."""
        self._now += timedelta(seconds=1)
        return self._now

    def _post_id(self) -> int:
        self._next_post_id += 1
        return self._next_post_id

    def _touch(self, obj: dict[str, Any]) -> None:
        obj.update(payloads.wc_dates("date_modified", self._tick(), self.site_tz))

    def _after_change(self) -> None:
        """Hook for the server: deliver queued webhook events (outside the lock)."""

    # ------------------------------------------------------------------ products

    def create_product(
        self,
        name: str,
        *,
        sku: str = "",
        price: str | Decimal = "19.90",
        manage_stock: bool = True,
        stock_quantity: int | None = 0,
        backorders: str = "no",
        stock_status: str = "instock",
        kind: str = "simple",
    ) -> dict[str, Any]:
        with self._lock:
            product_id = self._post_id()
            product = payloads.product_json(
                base=self.base_url,
                product_id=product_id,
                name=name,
                kind=kind,
                sku=sku,
                price=payloads.money(price) if kind != "variable" else "",
                manage_stock=manage_stock,
                stock_quantity=stock_quantity,
                backorders=backorders,
                stock_status=payloads.stock_status_for(
                    manage_stock, stock_quantity, backorders, stock_status
                ),
                created=self._tick(),
                site_tz=self.site_tz,
            )
            self.products[product_id] = product
            if kind == "variable":
                self.variations[product_id] = {}
            self._events.append(("product.created", product_id))
            result = copy.deepcopy(product)
        self._after_change()
        return result

    def create_variable_product(
        self,
        name: str,
        variations: Iterable[dict[str, Any]],
        *,
        sku: str = "",
        manage_stock: bool = False,
        stock_quantity: int | None = None,
        backorders: str = "no",
    ) -> dict[str, Any]:
        """``variations``: dicts with ``options`` ({"Size": "M"}) and any of sku, price,
        manage_stock (True/False/"parent"), stock_quantity, backorders."""
        product = self.create_product(
            name,
            sku=sku,
            manage_stock=manage_stock,
            stock_quantity=stock_quantity,
            backorders=backorders,
            kind="variable",
        )
        for spec in variations:
            self.create_variation(product["id"], **spec)
        return self.product(product["id"])

    def create_variation(
        self,
        product_id: int,
        *,
        options: dict[str, str],
        sku: str = "",
        price: str | Decimal = "19.90",
        manage_stock: bool | str = True,
        stock_quantity: int | None = 0,
        backorders: str = "no",
    ) -> dict[str, Any]:
        with self._lock:
            parent = self._product(product_id)
            variation_id = self._post_id()
            variation = payloads.variation_json(
                base=self.base_url,
                product_id=product_id,
                variation_id=variation_id,
                product_name=parent["name"],
                options=options,
                sku=sku,
                price=payloads.money(price),
                manage_stock=manage_stock,
                stock_quantity=stock_quantity,
                backorders=backorders,
                stock_status="instock",
                created=self._tick(),
                site_tz=self.site_tz,
            )
            self.variations.setdefault(product_id, {})[variation_id] = variation
            self._derive_stock(variation, parent)
            parent["variations"].append(variation_id)
            for attr_name, option in options.items():
                attribute = next((a for a in parent["attributes"] if a["name"] == attr_name), None)
                if attribute is None:
                    attribute = {
                        "id": 0,
                        "name": attr_name,
                        "slug": attr_name.lower(),
                        "position": len(parent["attributes"]),
                        "visible": True,
                        "variation": True,
                        "options": [],
                    }
                    parent["attributes"].append(attribute)
                if option not in attribute["options"]:
                    attribute["options"].append(option)
            self._refresh_variable_price(parent)
            self._touch(parent)
            self._events.append(("product.updated", product_id))
            result = copy.deepcopy(variation)
        self._after_change()
        return result

    def update_product(self, product_id: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            result = self._update_product(product_id, fields)
        self._after_change()
        return result

    def update_variation(self, product_id: int, variation_id: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            result = self._update_variation(product_id, variation_id, fields)
        self._after_change()
        return result

    def product(self, product_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._product(product_id))

    def variation(self, product_id: int, variation_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._variation(product_id, variation_id))

    def _product(self, product_id: int) -> dict[str, Any]:
        product = self.products.get(product_id)
        if product is None:
            raise RestError(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
        return product

    def _variation(self, product_id: int, variation_id: int) -> dict[str, Any]:
        variation = self.variations.get(product_id, {}).get(variation_id)
        if variation is None:
            raise RestError(404, "woocommerce_rest_product_variation_invalid_id", "Invalid ID.")
        return variation

    def _update_product(self, product_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        product = self._product(product_id)
        self._apply_stock_fields(product, fields)
        self._touch(product)
        self._events.append(("product.updated", product_id))
        return copy.deepcopy(product)

    def _update_variation(self, product_id: int, variation_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        variation = self._variation(product_id, variation_id)
        parent = self._product(product_id)
        self._apply_stock_fields(variation, fields, parent=parent)
        self._touch(variation)
        self._refresh_variable_price(parent)
        # Saving a variation runs the parent's sync and fires product.updated for the parent.
        self._touch(parent)
        self._events.append(("product.updated", product_id))
        return copy.deepcopy(variation)

    def _apply_stock_fields(
        self, obj: dict[str, Any], fields: dict[str, Any], parent: dict[str, Any] | None = None
    ) -> None:
        if "backorders" in fields and fields["backorders"] not in BACKORDER_VALUES:
            raise invalid_param("backorders", "backorders is not one of no, notify, and yes.")
        if "stock_quantity" in fields and fields["stock_quantity"] is not None:
            if isinstance(fields["stock_quantity"], bool) or not isinstance(fields["stock_quantity"], int):
                raise invalid_param("stock_quantity", "stock_quantity is not of type integer.")
        if "manage_stock" in fields and fields["manage_stock"] not in (True, False, "parent"):
            raise invalid_param("manage_stock", "manage_stock is not of type boolean.")
        for key in (
            "name",
            "sku",
            "status",
            "manage_stock",
            "stock_quantity",
            "backorders",
            "stock_status",
            "description",
            "short_description",
        ):
            if key in fields:
                obj[key] = fields[key]
        if "regular_price" in fields:
            obj["regular_price"] = obj["price"] = payloads.money(fields["regular_price"])
        if "meta_data" in fields:
            self._merge_meta(obj["meta_data"], fields["meta_data"])
        self._derive_stock(obj, parent)

    def _derive_stock(self, obj: dict[str, Any], parent: dict[str, Any] | None) -> None:
        manage = obj["manage_stock"]
        if manage == "parent" and parent is not None:
            obj["stock_status"] = payloads.stock_status_for(
                bool(parent["manage_stock"]),
                parent["stock_quantity"],
                parent["backorders"],
                obj["stock_status"],
            )
            obj["stock_quantity"] = None
        else:
            if not manage:
                obj["stock_quantity"] = None
            obj["stock_status"] = payloads.stock_status_for(
                manage is True, obj["stock_quantity"], obj["backorders"], obj["stock_status"]
            )
        obj["backorders_allowed"] = obj["backorders"] != "no"
        obj["backordered"] = obj["stock_status"] == "onbackorder"

    def _refresh_variable_price(self, parent: dict[str, Any]) -> None:
        prices = [Decimal(v["price"]) for v in self.variations.get(parent["id"], {}).values() if v["price"]]
        parent["price"] = payloads.money(min(prices)) if prices else ""

    def _merge_meta(self, meta: list[dict[str, Any]], updates: object) -> None:
        """WooCommerce semantics: with ``id`` update that entry, else the first with ``key``, else add."""
        if not isinstance(updates, list):
            raise invalid_param("meta_data", "meta_data is not of type array.")
        for update in updates:
            if not isinstance(update, dict) or not isinstance(update.get("key"), str):
                continue
            target = None
            if update.get("id"):
                target = next((m for m in meta if m["id"] == update["id"]), None)
            if target is None:
                target = next((m for m in meta if m["key"] == update["key"]), None)
            if target is None:
                self._next_meta_id += 1
                meta.append({"id": self._next_meta_id, "key": update["key"], "value": update.get("value")})
            else:
                target["key"], target["value"] = update["key"], update.get("value")

    def _stock_target(self, product_id: int, variation_id: int) -> dict[str, Any]:
        if variation_id:
            variation = self._variation(product_id, variation_id)
            return self._product(product_id) if variation["manage_stock"] == "parent" else variation
        return self._product(product_id)

    def _change_stock(self, product_id: int, variation_id: int, delta: int) -> int | None:
        """Like wc_update_product_stock: no date_modified bump and no product.updated webhook."""
        target = self._stock_target(product_id, variation_id)
        if target["manage_stock"] is not True:
            return None
        before = target["stock_quantity"] or 0
        target["stock_quantity"] = before + delta
        parent = self.products.get(product_id) if variation_id else None
        self._derive_stock(target, parent if target is not parent else None)
        if variation_id and target is parent:
            for variation in self.variations.get(product_id, {}).values():
                if variation["manage_stock"] == "parent":
                    self._derive_stock(variation, parent)
        return before

    # ------------------------------------------------------------------ orders

    def create_order(
        self,
        items: Iterable[dict[str, Any] | tuple[int, ...]],
        *,
        status: str = "processing",
        email: str = "ada@example.com",
        first_name: str = "Ada",
        last_name: str = "Lovelace",
        customer_id: int = 0,
        currency: str = "EUR",
        via_checkout: bool = True,
        ship: bool = True,
    ) -> dict[str, Any]:
        """An order as a checkout creates it: line meta "Backordered" when the product manages
        stock with backorders == "notify" and goes short, then stock reduced if it holds stock.

        ``items``: dicts {product_id, variation_id?, quantity} or tuples (product_id, qty) /
        (product_id, variation_id, qty).
        """
        with self._lock:
            result = self._create_order(
                items,
                status=status,
                email=email,
                first_name=first_name,
                last_name=last_name,
                customer_id=customer_id,
                currency=currency,
                via_checkout=via_checkout,
                ship=ship,
            )
        self._after_change()
        return result

    def _create_order(
        self,
        items: Iterable[Any],
        *,
        status: str,
        email: str,
        first_name: str,
        last_name: str,
        customer_id: int,
        currency: str,
        via_checkout: bool,
        ship: bool,
    ) -> dict[str, Any]:
        if status not in ORDER_STATUSES:
            raise invalid_param("status", f"status is not one of {', '.join(ORDER_STATUSES)}.")
        line_items = []
        for raw in items:
            if isinstance(raw, tuple):
                spec = (
                    {"product_id": raw[0], "quantity": raw[1]}
                    if len(raw) == 2
                    else {"product_id": raw[0], "variation_id": raw[1], "quantity": raw[2]}
                )
            else:
                spec = raw
            product_id, variation_id = int(spec["product_id"]), int(spec.get("variation_id") or 0)
            quantity = int(spec.get("quantity", 1))
            product = self._product(product_id)
            variation = self._variation(product_id, variation_id) if variation_id else None
            sold = variation or product
            self._next_item_id += 1
            item = payloads.line_item_json(
                item_id=self._next_item_id,
                name=sold["name"],
                product_id=product_id,
                variation_id=variation_id,
                quantity=quantity,
                sku=sold["sku"],
                price=sold["price"] or "0",
                parent_name=product["name"] if variation else None,
                attributes={a["name"]: a["option"] for a in (variation or {}).get("attributes", [])},
            )
            target = self._stock_target(product_id, variation_id)
            if (
                via_checkout
                and target["manage_stock"] is True
                and target["backorders"] == "notify"
                and (target["stock_quantity"] or 0) - quantity < 0
            ):
                short = str(quantity - max(0, target["stock_quantity"] or 0))
                self._next_meta_id += 1
                item["meta_data"].append(
                    {
                        "id": self._next_meta_id,
                        "key": self.backordered_label,
                        "value": short,
                        "display_key": self.backordered_label,
                        "display_value": short,
                    }
                )
            line_items.append(item)
        order_id = self._post_id()
        order = payloads.order_json(
            base=self.base_url,
            order_id=order_id,
            number=str(order_id),
            status=status,
            currency=currency,
            line_items=line_items,
            billing=payloads.address(first_name, last_name, email=email),
            shipping=payloads.address(first_name, last_name)
            if ship
            else {k: "" for k in payloads.address("", "")},
            customer_id=customer_id,
            created=self._tick(),
            site_tz=self.site_tz,
            order_key="wc_order_" + secrets.token_hex(6),
        )
        if not via_checkout:
            order["created_via"] = "rest-api"
        self.orders[order_id] = order
        self.notes[order_id] = []
        if status in STOCK_HOLDING:
            self._reduce_stock(order)
        self._events.append(("order.created", order_id))
        return copy.deepcopy(order)

    def _reduce_stock(self, order: dict[str, Any]) -> None:
        if order["id"] in self._reduced:
            return
        reduced = []
        changes = []
        for item in order["line_items"]:
            before = self._change_stock(item["product_id"], item["variation_id"], -item["quantity"])
            if before is not None:
                reduced.append((item["product_id"], item["variation_id"], item["quantity"]))
                changes.append(
                    f"{item['name']} ({item['sku'] or item['product_id']}) "
                    f"{before}&rarr;{before - item['quantity']}"
                )
        self._reduced[order["id"]] = reduced
        if changes:
            self._add_note(order["id"], "Stock levels reduced: " + ", ".join(changes), False, author="system")

    def _restore_stock(self, order: dict[str, Any]) -> None:
        for product_id, variation_id, quantity in self._reduced.pop(order["id"], []):
            self._change_stock(product_id, variation_id, quantity)

    def update_order(self, order_id: int, **fields: Any) -> dict[str, Any]:
        with self._lock:
            result = self._update_order(order_id, fields)
        self._after_change()
        return result

    def order(self, order_id: int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._order(order_id))

    def order_notes(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.notes.get(order_id, []))

    def _order(self, order_id: int) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise RestError(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        return order

    def _update_order(self, order_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        order = self._order(order_id)
        status = fields.get("status")
        if status is not None:
            if status not in ORDER_STATUSES:
                raise invalid_param("status", f"status is not one of {', '.join(ORDER_STATUSES)}.")
            previous = order["status"]
            order["status"] = status
            if status in STOCK_HOLDING:
                self._reduce_stock(order)
            elif status in ("cancelled", "pending"):
                self._restore_stock(order)
            if status == "completed" and previous != "completed":
                order.update(payloads.wc_dates("date_completed", self._now, self.site_tz))
                self._email(order_id, "customer_completed_order", "Your order is complete.")
            if status in ("processing", "completed") and order["date_paid_gmt"] is None:
                order.update(payloads.wc_dates("date_paid", self._now, self.site_tz))
            order["needs_payment"] = status in ("pending", "failed")
            order["is_editable"] = status in ("pending", "on-hold")
            if previous != status:
                self._add_note(
                    order_id,
                    f"Order status changed from {previous.title()} to {status.title()}.",
                    False,
                    author="system",
                )
        for key in ("customer_note", "transaction_id", "payment_method", "payment_method_title"):
            if key in fields:
                order[key] = fields[key]
        for key in ("billing", "shipping"):
            if isinstance(fields.get(key), dict):
                order[key].update({k: v for k, v in fields[key].items() if k in order[key]})
        if "meta_data" in fields:
            self._merge_meta(order["meta_data"], fields["meta_data"])
        self._touch(order)
        self._events.append(("order.updated", order_id))
        return copy.deepcopy(order)

    def delete_order(self, order_id: int, *, force: bool = False) -> dict[str, Any]:
        """Trash (or with ``force`` delete) an order; fires ``order.deleted`` either way."""
        with self._lock:
            result = self._delete_order(order_id, force)
        self._after_change()
        return result

    def _delete_order(self, order_id: int, force: bool) -> dict[str, Any]:
        order = self._order(order_id)
        snapshot = copy.deepcopy(order)
        if force:
            del self.orders[order_id]
        else:
            order["status"] = "trash"
            self._touch(order)
            snapshot = copy.deepcopy(order)
        self._events.append(("order.deleted", order_id))
        return snapshot

    def order_refunds(self, order_id: int) -> list[dict[str, Any]]:
        with self._lock:
            self._order(order_id)
            return copy.deepcopy(self.refunds.get(order_id, []))

    def create_refund(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            result = self._create_refund(order_id, body)
        self._after_change()
        return result

    def _create_refund(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Like ``wc_create_refund``: refunded line items (negative quantities), the amount no
        more than what remains, stock put back with ``api_restock``, a system note, and the order
        ``refunded`` once nothing remains. Line items keep their ordered quantity (WooCommerce
        shows the refunded units in the refund objects and the order's ``refunds`` list)."""
        order = self._order(order_id)
        refunded = self.refunds.setdefault(order_id, [])
        try:
            amount = Decimal(str(body.get("amount") or "0"))
        except ArithmeticError:
            raise invalid_param("amount", "amount is not of type string.") from None
        remaining = Decimal(order["total"]) - sum((-Decimal(r["amount"]) for r in order["refunds"]), Decimal(0))
        if amount <= 0 or amount > remaining:
            raise RestError(500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount.")
        items = {item["id"]: item for item in order["line_items"]}
        already: dict[int, int] = {}
        for refund in refunded:
            for line in refund["line_items"]:
                item_id = int(next(m["value"] for m in line["meta_data"] if m["key"] == "_refunded_item_id"))
                already[item_id] = already.get(item_id, 0) - line["quantity"]
        lines = []
        for raw in body.get("line_items") or []:
            item = items.get(int(raw.get("id") or 0))
            quantity = int(raw.get("quantity") or 0)
            if item is None:
                raise invalid_param("line_items", f"line item {raw.get('id')} is not part of order {order_id}.")
            if quantity < 0 or quantity > item["quantity"] - already.get(item["id"], 0):
                raise RestError(500, "woocommerce_rest_cannot_create_order_refund", "Invalid refund quantity.")
            total = Decimal(str(raw.get("refund_total") or "0"))
            lines.append({
                "id": item["id"] + 100000, "name": item["name"], "product_id": item["product_id"],
                "variation_id": item["variation_id"], "quantity": -quantity, "sku": item["sku"],
                "subtotal": payloads.money(-total), "total": payloads.money(-total), "refund_total": float(total),
                "meta_data": [{"id": self._next_meta_id + 1, "key": "_refunded_item_id", "value": str(item["id"])}],
            })
            self._next_meta_id += 1
            already[item["id"]] = already.get(item["id"], 0) + quantity
            if body.get("api_restock", True) and quantity:
                self._change_stock(item["product_id"], item["variation_id"], quantity)
        refund_id = self._post_id()
        reason = str(body.get("reason") or "")
        refund = {
            "id": refund_id,
            **payloads.wc_dates("date_created", self._tick(), self.site_tz),
            "amount": payloads.money(amount),
            "reason": reason,
            "refunded_by": 1,
            "refunded_payment": bool(body.get("api_refund", True)),
            "meta_data": [],
            "line_items": lines,
            "shipping_lines": [],
            "tax_lines": [],
            "fee_lines": [],
            "_links": payloads.links(self.base_url, f"orders/{order_id}/refunds/{refund_id}",
                                     f"orders/{order_id}/refunds"),
        }
        refunded.insert(0, refund)
        order["refunds"].insert(0, {"id": refund_id, "reason": reason, "total": payloads.money(-amount)})
        self._add_note(order_id, f"Refunded {order['currency']}{payloads.money(amount)} &ndash; {reason}", False,
                       author="system")
        if amount == remaining:
            self._update_order(order_id, {"status": "refunded"})
        else:
            self._touch(order)
            self._events.append(("order.updated", order_id))
        return copy.deepcopy(refund)

    def _add_note(
        self, order_id: int, note: str, customer_note: bool, author: str = "WooCommerce"
    ) -> dict[str, Any]:
        self._order(order_id)
        self._next_note_id += 1
        moment = self._now
        entry = {
            "id": self._next_note_id,
            "author": author,
            **payloads.wc_dates("date_created", moment, self.site_tz),
            "note": note,
            "customer_note": bool(customer_note),
            "_links": payloads.links(
                self.base_url,
                f"orders/{order_id}/notes/{self._next_note_id}",
                f"orders/{order_id}/notes",
                {"up": [{"href": f"{self.base_url}/wp-json/wc/v3/orders/{order_id}"}]},
            ),
        }
        self.notes[order_id].insert(0, entry)  # the API lists newest first
        if customer_note:  # woocommerce_new_customer_note: WC_Email_Customer_Note
            self._email(order_id, "customer_note", note)
        return copy.deepcopy(entry)

    def _email(self, order_id: int, kind: str, body: str) -> None:
        order = self.orders[order_id]
        self.emails.append(
            {
                "order_id": order_id,
                "kind": kind,
                "to": order["billing"].get("email"),
                "body": body,
                "sent_at": self._now,
            }
        )

    # ------------------------------------------------------------------ webhooks

    def _create_webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        topic = body.get("topic")
        resource, _, event = str(topic or "").partition(".")
        if resource not in WEBHOOK_RESOURCES or event not in WEBHOOK_EVENTS:
            raise RestError(
                400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic is required and must be valid."
            )
        delivery_url = body.get("delivery_url")
        if not isinstance(delivery_url, str) or not delivery_url.startswith(("http://", "https://")):
            raise RestError(
                400,
                "rest_missing_callback_param",
                "Missing parameter(s): delivery_url",
                {"delivery_url": "delivery_url is required"},
            )
        status = body.get("status", "active")
        if status not in ("active", "paused", "disabled"):
            raise invalid_param("status", "status is not one of active, paused, and disabled.")
        self._next_webhook_id += 1
        hook_id = self._next_webhook_id
        moment = self._tick()
        hook = {
            "id": hook_id,
            "name": body.get("name") or f"Webhook created on {moment:%B %d, %Y @ %I:%M %p}",
            "status": status,
            "topic": topic,
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{event}_{resource}", f"woocommerce_{resource}_{event}"],
            "delivery_url": delivery_url,
            **payloads.wc_dates("date_created", moment, self.site_tz),
            **payloads.wc_dates("date_modified", moment, self.site_tz),
            "_links": payloads.links(self.base_url, f"webhooks/{hook_id}", "webhooks"),
        }
        self.webhooks[hook_id] = hook
        secret = body.get("secret") or secrets.token_urlsafe(24)
        self._webhook_secrets[hook_id] = html.escape(str(secret), quote=True)
        self._webhook_failures[hook_id] = 0
        return copy.deepcopy(hook)

    def _update_webhook(self, hook_id: int, body: dict[str, Any]) -> dict[str, Any]:
        hook = self._webhook(hook_id)
        if "status" in body:
            if body["status"] not in ("active", "paused", "disabled"):
                raise invalid_param("status", "status is not one of active, paused, and disabled.")
            hook["status"] = body["status"]
            if body["status"] == "active":
                self._webhook_failures[hook_id] = 0
        for key in ("name", "delivery_url"):
            if key in body:
                hook[key] = body[key]
        if body.get("secret"):
            self._webhook_secrets[hook_id] = html.escape(str(body["secret"]), quote=True)
        self._touch(hook)
        return copy.deepcopy(hook)

    def _webhook(self, hook_id: int) -> dict[str, Any]:
        hook = self.webhooks.get(hook_id)
        if hook is None:
            raise RestError(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
        return hook

    # ------------------------------------------------------------------ listing

    def select(
        self,
        items: Iterable[dict[str, Any]],
        args: Callable[[str], str | None],
        *,
        default_order: str = "desc",
        orderings: tuple[str, ...] = ("date", "id", "modified", "include", "title", "slug"),
    ) -> list[dict[str, Any]]:
        """Filter by dates/include and sort like WP_Query; ``args`` reads a query parameter."""
        rows = list(items)
        gmt = (args("dates_are_gmt") or "").lower() in ("1", "true")
        for param, key, after in (
            ("modified_after", "date_modified", True),
            ("modified_before", "date_modified", False),
            ("after", "date_created", True),
            ("before", "date_created", False),
        ):
            raw = args(param)
            if not raw:
                continue
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise invalid_param(param, f"{param} is not a valid date.") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC if gmt else self.site_tz)
            rows = [r for r in rows if (gmt_of(r, key) > moment if after else gmt_of(r, key) < moment)]
        include = args("include")
        if include:
            wanted = {int(x) for x in include.split(",") if x.strip().isdigit()}
            rows = [r for r in rows if r["id"] in wanted]
        orderby = args("orderby") or "date"
        if orderby not in orderings:
            raise invalid_param("orderby", f"orderby is not one of {', '.join(orderings)}.")
        order = (args("order") or default_order).lower()
        if order not in ("asc", "desc"):
            raise invalid_param("order", "order is not one of asc and desc.")
        keys: dict[str, Callable[[dict[str, Any]], Any]] = {
            "date": lambda r: (r.get("date_created_gmt") or "", r["id"]),
            "modified": lambda r: (r.get("date_modified_gmt") or "", r["id"]),
            "id": lambda r: r["id"],
            "include": lambda r: r["id"],
            "title": lambda r: (r.get("name") or "", r["id"]),
            "slug": lambda r: (r.get("slug") or "", r["id"]),
        }
        rows.sort(key=keys[orderby], reverse=order == "desc")
        return rows
