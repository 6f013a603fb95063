"""Per-shop locks, and the unique constraints that hold even when a lock is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from jobs_support import T0, add_shop, seed_backorders
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector.db.engine import Database
from connector.db.models import DRAFT_PO_STATUSES, OrderLine, OutboxMessage, PurchaseOrder
from connector.db.uow import UnitOfWork
from connector.services.consolidation import consolidate_backorders
from connector.services.locks import lock_namespace, shop_lock, shop_lock_is_held


def _in_thread(fn: Any) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_lock_namespace_is_stable_and_fits_int4() -> None:
    assert lock_namespace("engine") == lock_namespace("engine") != lock_namespace("outbox")
    assert all(-(2**31) <= lock_namespace(n) < 2**31 for n in ("engine", "outbox", "retention", "x" * 100))


@pytest.mark.postgres
def test_a_held_shop_lock_excludes_another_worker_on_postgresql(pg_db: Database) -> None:
    with shop_lock(pg_db, "engine", 1) as held:
        assert held and shop_lock_is_held(pg_db, "engine", 1)

        def other(name: str, shop: int) -> bool:
            with shop_lock(pg_db, name, shop) as got:
                return got

        assert _in_thread(lambda: other("engine", 1)) is False
        assert _in_thread(lambda: other("engine", 2)) is True  # another shop
        assert _in_thread(lambda: other("outbox", 1)) is True  # another lock group
    assert not shop_lock_is_held(pg_db, "engine", 1)
    assert _in_thread(lambda: other("engine", 1)) is True


def test_shop_lock_is_a_no_op_on_sqlite(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite behaviour")
    with shop_lock(db, "engine", 1) as a, shop_lock(db, "engine", 1) as b:
        assert a and b


@pytest.fixture
def pg_db(db: Database) -> Iterator[Database]:
    if db.is_sqlite:
        pytest.skip("needs PostgreSQL")
    yield db


@pytest.mark.postgres
def test_racing_consolidations_without_a_lock_cannot_make_a_second_draft(pg_db: Database) -> None:
    """Two consolidations of one shop overlap (as if the lock were lost): the loser rolls back whole."""
    shop = add_shop(pg_db, "race")
    seed_backorders(pg_db, shop, suppliers=2, orders=3)
    first_ready_to_commit = threading.Event()
    second_started = threading.Event()

    def hold_commit(session: Session) -> None:
        if threading.current_thread().name == "first":
            first_ready_to_commit.set()
            second_started.wait(10)
            # Give the second consolidation time to read the same state and block on our rows.
            threading.Event().wait(0.5)

    event.listen(Session, "before_commit", hold_commit)
    results: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            results[name] = consolidate_backorders(pg_db, shop, T0)
        except Exception as exc:
            results[name] = exc

    try:
        first = threading.Thread(target=run, args=("first",), name="first")
        first.start()
        assert first_ready_to_commit.wait(10)
        second = threading.Thread(target=run, args=("second",), name="second")
        second.start()
        second_started.set()
        first.join(30)
        second.join(30)
    finally:
        event.remove(Session, "before_commit", hold_commit)

    assert results["first"].drafts_created == 2
    assert isinstance(results["second"], IntegrityError), results["second"]
    with UnitOfWork(pg_db, shop, readonly=True) as uow:
        drafts = uow.session.execute(
            select(PurchaseOrder.supplier_id, func.count())
            .where(PurchaseOrder.status.in_(DRAFT_PO_STATUSES))
            .group_by(PurchaseOrder.supplier_id)
        ).all()
        assert sorted(n for _, n in drafts) == [1, 1]
        lines = uow.all(select(OrderLine))
        assert all(line.pegged == line.backordered == 2 for line in lines)
        keys = uow.session.execute(select(OutboxMessage.idempotency_key, func.count()).group_by(
            OutboxMessage.idempotency_key)).all()
        assert all(n == 1 for _, n in keys)
    # The loser's work is not lost either: the next run finds nothing left to do.
    again = consolidate_backorders(pg_db, shop, T0)
    assert again.drafts_created == 0 and again.pegged_to_drafts == 0


@pytest.mark.postgres
def test_the_outbox_key_refuses_a_duplicate_message(pg_db: Database) -> None:
    shop = add_shop(pg_db, "dup")
    with UnitOfWork(pg_db, shop) as uow:
        for _ in range(2):
            uow.add(OutboxMessage(kind="k", target="customer", payload={}, idempotency_key="same",
                                  next_attempt_at=T0, created_at=T0))
        with pytest.raises(IntegrityError):
            uow.commit()
