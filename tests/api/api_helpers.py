"""Helpers for the API tests: an app with the API blueprint, and two seeded shops.

Shop A sells past its stock: orders 1001 (3 chairs) and 1002 (2 chairs, 1 table) wait on
PO-00001 from Acme, which is sent (so it can be received); order 1003 (2 lamps) waits on a
draft PO-00002 from Brass & Co. Shop B has its own PO-00001 (the same number) and a PO-00002,
so a number alone never identifies a purchase order across shops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import PurchaseOrder, Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.services.accounts import create_api_token
from connector.services.consolidation import consolidate_backorders
from connector.services.orders import record_order
from connector.services.purchasing import send_purchase_order
from connector.web import create_app
from connector.web.api import bp


class Clock:
    """The request clock (``backorders.clock``); tests move ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_app(db: Database, clock: Callable[[], datetime], settings: Settings | None = None,
             **extensions: Any) -> Flask:
    """What ``create_app`` will do once it registers the API blueprint itself."""
    app = create_app(settings or Settings(secret_key="test-secret-key", demo=True), db, clock=clock, **extensions)
    if "api" not in app.blueprints:
        app.register_blueprint(bp)
    app.config["TESTING"] = True
    return app


@dataclass(frozen=True)
class SeededShop:
    shop_id: int
    token: str
    supplier_ids: dict[str, int]
    po_numbers: dict[str, str]  # supplier name -> PO number

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def seed_shop(db: Database, now: datetime, domain: str, shop_id: int | None = None) -> SeededShop:
    if shop_id is None:
        with UnitOfWork(db) as uow:
            shop = uow.add(Shop(platform="manual", domain=domain, name=f"Shop {domain}", created_at=now, settings={}))
            uow.commit()
            shop_id = shop.id
    suppliers = {"Acme": ("CHAIR", "TABLE"), "Brass & Co": ("LAMP",)}
    supplier_ids: dict[str, int] = {}
    with UnitOfWork(db, shop_id) as uow:
        for name, skus in suppliers.items():
            supplier = uow.add(Supplier(name=name, email=f"po@{name.split()[0].lower()}.example", lead_time_days=10))
            uow.session.flush()
            supplier_ids[name] = supplier.id
            for sku in skus:
                uow.add(SupplierItem(supplier_id=supplier.id, sku=sku, supplier_sku=f"S-{sku}", unit_cost_cents=1000))
                uow.add(Variant(external_id=f"v-{sku}", sku=sku, title=f"{sku.title()} of {domain}",
                                supplier_id=supplier.id, free_stock=0, unit_value_cents=5000))
        uow.commit()
    t = now - timedelta(days=5)
    orders = (("1001", [("CHAIR", 3)]), ("1002", [("CHAIR", 2), ("TABLE", 1)]))
    for number, lines in orders:
        t += timedelta(hours=1)
        _order(db, shop_id, number, lines, t)
    consolidate_backorders(db, shop_id, t + timedelta(minutes=30))
    acme_po = _po_of(db, shop_id, supplier_ids["Acme"])
    send_purchase_order(db, shop_id, acme_po[0], t + timedelta(minutes=40))
    t += timedelta(hours=1)
    _order(db, shop_id, "1003", [("LAMP", 2)], t)
    consolidate_backorders(db, shop_id, t + timedelta(minutes=30))
    brass_po = _po_of(db, shop_id, supplier_ids["Brass & Co"])
    _, token = create_api_token(db, shop_id, "tests", now)
    return SeededShop(shop_id, token, supplier_ids, {"Acme": acme_po[1], "Brass & Co": brass_po[1]})


def _order(db: Database, shop_id: int, number: str, lines: list[tuple[str, int]], t: datetime) -> None:
    record_order(db, shop_id, OrderRecord(
        external_id=number, number=f"#{number}", state=OrderState.OPEN, placed_at=t, updated_at=t,
        customer_email=f"{number}@example.com", customer_name=f"Customer {number}",
        lines=tuple(OrderLineRecord(external_id=f"{number}-{i}", quantity=q, sku=sku, variant_external_id=f"v-{sku}",
                                    unit_price_cents=5000)
                    for i, (sku, q) in enumerate(lines, 1)),
    ), t)


def _po_of(db: Database, shop_id: int, supplier_id: int) -> tuple[int, str]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        po = uow.session.scalars(select(PurchaseOrder).where(PurchaseOrder.supplier_id == supplier_id)).one()
        return po.id, po.number


def add_outbox_message(db: Database, shop_id: int, key: str, now: datetime, *, state: str = "pending",
                       kind: str = "eta_changed", target: str = "storefront", attempts: int = 0,
                       last_error: str | None = None, payload: dict[str, Any] | None = None) -> int:
    """One outbox message in a given state, as delivery would have left it."""
    from connector.db.models import OutboxMessage

    with UnitOfWork(db, shop_id) as uow:
        m = uow.add(OutboxMessage(kind=kind, target=target, subject=key, payload=payload or {"order": key},
                                  idempotency_key=key, state=state, attempts=attempts, next_attempt_at=now,
                                  last_error=last_error, created_at=now,
                                  sent_at=now if state == "sent" else None))
        uow.commit()
        return int(m.id)
