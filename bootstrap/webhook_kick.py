"""Processing stored webhooks right after the response, without starving ingest.

The webhook endpoint only verifies and stores (a few milliseconds); applying an order (allocation,
ETAs, outbox) costs several times that. On a small machine both compete for the same cores and,
on SQLite, for the one write lock: when every web worker processed as fast as it could, ingest
fell from ~860 to ~90 requests/s under load and p99 passed a second. So:

* One process at a time processes a shop's webhooks (``processing_lock``): an ``flock`` on SQLite
  (the web workers of one machine), the shop's ``engine`` advisory lock on PostgreSQL (shared
  with consolidation and the other engine jobs). A process that finds it taken looks again a
  moment later: the holder may have read its batch before our delivery was stored.
* A kick looks FIRST_LOOK_SECONDS after the delivery that sent it, long enough for a burst to
  show in ``ingest_busy`` (30 deliveries within a second arrive in 0.25 s at 120/s and more).
* While deliveries pour in (``ingest_busy``: the last BUSY_DELIVERIES events arrived within a
  second, over all processes), processing waits, at most MAX_DEFER_SECONDS at a time, then takes
  one small batch and looks again. The stores get their 2xx in milliseconds; the backlog drains
  at full speed once the burst ends, and the ``process_webhooks`` job is the safety net.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import WebhookEvent
from connector.services.locks import shop_lock

BUSY_DELIVERIES = 30
MAX_DEFER_SECONDS = 30.0
DEFER_STEP_SECONDS = 0.25
FIRST_LOOK_SECONDS = 0.25  # a kick waits this long before its first look (see Runtime._drain)
RETRY_LOCKED_SECONDS = 1.0
BATCH = 50
TRICKLE_BATCH = 10


def ingest_busy(db: Database, now: datetime | None = None) -> bool:
    """Whether the last BUSY_DELIVERIES stored events all arrived within the last second.

    One index-only read (newest ids first) and no state, so every process sees the same answer.
    ``received_at`` is wall-clock time written by the endpoint, hence the wall clock here.
    """
    with db.engine.connect() as conn:
        received = conn.scalar(
            select(WebhookEvent.received_at).order_by(WebhookEvent.id.desc()).offset(BUSY_DELIVERIES - 1).limit(1)
        )
    if received is None:
        return False
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    return received > (now or datetime.now(UTC)) - timedelta(seconds=1)


@contextmanager
def processing_lock(db: Database, lock_dir: Path, shop_id: int) -> Iterator[bool]:
    """Try (without waiting) to become the one process applying ``shop_id``'s webhooks."""
    if not db.is_sqlite:
        with shop_lock(db, "engine", shop_id) as held:
            yield held
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"webhooks-shop-{shop_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
