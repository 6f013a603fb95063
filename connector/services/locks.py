"""Per-shop job locks, so two workers never run the same kind of job on one shop at once.

PostgreSQL: ``pg_try_advisory_xact_lock(namespace, shop_id)`` taken on a dedicated connection
whose transaction stays open while the job runs (the job's own units of work use other
connections). A transaction-level lock is released by COMMIT/ROLLBACK or when the connection
dies, so a crashed worker can never leave a shop locked, and it works behind a pgbouncer in
transaction-pooling mode where session locks would leak. The holding transaction has written
nothing, so it takes no xid and does not hold back VACUUM; keep
``idle_in_transaction_session_timeout`` longer than the longest job (or unset).

SQLite (embedded mode): a no-op. There is one process (the file lock in ``jobs.scheduler``
keeps a single scheduler), the scheduler runs each job with ``max_instances=1``, and every
write transaction is ``BEGIN IMMEDIATE``, so two writers are serialized by the database itself.

The lock is an optimisation, not the safety net: the unique index
``uq_purchase_orders_one_draft`` and the outbox's ``(shop_id, idempotency_key)`` unique key make
a second draft PO or a duplicate message impossible even if two consolidations do race (the
loser's transaction fails and rolls back whole); ``tests/jobs/test_locks.py`` proves it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from connector.db.engine import Database


def lock_namespace(name: str) -> int:
    """A stable signed 32-bit key for ``name`` (the first half of the two-key advisory lock)."""
    value = zlib.crc32(f"backorders:{name}".encode())
    return value - 2**32 if value >= 2**31 else value


@contextmanager
def shop_lock(db: Database, name: str, shop_id: int) -> Iterator[bool]:
    """Try to take the ``name`` lock of ``shop_id`` without waiting; yields whether we hold it.

    ``with shop_lock(db, "engine", shop_id) as held: if held: ...`` — a caller that did not get
    the lock should skip (another worker is doing the same work right now), not wait.
    """
    if db.is_sqlite:
        yield True
        return
    with db.engine.connect() as conn:
        held = bool(
            conn.execute(
                text("SELECT pg_try_advisory_xact_lock(:ns, :shop)"), {"ns": lock_namespace(name), "shop": shop_id}
            ).scalar()
        )
        try:
            yield held
        finally:
            conn.rollback()  # ends the transaction: releases the lock


def shop_lock_is_held(db: Database, name: str, shop_id: int) -> bool:
    """Whether any session holds the ``name`` lock of ``shop_id`` (monitoring, tests)."""
    if db.is_sqlite:
        return False
    with db.engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = CAST(:ns AS oid) "
                    "AND objid = CAST(:shop AS oid) AND objsubid = 2 AND granted"
                ),
                {"ns": lock_namespace(name) & 0xFFFFFFFF, "shop": shop_id},
            ).scalar()
        )
