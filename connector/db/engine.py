"""Engines and sessions for SQLite (embedded) and PostgreSQL (scaled out).

SQLite is configured the way a small server needs it: WAL journal (persistent in the file, so
it is set once when the database is opened, not on every connection), a busy timeout, foreign
keys on, and ``BEGIN IMMEDIATE`` for write transactions so two writers queue on the lock
instead of failing with "database is locked" when a reader upgrades. Read-only units of work
use a plain deferred ``BEGIN`` so readers never wait for the write lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_db_engine(url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False) -> Engine:
    """Create the engine for ``url``; nothing connects until the first query."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    wal_checked = False

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        nonlocal wal_checked
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins (so we can say IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not wal_checked:
            # WAL is a property of the file: switch once per process (on the first connection,
            # outside any transaction), then every later connection inherits it.
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() not in {"wal", "memory"}:
                cursor.execute("PRAGMA journal_mode=WAL")
            wal_checked = True
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and two session factories (read-write and read-only) for a process."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False) -> None:
        self.url = url
        self.engine = create_db_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.write_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine.execution_options(readonly=True), expire_on_commit=False)

    def session(self, *, readonly: bool = False) -> Session:
        return (self.read_sessions if readonly else self.write_sessions)()

    def dispose(self) -> None:
        self.engine.dispose()
