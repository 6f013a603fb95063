"""Admin helpers of the sandbox Shopify: the Python API tests and the demo use to change a shop.

Each helper changes the in-memory shop under the sandbox lock, then sends the webhooks Shopify
would send (orders/create, inventory_levels/update, ...) to the subscribed callback URLs,
signed with the app secret, before returning.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import jwt

from sandbox.shopify import store
from sandbox.shopify.store import Level, LineItem, Order, Product, Shop, Variant


class ShopAdmin:
    """Mixed into :class:`sandbox.shopify.server.SandboxShopify`."""

    lock: threading.RLock
    api_key: str
    api_secret: str
    default_shop: str
    tokens: dict[str, Any]

    def shop(self, domain: str | None = None) -> Shop:
        raise NotImplementedError

    def _emit(self, shop: Shop, topic: str, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def _tick(self, previous: datetime) -> datetime:
        raise NotImplementedError

    def create_product(
        self,
        title: str,
        variants: Iterable[dict[str, Any]],
        *,
        tags: Iterable[str] = (),
        shop: str | None = None,
        location_id: int | None = None,
    ) -> Product:
        """Variants: ``{"sku", "price" (cents), "available", "inventory_policy", "title", "tracked"}``."""
        with self.lock:
            s = self.shop(shop)
            pid = store.next_id()
            product = Product(
                id=pid, title=title, handle=title.lower().replace(" ", "-"), variants=[], tags=list(tags)
            )
            for pos, spec in enumerate(variants, start=1):
                v = Variant(
                    id=store.next_id(),
                    product_id=pid,
                    title=spec.get("title", "Default Title"),
                    sku=spec.get("sku"),
                    price_cents=int(spec.get("price", 1000)),
                    inventory_policy=spec.get("inventory_policy", "deny"),
                    tracked=spec.get("tracked", True),
                    position=pos,
                )
                product.variants.append(v)
                loc = location_id or s.primary_location_id
                available = int(spec.get("available", 0))
                s.levels[(v.inventory_item_id, loc)] = Level(
                    v.inventory_item_id, loc, available, max(available, 0), int(spec.get("incoming", 0))
                )
            s.products[pid] = product
            payload = store.rest_product(s, product)
        self._emit(s, "PRODUCTS_CREATE", payload)
        return product

    def update_variant(
        self,
        sku: str,
        *,
        price: int | None = None,
        title: str | None = None,
        inventory_policy: str | None = None,
        shop: str | None = None,
    ) -> Variant:
        """A merchant's edit in the admin: the variant and its product get a new ``updated_at``
        (Shopify moves the product's too) and products/update goes out."""
        with self.lock:
            s = self.shop(shop)
            v = s.variant_by_sku(sku)
            if v is None:
                raise KeyError(sku)
            if price is not None:
                v.price_cents = price
            if title is not None:
                v.title = title
            if inventory_policy is not None:
                v.inventory_policy = inventory_policy
            product = s.product_of(v)
            v.updated_at = self._tick(max(v.updated_at, product.updated_at))
            product.updated_at = v.updated_at
            payload = store.rest_product(s, product)
        self._emit(s, "PRODUCTS_UPDATE", payload)
        return v

    def set_inventory(
        self,
        sku: str,
        available: int,
        *,
        incoming: int | None = None,
        location_id: int | None = None,
        shop: str | None = None,
    ) -> Level:
        with self.lock:
            s = self.shop(shop)
            v = s.variant_by_sku(sku)
            if v is None:
                raise KeyError(sku)
            loc = location_id or s.primary_location_id
            level = s.levels.get((v.inventory_item_id, loc)) or Level(v.inventory_item_id, loc, 0, 0)
            delta = available - level.available
            level.available = available
            level.on_hand = max(0, level.on_hand + delta)
            if incoming is not None:
                level.incoming = incoming
            level.updated_at = self._tick(level.updated_at)
            s.levels[(v.inventory_item_id, loc)] = level
            payload = store.rest_inventory_level(level)
        self._emit(s, "INVENTORY_LEVELS_UPDATE", payload)
        return level

    def create_order(
        self,
        lines: Iterable[dict[str, Any]],
        *,
        email: str | None = "buyer@example.com",
        first_name: str | None = "Ada",
        last_name: str | None = "Lovelace",
        shipping_address: dict[str, Any] | None = None,
        financial_status: str = "paid",
        tags: Iterable[str] = (),
        shop: str | None = None,
        notify: bool = True,
    ) -> Order:
        """Lines: ``{"sku", "quantity"}`` for a catalog variant, ``{"title", "price", "quantity"}`` for a custom item."""
        level_payloads = []
        with self.lock:
            s = self.shop(shop)
            items = []
            for spec in lines:
                qty = int(spec.get("quantity", 1))
                v = s.variant_by_sku(spec["sku"]) if spec.get("sku") else None
                if v is not None:
                    p = s.product_of(v)
                    items.append(
                        LineItem(
                            store.next_id(),
                            p.title,
                            qty,
                            v.price_cents,
                            v.sku,
                            v.id,
                            p.id,
                            None if v.title == "Default Title" else v.title,
                        )
                    )
                    level = s.levels.get((v.inventory_item_id, s.primary_location_id))
                    if level is not None and v.tracked:
                        level.available -= qty  # committed: on_hand only drops when it ships
                        level.updated_at = self._tick(level.updated_at)
                        level_payloads.append(store.rest_inventory_level(level))
                else:
                    items.append(
                        LineItem(
                            store.next_id(),
                            spec.get("title", "Custom item"),
                            qty,
                            int(spec.get("price", 0)),
                            spec.get("sku"),
                            None,
                            None,
                        )
                    )
            address = (
                shipping_address
                if shipping_address is not None
                else {
                    "first_name": first_name,
                    "last_name": last_name,
                    "address1": "1 Analytical Way",
                    "city": "London",
                    "zip": "N1 9GU",
                    "country": "United Kingdom",
                    "country_code": "GB",
                }
            )
            order = Order(
                id=store.next_id(),
                number=s.next_order_number,
                email=email,
                line_items=items,
                customer={"id": store.next_id(), "first_name": first_name, "last_name": last_name}
                if email
                else None,
                shipping_address=address,
                currency=s.currency,
                financial_status=financial_status,
                tags=list(tags),
            )
            order.created_at = order.updated_at = self._tick(
                max((o.updated_at for o in s.orders.values()), default=store.utcnow() - timedelta(seconds=1))
            )
            total = sum(li.price_cents * li.quantity for li in items)
            if financial_status == "paid" and total > 0:  # the payment a refund goes back to
                order.transactions.append(store.Transaction(store.next_id(), "SALE", total))
            s.next_order_number += 1
            s.orders[order.id] = order
            payload = store.rest_order(s, order)
        if notify:
            self._emit(s, "ORDERS_CREATE", payload)
            for lp in level_payloads:
                self._emit(s, "INVENTORY_LEVELS_UPDATE", lp)
        return order

    def update_order(self, order_id: int, *, shop: str | None = None, **changes: Any) -> Order:
        """Change order fields (``tags``, ``note``, ``financial_status``, ``email``) and send orders/updated."""
        with self.lock:
            s = self.shop(shop)
            order = s.orders[order_id]
            for key, value in changes.items():
                setattr(order, key, value)
            order.updated_at = self._tick(order.updated_at)
            payload = store.rest_order(s, order)
        self._emit(s, "ORDERS_UPDATED", payload)
        return order

    def remove_quantity(
        self, order_id: int, line_id: int, quantity: int, *, shop: str | None = None
    ) -> Order:
        """An order edit removing units from a line (``current_quantity`` drops)."""
        with self.lock:
            s = self.shop(shop)
            order = s.orders[order_id]
            li = next(li for li in order.line_items if li.id == line_id)
            li.current_quantity = max(0, li.current - quantity)
            order.updated_at = self._tick(order.updated_at)
            payload = store.rest_order(s, order)
        self._emit(s, "ORDERS_UPDATED", payload)
        return order

    def cancel_order(self, order_id: int, reason: str = "customer", *, shop: str | None = None) -> Order:
        with self.lock:
            s = self.shop(shop)
            order = s.orders[order_id]
            order.cancelled_at = order.closed_at = store.utcnow()
            order.cancel_reason = reason
            order.financial_status = (
                "voided" if order.financial_status in ("pending", "authorized") else "refunded"
            )
            for li in order.line_items:
                v = s.variant(li.variant_id) if li.variant_id else None
                level = s.levels.get((v.inventory_item_id, s.primary_location_id)) if v else None
                if level is not None:
                    level.available += li.current - li.fulfilled
            order.updated_at = self._tick(order.updated_at)
            payload = store.rest_order(s, order)
        self._emit(s, "ORDERS_CANCELLED", payload)
        self._emit(s, "ORDERS_UPDATED", payload)
        return order

    def fulfill_order(
        self,
        order_id: int,
        quantities: dict[int, int] | None = None,
        *,
        tracking_number: str | None = None,
        shop: str | None = None,
    ) -> Order:
        """Ship ``{line_id: units}`` (everything left when None) and send orders/updated."""
        with self.lock:
            s = self.shop(shop)
            order = s.orders[order_id]
            if quantities is None:
                quantities = {
                    li.id: li.current - li.fulfilled for li in order.line_items if li.current > li.fulfilled
                }
            self._apply_fulfillment(s, order, quantities, tracking_number, None, None, notify=False)
            payload = store.rest_order(s, order)
        self._emit(s, "ORDERS_UPDATED", payload)
        return order

    def _apply_fulfillment(
        self,
        s: Shop,
        order: Order,
        quantities: dict[int, int],
        number: str | None,
        company: str | None,
        url: str | None,
        *,
        notify: bool,
    ) -> store.Fulfillment:
        fulfillment = store.Fulfillment(store.next_id(), dict(quantities), number, company, url)
        order.fulfillments.append(fulfillment)
        for li in order.line_items:
            shipped = quantities.get(li.id, 0)
            li.fulfilled += shipped
            v = s.variant(li.variant_id) if li.variant_id and shipped else None
            level = s.levels.get((v.inventory_item_id, s.primary_location_id)) if v else None
            if level is not None:
                level.on_hand -= shipped  # committed units leave the building
        wanted = sum(li.current for li in order.line_items)
        shipped_total = sum(min(li.fulfilled, li.current) for li in order.line_items)
        order.fulfillment_status = (
            "fulfilled" if shipped_total >= wanted else "partial" if shipped_total else None
        )
        order.updated_at = self._tick(order.updated_at)
        return fulfillment

    def metafield(
        self, owner_gid: str, namespace: str, key: str, shop: str | None = None
    ) -> dict[str, Any] | None:
        return self.shop(shop).metafields.get((owner_gid, namespace, key))

    def uninstall_app(self, shop: str | None = None) -> None:
        """The merchant removes the app: app/uninstalled goes out, then tokens and subscriptions die."""
        s = self.shop(shop)
        self._emit(s, "APP_UNINSTALLED", store.rest_shop(s))
        with self.lock:
            for token, grant in list(self.tokens.items()):
                if grant.shop == s.domain:
                    del self.tokens[token]
            s.subscriptions.clear()

    def sign_session_token(
        self,
        shop: str | None = None,
        *,
        ttl: int = 60,
        secret: str | None = None,
        audience: str | None = None,
    ) -> str:
        """An App Bridge session JWT as the admin would give the embedded app."""
        domain = shop or self.default_shop
        now = int(time.time())
        claims = {
            "iss": f"https://{domain}/admin",
            "dest": f"https://{domain}",
            "aud": audience or self.api_key,
            "sub": "42",
            "exp": now + ttl,
            "nbf": now - 1,
            "iat": now - 1,
            "jti": uuid.uuid4().hex,
            "sid": uuid.uuid4().hex,
        }
        return jwt.encode(claims, secret or self.api_secret, algorithm="HS256")
