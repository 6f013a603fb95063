"""Helpers for the customer-communication tests: a small shop, orders, and delivery runs."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select, update

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from bootstrap.dispatch import build_dispatcher_factory
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, PurchaseOrder, Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.ports import OutboxDispatcher, Storefront
from connector.services import events
from connector.services.cancellation import CancelLink, sign_cancel_link
from connector.services.catalog import apply_product
from connector.services.events import Changes
from connector.services.orders import record_order
from connector.services.outbox import DeliveryReport, deliver_due

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SETTINGS = Settings(secret_key="comms-test-secret", app_url="https://app.example", mail_from="robot@app.example",
                    demo=True)
SHOP_SETTINGS: dict[str, Any] = {
    "handling_days": 1,
    "tolerance_days": 2,
    "branding": {"from_addr": "Bois & Lumière <hello@shop.example>", "reply_to": "hello@shop.example"},
}
SUPPLIER_EMAIL = "po@atelier.example"
CATALOGUE = {"LAMP-1": "Oak table lamp", "SHADE-9": "Linen shade"}


@dataclass
class Clock:
    now: datetime = T0
    calls: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now


def seed_catalogue(db: Database, shop_id: int, **settings: Any) -> int:
    """The shop's settings, one supplier (14 days lead time) and two SKUs with no stock."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        shop.name = "Bois & Lumière"
        shop.settings = {**SHOP_SETTINGS, **settings}
        supplier = uow.add(Supplier(name="Atelier", email=SUPPLIER_EMAIL, lead_time_days=14))
        uow.session.flush()
        for sku, title in CATALOGUE.items():
            uow.add(SupplierItem(supplier_id=supplier.id, sku=sku, pack_size=1, unit_cost_cents=1_000))
            uow.add(Variant(external_id=f"v-{sku}", sku=sku, title=title, supplier_id=supplier.id, free_stock=0,
                            unit_value_cents=4_000))
        uow.commit()
        return int(supplier.id)


def place_order(
    db: Database, shop_id: int, number: int, lines: dict[str, int], now: datetime = T0,
    email: str = "camille@example.com", name: str = "Camille Martin",
) -> str:
    ext = str(number)
    record = OrderRecord(
        external_id=ext, number=f"#{number}", state=OrderState.OPEN, placed_at=now, updated_at=now,
        lines=tuple(OrderLineRecord(external_id=f"{ext}-{sku}", quantity=qty, sku=sku, variant_external_id=f"v-{sku}",
                                    title=CATALOGUE.get(sku)) for sku, qty in lines.items()),
        customer_email=email, customer_name=name,
    )
    record_order(db, shop_id, record, now)
    return ext


def mail_dispatcher_factory(
    db: Database, smtp_url: str, clock: Clock, storefront_for: Callable[[int], Storefront | None] = lambda _: None,
) -> Callable[[int], OutboxDispatcher]:
    """What the composition root builds: the real mailer, the store client when there is one."""
    return build_dispatcher_factory(db, SETTINGS, storefront_for, SmtpMailer(smtp_url, timeout=5), clock=clock)


def mail_dispatcher(
    db: Database, shop_id: int, smtp_url: str, clock: Clock,
    storefront_for: Callable[[int], Storefront | None] = lambda _: None,
) -> OutboxDispatcher:
    return mail_dispatcher_factory(db, smtp_url, clock, storefront_for)(shop_id)


def deliver(db: Database, shop_id: int, dispatcher: OutboxDispatcher, now: datetime) -> DeliveryReport:
    return deliver_due(db, shop_id, dispatcher, now)


def messages(db: Database, shop_id: int, kind: str | None = None) -> list[OutboxMessage]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind is not None:
            stmt = stmt.where(OutboxMessage.kind == kind)
        rows = list(uow.session.scalars(stmt))
        for row in rows:
            uow.session.expunge(row)
        return rows


def line(db: Database, shop_id: int, external_id: str) -> OrderLine:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        found = uow.find(OrderLine, external_id=external_id)
        assert found is not None
        uow.session.expunge(found)
        return found


def only_po(db: Database, shop_id: int) -> PurchaseOrder:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        (po,) = uow.session.scalars(select(PurchaseOrder).order_by(PurchaseOrder.id)).all()
        uow.session.expunge(po)
        return po


def set_shop_settings(db: Database, shop_id: int, **changes: Any) -> None:
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.session.get(Shop, shop_id)
        assert shop is not None
        shop.settings = {**(shop.settings or {}), **changes}
        uow.commit()


def customer_mails(sink: SmtpSink) -> list[EmailMessage]:
    """What reached customers (the supplier's PO e-mail goes through the same server)."""
    return [r.message for r in sink.received if SUPPLIER_EMAIL not in r.rcpt_tos]


def dead_smtp_url() -> str:
    """An SMTP URL where nothing listens: the mail server is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"smtp://127.0.0.1:{port}"


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def days(n: int) -> timedelta:
    return timedelta(days=n)


def sync_store(db: Database, shop_id: int, storefront: Any, now: datetime, **settings: Any) -> None:
    """The shop's settings, then the store's catalogue and orders pulled into the engine over HTTP."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        shop.name = "Bois & Lumière"
        shop.settings = {**SHOP_SETTINGS, "default_lead_time_days": 10, **settings}
        changes = Changes(now)
        for product in storefront.fetch_products():
            apply_product(uow.session, shop, product, changes)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
    for record in storefront.fetch_orders_since(None):
        record_order(db, shop_id, record, now)


def cancel_link_token(shop_id: int, order_external_id: str, link_id: str = "m1", expires: date = date(2099, 1, 1)) -> str:
    """A cancellation token as the e-mail carries it (signed with the test app's secret)."""
    return sign_cancel_link(SETTINGS.secret_key, CancelLink(shop_id, order_external_id, link_id, expires))


def make_pending_again(db: Database, shop_id: int, message_id: int) -> None:
    """What a crash after the store said yes (and before the outbox knew) leaves behind."""
    with UnitOfWork(db, shop_id) as uow:
        uow.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                            .values(state="pending", sent_at=None, next_attempt_at=T0 - timedelta(days=1)))
        uow.commit()


def crash_after_delivery(db: Database, shop_id: int, message_id: int) -> None:
    """A worker that died after delivering (the receipt is committed) but before the outbox
    marked the message sent: it is claimed again."""
    with UnitOfWork(db, shop_id) as uow:
        uow.session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                            .values(state="pending", next_attempt_at=T0 - timedelta(days=1)))
        uow.commit()
