"""Engines and sessions for SQLite (embedded) and PostgreSQL (scaled out).

SQLite is configured the way a small server needs it: WAL journal (persistent in the file, so
it is set once when the database is opened, not on every connection), a busy timeout, foreign
keys on, and ``BEGIN IMMEDIATE`` for write transactions so two writers queue on the lock
instead of failing with "database is locked" when a reader upgrades. Read-only units of work
use a plain deferred ``BEGIN`` so readers never wait for the write lock. Writers of every
process first queue on a lock file beside the database (``_WriteLock``), which hands the write
lock on without SQLite's millisecond sleeps.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
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

    path = _sqlite_path(str(engine.url))
    write_lock = _WriteLock(path, busy_timeout_ms / 1000) if path is not None else None
    if write_lock is not None:
        _WRITE_LOCKS[engine] = write_lock
        weakref.finalize(engine, write_lock.close)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Straight to the driver: SQLAlchemy has nothing to track in a BEGIN, and a full
        # statement execution per transaction was a tenth of a webhook delivery's CPU.
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement commits by itself: no transaction, no write lock
        driver = conn.connection.driver_connection
        readonly = options.get("readonly")
        statement = "BEGIN" if readonly else "BEGIN IMMEDIATE"
        held = not readonly and write_lock is not None and write_lock.acquire()
        try:
            driver.execute(statement)
        except BaseException as err:
            if held:
                write_lock.release()  # type: ignore[union-attr]
            if isinstance(err, sqlite3.Error):
                # As SQLAlchemy would have raised it ("database is locked" is an OperationalError).
                raise DBAPIError.instance(statement, None, err, sqlite3.Error) from err
            raise
        if held:
            conn.connection.info[_HOLDS_WRITE_LOCK] = write_lock

    if write_lock is not None:
        dialect = engine.dialect
        plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

        # After the driver's COMMIT or ROLLBACK, not before (SQLAlchemy's commit and rollback
        # events fire before): the next writer must find SQLite's lock free when it gets ours.
        def do_commit(dbapi_connection: Any) -> None:
            try:
                plain_commit(dbapi_connection)
            finally:
                _release_held(dbapi_connection)

        def do_rollback(dbapi_connection: Any) -> None:
            try:
                plain_rollback(dbapi_connection)
            finally:
                _release_held(dbapi_connection)

        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]


_HOLDS_WRITE_LOCK = "backorders.write_lock"


def _release_held(pooled_connection: Any) -> None:
    try:
        info = pooled_connection.info
    except NotImplementedError:  # SQLAlchemy's first-connect probe, which never began a transaction
        return
    lock = info.pop(_HOLDS_WRITE_LOCK, None)
    if lock is not None:
        lock.release()


class _WriteLock:
    """Queues this file's writers of every process on a lock file, ahead of SQLite's own lock.

    SQLite's busy handler sleeps 1, 2, 5, 10 ms ... between attempts at a held write lock, while
    a webhook delivery's transaction holds it for a fraction of a millisecond: with four
    processes taking turns, writers slept far longer than they waited, and a quarter of the
    machine sat idle under load. Here a waiting process tries the lock file again after 0.05 ms,
    doubling up to 0.5 ms. Threads of one process queue on a ``threading.Lock`` first (an
    ``flock`` is held per open file, not per thread). Waiting is bounded like SQLite's busy
    timeout: after it, the transaction goes on to ``BEGIN IMMEDIATE`` without this lock, and
    SQLite decides as before (a nested write in the same thread fails instead of hanging).
    """

    POLL_SECONDS = (0.00005, 0.0005)  # first and longest pause between non-blocking attempts

    def __init__(self, db_path: Path, timeout_seconds: float) -> None:
        self.path = db_path.with_name(db_path.name + "-writelock")
        self.timeout = timeout_seconds
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child needs its own open file
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> bool:
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            return False
        try:
            fd = self._file()
            pause, longest = self.POLL_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        break
                time.sleep(pause)
                pause = min(longest, pause * 2)
        except OSError:
            pass  # no lock file (read-only directory...): SQLite's own locking still holds
        self._threads.release()
        return False

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        """Close the lock file (reopened if the engine writes again). Never waits: a writer still
        inside its transaction keeps SQLite's own lock, and its release finds no file to unlock."""
        fd, self._fd = self._fd, None
        if fd is not None and self._pid == os.getpid():
            os.close(fd)


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, _WriteLock] = weakref.WeakKeyDictionary()


class Database:
    """One engine and two session factories (read-write and read-only) for a process."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000, echo: bool = False) -> None:
        self.url = url
        self.engine = create_db_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.sqlite_file = _sqlite_path(url)  # None for PostgreSQL and in-memory SQLite
        self.write_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine.execution_options(readonly=True), expire_on_commit=False)

    def session(self, *, readonly: bool = False) -> Session:
        return (self.read_sessions if readonly else self.write_sessions)()

    def dispose(self) -> None:
        self.engine.dispose()
        lock = _WRITE_LOCKS.get(self.engine)
        if lock is not None:
            lock.close()
