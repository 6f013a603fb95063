"""The foundation: migrations stay true, tenants stay apart, credentials stay secret."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from connector import crypto
from connector.config import DEMO_FERNET_KEY
from connector.db import migrate
from connector.db.engine import Database
from connector.db.models import OrderLine, SalesOrder, Shop, Supplier, Variant
from connector.db.uow import TenantViolation, UnitOfWork
from connector.errors import NotFound

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _shop(uow: UnitOfWork, domain: str) -> Shop:
    shop = Shop(platform="shopify", domain=domain, name=domain, created_at=NOW, settings={})
    uow.add(shop)
    uow.session.flush()
    return shop


def test_migrations_upgrade_to_head_and_downgrade_to_base(db: Database) -> None:
    assert migrate.current_revision(db) is not None
    assert migrate.pending_differences(db) == []
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    with db.engine.connect() as conn:
        tables = set(db.engine.dialect.get_table_names(conn))
    assert "order_lines" not in tables
    migrate.upgrade(db)
    assert migrate.pending_differences(db) == []
    if not db.is_sqlite:
        # Not in the models (SQLAlchemy has no table storage options): migration 0006 sets it.
        with db.engine.connect() as conn:
            options = conn.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'order_lines'"))
        assert options == ["fillfactor=50"]


def test_scoped_repository_never_returns_another_shops_rows(db: Database) -> None:
    with UnitOfWork(db) as uow:
        a, b = _shop(uow, "a.myshopify.com"), _shop(uow, "b.myshopify.com")
        sa_ = Supplier(shop_id=a.id, name="Acme")
        sb = Supplier(shop_id=b.id, name="Acme")
        uow.add(sa_)
        uow.add(sb)
        uow.commit()
        a_id, b_id, sa_id, sb_id = a.id, b.id, sa_.id, sb.id

    with UnitOfWork(db, a_id) as uow:
        assert [s.id for s in uow.all(select(Supplier))] == [sa_id]
        assert uow.get(Supplier, sa_id).shop_id == a_id
        with pytest.raises(NotFound):
            uow.get(Supplier, sb_id)
        assert uow.session.get(Supplier, sb_id) is None
        assert uow.find(Supplier, id=sb_id) is None
        # Bulk UPDATE through the ORM is scoped too: B's supplier keeps its name.
        uow.session.execute(update(Supplier).values(name="Renamed"))
        uow.commit()
    with UnitOfWork(db, b_id) as uow:
        assert uow.get(Supplier, sb_id).name == "Acme"


def test_writing_a_row_of_another_shop_is_refused(db: Database) -> None:
    with UnitOfWork(db) as uow:
        a, b = _shop(uow, "a.myshopify.com"), _shop(uow, "b.myshopify.com")
        uow.commit()
        a_id, b_id = a.id, b.id
    with UnitOfWork(db, a_id) as uow:
        uow.add(Supplier(shop_id=b_id, name="Intruder"))
        with pytest.raises(TenantViolation):
            uow.session.flush()
    with UnitOfWork(db, a_id) as uow:
        supplier = uow.add(Supplier(name="Stamped"))
        uow.session.flush()
        assert supplier.shop_id == a_id


def test_quantities_cannot_go_negative_or_unbalance_a_line(db: Database, shop_id: int) -> None:
    with UnitOfWork(db, shop_id) as uow:
        variant = uow.add(Variant(sku="CHAIR", free_stock=0))
        order = uow.add(
            SalesOrder(external_id="1", number="#1", placed_at=NOW, platform_updated_at=NOW, created_at=NOW)
        )
        uow.session.flush()
        uow.add(
            OrderLine(order_id=order.id, external_id="1-1", variant_id=variant.id, ordered=3, allocated=2,
                      backordered=0, placed_at=NOW)
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()
    with UnitOfWork(db, shop_id) as uow:
        uow.add(Variant(sku="LAMP", free_stock=-1))
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_stored_credentials_never_appear_in_clear(db: Database) -> None:
    token = "shpat_0123456789abcdef_secret_token"
    with UnitOfWork(db) as uow:
        shop = _shop(uow, "crypt.myshopify.com")
        shop.credentials = {"access_token": token, "refresh_token": "shprt_refresh_value"}
        shop.webhook_secret = "whsec_cleartext_value"
        uow.commit()
        shop_id = shop.id
    with db.engine.connect() as conn:
        raw = conn.execute(text("SELECT credentials, webhook_secret FROM shops")).one()
    assert token not in raw[0] and "whsec_cleartext_value" not in raw[1]
    with UnitOfWork(db) as uow:
        assert uow.session.get(Shop, shop_id).credentials["access_token"] == token  # type: ignore[index, union-attr]
    if db.is_sqlite:
        db.dispose()  # checkpoint the WAL so every page is in the main file too
        path = Path(db.engine.url.database or "")
        for candidate in (path, Path(f"{path}-wal")):
            if candidate.exists():
                data = candidate.read_bytes()
                assert token.encode() not in data
                assert b"shprt_refresh_value" not in data


def test_rotating_keys_keeps_old_credentials_readable(db: Database) -> None:
    from cryptography.fernet import Fernet

    with UnitOfWork(db) as uow:
        shop = _shop(uow, "rotate.myshopify.com")
        shop.webhook_secret = "old-secret"
        uow.commit()
        shop_id = shop.id
    new_key = Fernet.generate_key().decode()
    crypto.configure_cipher([new_key, DEMO_FERNET_KEY])
    try:
        with UnitOfWork(db) as uow:
            assert uow.session.get(Shop, shop_id).webhook_secret == "old-secret"  # type: ignore[union-attr]
    finally:
        crypto.configure_cipher([DEMO_FERNET_KEY])


def _read_then_write(url: str, worker: int, rounds: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    crypto.configure_cipher([DEMO_FERNET_KEY])
    db = Database(url)
    failures = 0
    for _ in range(rounds):
        try:
            with UnitOfWork(db) as uow:
                shop = uow.session.scalars(select(Shop).where(Shop.domain == "counter")).one()
                shop.po_sequence = shop.po_sequence + 1
                uow.commit()
        except Exception as exc:  # noqa: BLE001 - counted, then reported by the parent
            failures += 1
            queue.put(f"{worker}: {exc}")
    queue.put(("done", failures))
    db.dispose()


def test_four_processes_writing_one_sqlite_file_never_see_database_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "concurrent.sqlite3"
    url = f"sqlite:///{path}"
    db = Database(url)
    migrate.upgrade(db)
    with UnitOfWork(db) as uow:
        uow.add(Shop(platform="manual", domain="counter", created_at=NOW, settings={}))
        uow.commit()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_read_then_write, args=(url, i, 200, queue)) for i in range(4)]
    for p in procs:
        p.start()
    results, errors = [], []
    while len(results) < 4:
        item = queue.get(timeout=120)
        (results if isinstance(item, tuple) else errors).append(item)
    for p in procs:
        p.join(timeout=30)
    assert errors == []
    assert sum(f for _, f in results) == 0
    with UnitOfWork(db) as uow:
        assert uow.session.scalars(select(Shop.po_sequence)).one() == 800
    db.dispose()


def test_the_write_lock_is_handed_on_after_commit_rollback_and_a_failed_statement(tmp_path: Path) -> None:
    """Each way a write transaction ends lets the next writer in at once. If one kept the lock,
    the next write would wait out the (short) busy timeout and fail."""
    db = Database(f"sqlite:///{tmp_path / 'lock.sqlite3'}", busy_timeout_ms=300)
    migrate.upgrade(db)
    with db.engine.begin() as conn:  # commit
        conn.execute(text("INSERT INTO shops (platform, domain, name, status, scopes, timezone, currency, settings,"
                          " po_sequence, forward_sequence, created_at) VALUES ('manual', 'a', '', 'installed', '',"
                          " 'UTC', 'USD', '{}', 0, 0, '2026-03-02 08:00:00')"))
    with pytest.raises(RuntimeError), db.engine.begin() as conn:  # rollback
        conn.execute(text("UPDATE shops SET po_sequence = 1"))
        raise RuntimeError("the unit of work failed")
    with pytest.raises(IntegrityError), UnitOfWork(db) as uow:  # a statement refused by the database
        uow.session.execute(text("INSERT INTO shops (id, platform, domain) VALUES (1, 'manual', 'b')"))
    started = time.monotonic()
    for n in range(20):
        with UnitOfWork(db) as uow:
            uow.session.execute(update(Shop).values(po_sequence=n))
            uow.commit()
    assert time.monotonic() - started < 2
    assert (tmp_path / "lock.sqlite3-writelock").exists()  # the lock file sits beside the database
    db.dispose()


def test_a_nested_write_in_the_same_thread_fails_after_the_busy_timeout_instead_of_hanging(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested.sqlite3'}", busy_timeout_ms=300)
    migrate.upgrade(db)
    started = time.monotonic()
    with db.engine.begin() as outer:
        outer.execute(text("SELECT 1"))
        with pytest.raises(OperationalError, match="locked"), db.engine.begin() as inner:
            inner.execute(text("SELECT 1"))
    assert time.monotonic() - started < 5
    with db.engine.begin() as conn:  # and the lock is free again afterwards
        conn.execute(text("SELECT 1"))
    db.dispose()


def test_autocommit_statements_on_sqlite_commit_by_themselves(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'auto.sqlite3'}")
    migrate.upgrade(db)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    # Closing an autocommit connection rolls back nothing: the statistics are there.
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sqlite_stat1")).scalar()
    db.dispose()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_disposing_a_database_closes_its_lock_file(tmp_path: Path) -> None:
    open_files = len(list(Path("/proc/self/fd").iterdir()))
    for n in range(20):
        db = Database(f"sqlite:///{tmp_path / f'db{n}.sqlite3'}")
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        db.dispose()
    assert len(list(Path("/proc/self/fd").iterdir())) <= open_files + 2
