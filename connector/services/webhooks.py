"""Webhook deliveries: store fast (dedupe on the platform's event id), process afterwards.

The web endpoint only verifies and stores, so the store gets its 2xx within milliseconds;
``process_pending`` (a job, or a kick right after the response) turns stored events into
orders, variants and stock through the same services a pull uses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Dialect, bindparam, select, text

from connector.db.engine import Database
from connector.db.models import Shop, WebhookEvent
from connector.db.types import UTCDateTime
from connector.db.uow import UnitOfWork
from connector.domain.records import InventoryLevelRecord, OrderRecord, ProductRecord
from connector.errors import ConnectorError
from connector.ports import PlatformGateway, VerifiedDelivery
from connector.services import events
from connector.services.catalog import apply_inventory_level, apply_product
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.orders import ingest_order
from connector.services.shop_settings import engine_settings

if TYPE_CHECKING:
    from connector.services.webhook_writer import WebhookWriterClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessReport:
    processed: int
    failed: int
    ignored: int
    stopped: bool = False  # should_stop said so before the batch was done


class ShopLookup:
    """Which store a delivery names, cached for a few seconds per process.

    Every webhook needs the shop's id, status and secret before its signature can be checked;
    reading them from the database on every request was half the endpoint's CPU. A stale entry
    is harmless: processing re-reads the shop's status (an uninstalled shop's events are ignored),
    the lifecycle hooks call :meth:`forget` in their process, and a signature that fails against a
    cached secret is checked again against a fresh read (a store re-keyed a moment ago).
    """

    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[tuple[str, str], tuple[float, tuple[int, str, str | None]]] = {}
        self._lock = threading.Lock()

    def __call__(
        self, db: Database, platform: str, shop_key: str, *, fresh: bool = False
    ) -> tuple[tuple[int, str, str | None] | None, bool]:
        """The shop and whether the answer came from the cache. Only installed shops are
        cached: a store that just installed, reinstalled or is unknown is always read fresh."""
        key = (platform, shop_key)
        now = time.monotonic()
        if not fresh:
            with self._lock:
                hit = self._entries.get(key)
            if hit is not None and hit[0] > now:
                return hit[1], True
        found = find_shop(db, platform, shop_key)
        with self._lock:
            if found is not None and found[1] == "installed":
                self._entries[key] = (now + self.ttl, found)
            else:
                self._entries.pop(key, None)
        return found, False

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


def find_shop(db: Database, platform: str, shop_key: str) -> tuple[int, str, str | None] | None:
    """(shop id, status, webhook secret) of the store a delivery names, or None."""
    with UnitOfWork(db, readonly=True) as uow:
        shop = uow.session.scalars(select(Shop).where(Shop.platform == platform, Shop.domain == shop_key)).first()
        if shop is None:
            return None
        return shop.id, shop.status, shop.webhook_secret


# The dedupe INSERT as text: SQLAlchemy does not cache the compiled form of ON CONFLICT
# constructs, and compiling the statement on every delivery was most of the endpoint's CPU. The
# statement is the same on SQLite and PostgreSQL; the typed parameters keep UTC handling.
_EVENT_COLUMNS = (
    "shop_id", "platform", "topic", "event_id", "resource_id", "resource_updated_at", "payload", "received_at", "status",
)
EVENT_DATETIMES = ("resource_updated_at", "received_at")
_INSERT_EVENT = text(
    f"INSERT INTO webhook_events ({', '.join(_EVENT_COLUMNS)}) VALUES ({', '.join(':' + c for c in _EVENT_COLUMNS)}) "
    "ON CONFLICT (shop_id, event_id) DO NOTHING RETURNING id"
).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in EVENT_DATETIMES))


def driver_insert(dialect: Dialect) -> tuple[str, Callable[[dict[str, Any]], Any]]:
    """The event INSERT compiled for ``dialect``'s driver (RETURNING id), and a function turning a
    row into its driver parameters (the datetimes through the column type's bind processing):
    what ``insert_event`` sends, for a caller that executes on the driver's cursor itself (the
    webhook writer)."""
    compiled = _INSERT_EVENT.compile(dialect=dialect)
    identity: Callable[[Any], Any] = lambda value: value  # noqa: E731
    processors = {name: UTCDateTime().dialect_impl(dialect).bind_processor(dialect) or identity
                  for name in EVENT_DATETIMES}
    names = list(compiled.positiontup or ())

    def params(row: dict[str, Any]) -> Any:
        bound = {name: processors[name](value) if name in processors else value for name, value in row.items()}
        return [bound[name] for name in names] if names else bound

    return str(compiled), params


def _payload_text(delivery: VerifiedDelivery) -> str:
    if delivery.raw_body is not None:
        try:
            return delivery.raw_body.decode("utf-8")
        except UnicodeDecodeError:  # another gateway may hand over a body that is not UTF-8
            pass
    return json.dumps(delivery.payload)


def event_row(shop_id: int, delivery: VerifiedDelivery, now: datetime) -> dict[str, Any]:
    """The ``webhook_events`` row a verified delivery becomes (the parameters of the INSERT)."""
    return {
        "shop_id": shop_id,
        "platform": delivery.platform,
        "topic": delivery.topic,
        "event_id": delivery.event_id,
        "resource_id": delivery.resource_id,
        "resource_updated_at": delivery.resource_updated_at,
        "payload": _payload_text(delivery),
        "received_at": now,
        "status": "pending",
    }


def insert_event(conn: Connection, row: dict[str, Any]) -> bool:
    """INSERT one event row in ``conn``'s transaction; False when its event id is already stored."""
    return conn.execute(_INSERT_EVENT, row).first() is not None


