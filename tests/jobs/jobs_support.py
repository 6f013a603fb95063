"""Shared helpers for the job tests (also imported by Celery worker subprocesses)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from connector.config import load_settings
from connector.db.engine import Database
from connector.db.models import OutboxMessage, Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.errors import DeliveryError
from connector.ports import OutboxEnvelope
from connector.services.orders import record_order
from jobs.registry import JobContext

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class RecordingDispatcher:
    """Records every delivery; ``failures`` maps an idempotency key to errors to raise in turn."""

    delivered: list[OutboxEnvelope] = field(default_factory=list)
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: OutboxEnvelope) -> None:
        with self.lock:
            queue = self.failures.get(message.idempotency_key)
            if queue:
                raise queue.pop(0)
            self.delivered.append(message)

    def keys(self) -> list[str]:
        return [m.idempotency_key for m in self.delivered]


def add_shop(db: Database, domain: str, *, status: str = "installed", now: datetime = T0) -> int:
    with UnitOfWork(db) as uow:
        shop = uow.add(Shop(platform="manual", domain=domain, name=domain, status=status, created_at=now, settings={}))
        uow.commit()
        return int(shop.id)


def add_message(db: Database, shop_id: int, key: str, *, now: datetime = T0, kind: str = "backordered") -> int:
    with UnitOfWork(db, shop_id) as uow:
        m = uow.add(OutboxMessage(kind=kind, target="customer", subject="1001", payload={"order": "1001"},
                                  idempotency_key=key, next_attempt_at=now, created_at=now))
        uow.commit()
        return int(m.id)


def message(db: Database, shop_id: int, message_id: int) -> OutboxMessage:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        m = uow.get(OutboxMessage, message_id)
        uow.session.expunge(m)
        return m


def retryable(msg: str = "store answered 503") -> DeliveryError:
    return DeliveryError(msg, retryable=True)


def seed_backorders(db: Database, shop_id: int, *, suppliers: int = 2, orders: int = 3, now: datetime = T0) -> None:
    """Suppliers with one SKU each and no stock; ``orders`` orders wanting every SKU."""
    skus = []
    with UnitOfWork(db, shop_id) as uow:
        for i in range(suppliers):
            supplier = uow.add(Supplier(name=f"Supplier {i}", email=f"s{i}@example.com", lead_time_days=10))
            uow.session.flush()
            sku = f"SKU-{i}"
            uow.add(SupplierItem(supplier_id=supplier.id, sku=sku, pack_size=6, unit_cost_cents=500))
            uow.add(Variant(external_id=sku, sku=sku, title=sku, supplier_id=supplier.id, free_stock=0))
            skus.append(sku)
        uow.commit()
    for n in range(orders):
        lines = tuple(
            OrderLineRecord(external_id=f"{n}-{j}", quantity=2, sku=sku, variant_external_id=sku)
            for j, sku in enumerate(skus)
        )
        record = OrderRecord(external_id=str(1000 + n), number=f"#{1000 + n}", state=OrderState.OPEN, placed_at=now,
                             updated_at=now, lines=lines, customer_email=f"c{n}@example.com", customer_name=f"C {n}")
        record_order(db, shop_id, record, now)


# --- For Celery worker subprocesses (BACKORDERS_JOB_CONTEXT=jobs_support:build_context) -----------------

DELIVERIES_DDL = (
    "CREATE TABLE IF NOT EXISTS test_deliveries (id SERIAL PRIMARY KEY, shop_id INT NOT NULL, "
    "message_id INT NOT NULL, idempotency_key TEXT NOT NULL, pid INT NOT NULL)"
)


class TableDispatcher:
    """Records each delivery as a row (no unique key: duplicates must be visible)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __call__(self, message: OutboxEnvelope) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO test_deliveries (shop_id, message_id, idempotency_key, pid) VALUES (:s, :m, :k, :p)"),
                {"s": message.shop_id, "m": message.id, "k": message.idempotency_key, "p": os.getpid()},
            )


PULLS_DDL = "CREATE TABLE IF NOT EXISTS test_pulls (id SERIAL PRIMARY KEY, shop_id INT NOT NULL, pid INT NOT NULL)"


def slow_first_pull(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    """A hook that records its process and, on its first attempt for a shop, hangs (to be killed)."""
    with ctx.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO test_pulls (shop_id, pid) VALUES (:s, :p)"), {"s": shop_id, "p": os.getpid()})
        attempts = conn.execute(text("SELECT count(*) FROM test_pulls WHERE shop_id = :s"), {"s": shop_id}).scalar()
    if attempts == 1:
        time.sleep(60)
    return {"attempt": attempts}


def build_context() -> JobContext:
    from connector import crypto
    from connector.config import DEMO_FERNET_KEY

    crypto.configure_cipher([DEMO_FERNET_KEY])
    settings = load_settings(dotenv_path=None)
    db = Database(settings.database_url)
    dispatcher = TableDispatcher(db)

    def factory(shop_id: int) -> TableDispatcher:
        return dispatcher

    return JobContext(db=db, settings=settings, dispatcher_factory=factory, hooks={"pull_store": slow_first_pull},
                      clock=lambda: T0 + timedelta(hours=1))


def noop_hook(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    return {"shop": shop_id}


def fetch(db: Database, stmt: Any, shop_id: int | None = None) -> list[Any]:
    """Rows of ``stmt`` as detached objects (still readable after the unit of work ends)."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = list(uow.all(stmt))
        uow.session.expunge_all()
        return rows
