"""Helpers for the page tests: an app with the pages registered, a seeded shop (one supplier,
three products, orders waiting on a draft PO), signing in and posting forms with a CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from bootstrap.dispatch import build_dispatcher_factory
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import PurchaseOrder, Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.services.consolidation import consolidate_backorders
from connector.services.orders import record_order
from connector.services.outbox import DeliveryReport, deliver_due
from connector.web import create_app
from connector.web.pages import register_pages

PASSWORD = "correct-horse-battery"
EMAIL = "owner@example.com"


@dataclass
class Clock:
    now: datetime
    calls: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now


SETTINGS = Settings(secret_key="test-secret-key", demo=True, app_url="http://pages.test")


def make_app(db: Database, clock: Callable[[], datetime] | None = None) -> Flask:
    """What ``create_app`` will do once it calls ``register_pages`` itself."""
    app = create_app(SETTINGS, db, **({"clock": clock} if clock else {}))
    register_pages(app)
    app.config["TESTING"] = True
    return app


@dataclass(frozen=True)
class Seeded:
    shop_id: int
    supplier_id: int
    po_id: int
    variant_ids: dict[str, int]


def seed_shop(db: Database, now: datetime, domain: str = "test-shop", shop_id: int | None = None) -> Seeded:
    """A shop selling past its stock: orders wait on one draft purchase order."""
    if shop_id is None:
        with UnitOfWork(db) as uow:
            shop = uow.add(Shop(platform="manual", domain=domain, name=f"Shop {domain}", created_at=now, settings={}))
            uow.commit()
            shop_id = shop.id
    with UnitOfWork(db, shop_id) as uow:
        supplier = uow.add(Supplier(name=f"Acme {domain}", email="po@acme.example", lead_time_days=10))
        uow.session.flush()
        variants = {}
        for sku, title, release in (("CHAIR", "Oak chair", None), ("TABLE", "Oak table", None),
                                    ("LAMP", "Brass lamp", (now + timedelta(days=40)).date())):
            uow.add(SupplierItem(supplier_id=supplier.id, sku=sku, supplier_sku=f"S-{sku}", unit_cost_cents=1000))
            v = uow.add(Variant(external_id=f"v-{sku}", sku=sku, title=title, supplier_id=supplier.id,
                                free_stock=0, unit_value_cents=5000, release_date=release))
            uow.session.flush()
            variants[sku] = v.id
        uow.commit()
        supplier_id = supplier.id
    t = now - timedelta(days=5)
    for number, customer, lines in (("1001", "Ada Lovelace", [("CHAIR", 3)]),
                                    ("1002", "Grace Hopper", [("CHAIR", 2), ("TABLE", 1)])):
        t += timedelta(hours=1)
        record_order(db, shop_id, OrderRecord(
            external_id=number, number=f"#{number}", state=OrderState.OPEN, placed_at=t, updated_at=t,
            customer_email=f"{number}@example.com", customer_name=customer,
            lines=tuple(OrderLineRecord(external_id=f"{number}-{i}", quantity=q, sku=sku, variant_external_id=f"v-{sku}",
                                        unit_price_cents=5000)
                        for i, (sku, q) in enumerate(lines, 1)),
        ), t)
    consolidate_backorders(db, shop_id, t + timedelta(hours=1))
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        po = uow.find(PurchaseOrder, supplier_id=supplier_id)
        assert po is not None
        po_id = po.id
    return Seeded(shop_id, supplier_id, po_id, variants)


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as s:
        if "csrf_token" not in s:
            s["csrf_token"] = "fixed-test-token"
        return str(s["csrf_token"])


def sign_in(client: FlaskClient, email: str, password: str, **extra: Any) -> Any:
    client.get("/merchant/login")
    return client.post("/merchant/login", data={"email": email, "password": password, "csrf_token": csrf(client),
                                                **extra})


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    return client.post(url, data={"csrf_token": csrf(client), **(data or {})}, **kw)


def deliver_mail(db: Database, shop_id: int, sink: SmtpSink, now: datetime) -> DeliveryReport:
    """Run the shop's outbox through the real dispatcher and SMTP mailer into ``sink``."""
    factory = build_dispatcher_factory(db, SETTINGS, lambda _: None, SmtpMailer(sink.url), clock=lambda: now)
    return deliver_due(db, shop_id, factory(shop_id), now)