def store_delivery(
    db: Database, shop_id: int, delivery: VerifiedDelivery, now: datetime, writer: WebhookWriterClient | None = None,
) -> bool:
    """Store a verified delivery; False when the same event id was already stored.

    One INSERT ... ON CONFLICT DO NOTHING on the (shop_id, event_id) key: a duplicate costs no
    exception and no second row, even when two deliveries of one event race. With a ``writer``
    (several web processes on one SQLite file) the row goes to the writer process, which commits
    it with the other processes' rows of the moment; when no writer answers, it is stored here.
    Either way it is committed before this returns.
    """
    row = event_row(shop_id, delivery, now)
    if writer is not None:
        stored = writer.store(row)
        if stored is not None:
            return stored
    with db.engine.begin() as conn:
        return insert_event(conn, row)


def apply_records(uow: UnitOfWork, shop: Shop, records: list[object], changes: Changes) -> None:
    for record in records:
        if isinstance(record, OrderRecord):
            ingest_order(uow.session, shop, record, changes)
        elif isinstance(record, ProductRecord):
            apply_product(uow.session, shop, record, changes)
        elif isinstance(record, InventoryLevelRecord):
            apply_inventory_level(uow.session, shop, record, changes)


def process_pending(
    db: Database, shop_id: int, gateway: PlatformGateway, now: datetime, limit: int = 500,
    should_stop: Callable[[], bool] | None = None,
) -> ProcessReport:
    """Apply stored events in the order they were received, one transaction each, so a bad
    payload is recorded as failed (with its error) and never blocks the ones behind it.

    ``should_stop`` is asked before each event after the first (the web process uses it to give
    way to a burst of deliveries); the events not reached stay pending."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = uow.session.execute(
            select(WebhookEvent.id, WebhookEvent.topic).where(WebhookEvent.processed_at.is_(None))
            .order_by(WebhookEvent.received_at, WebhookEvent.id).limit(limit)
        ).all()
    # Orders before stock: stores report *available* stock, which already subtracts the orders
    # that reserved it; applying a stock report before the order it reflects would count those
    # units twice. Within a batch, order events go first, then catalogue and inventory events.
    ids = [event_id for event_id, topic in sorted(rows, key=lambda r: _is_stock_topic(r[1]))]
    processed = failed = ignored = 0
    for n, event_id in enumerate(ids):
        if n and should_stop is not None and should_stop():
            return ProcessReport(processed, failed, ignored, stopped=True)
        with UnitOfWork(db, shop_id) as uow:
            event = uow.get(WebhookEvent, event_id)
            if event.processed_at is not None:
                continue
            shop = uow.shop()
            if shop.status != "installed":
                event.status, event.processed_at = "ignored", now
                uow.commit()
                ignored += 1
                continue
            try:
                records = gateway.translate(event.topic, orjson.loads(event.payload or "{}"))
                changes = Changes(now)
                apply_records(uow, shop, records, changes)
                recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
                events.flush(uow.session, shop.id, changes)
                event.status = "processed" if records else "ignored"
                event.processed_at = now
                uow.commit()
                processed += 1 if records else 0
                ignored += 0 if records else 1
            except ConnectorError as exc:
                uow.rollback()
                failed += 1
                _mark_failed(db, shop_id, event_id, now, exc.message)
    return ProcessReport(processed, failed, ignored)


def _is_stock_topic(topic: str) -> bool:
    return topic.startswith(("product", "inventory"))


def _mark_failed(db: Database, shop_id: int, event_id: int, now: datetime, error: str) -> None:
    log.warning("webhook event %s of shop %s failed: %s", event_id, shop_id, error)
    with UnitOfWork(db, shop_id) as uow:
        event = uow.get(WebhookEvent, event_id)
        event.status, event.error, event.processed_at = "failed", error, now
        uow.commit()
