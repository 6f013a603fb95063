"""Shared fixtures: databases built through the migrations, on SQLite always and on
PostgreSQL when ``TEST_DATABASE_URL`` is set (each test run gets its own fresh database)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector import crypto
from connector.config import DEMO_FERNET_KEY
from connector.db import migrate
from connector.db.engine import Database
from connector.db.models import Base, Shop
from connector.db.uow import UnitOfWork

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", autouse=True)
def _cipher() -> None:
    crypto.configure_cipher([DEMO_FERNET_KEY])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it (much faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A brand-new PostgreSQL database for this run, migrated once, dropped at the end."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL variant skipped")
    name = f"bo_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(db: Database) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: SQLite file, then PostgreSQL when configured."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.sqlite3"
        shutil.copy(template, path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("pg_database_url"))
        _truncate_all(database)
    yield database
    _dispose_when_idle(database)


def _dispose_when_idle(database: Database, timeout: float = 10.0) -> None:
    """Dispose once every pooled connection is back.

    A threaded test server's request handler finishes its teardown (and returns its connection)
    just after the client has its answer, so it can still hold a connection when the test ends.
    Disposing under it leaves that connection in the old pool for the garbage collector, which
    warns about an unclosed connection in whatever test happens to run then (an error under
    ``-W error``). Waiting here keeps the warning away and, if a thread never lets go, the
    assertion names the test that leaked it.
    """
    checkedout = getattr(database.engine.pool, "checkedout", None)
    deadline = time.monotonic() + timeout
    while checkedout is not None and checkedout() > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    still_out = checkedout() if checkedout is not None else 0
    database.dispose()
    assert still_out == 0, f"{still_out} database connection(s) still checked out {timeout:.0f} s after the test"


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def shop_id(db: Database, now: datetime) -> int:
    with UnitOfWork(db) as uow:
        shop = Shop(platform="manual", domain="test-shop", name="Test shop", created_at=now, settings={})
        uow.add(shop)
        uow.commit()
        return shop.id
