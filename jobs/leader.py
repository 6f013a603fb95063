"""Leader election for the one process that may schedule: a file lock or a PostgreSQL lock.

Both locks die with their holder: the kernel drops an ``flock`` when the process exits (however
it exits), and PostgreSQL drops a session advisory lock when the holder's connection closes.
:class:`LeaderElection` keeps trying in the background, so a standby takes over within one poll
interval of the leader's death.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import text

from connector.db.engine import Database
from connector.services.locks import lock_namespace

log = logging.getLogger(__name__)


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class FileLeaderLock:
    """An exclusive ``flock`` on ``path``: one holder per machine (the forked web workers).

    Not for NFS or several machines; scaled out, use :class:`PgLeaderLock`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


class PgLeaderLock:
    """A PostgreSQL session advisory lock on a dedicated connection (outside the pool).

    A session lock (not a transaction lock) because it is held for the life of the process.
    ``still_held`` pings the connection: if the server restarted or the network dropped the
    session, the lock is gone and the holder must step down.
    """

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.key = lock_namespace(name)
        self._conn: Any = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.detach()  # never returned to the pool with the lock held
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k, 0)"), {"k": self.key}).scalar())
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:
            log.warning("leader lock connection lost", exc_info=True)
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k, 0)"), {"k": self.key})
        except Exception:
            log.warning("could not unlock the leader lock; closing its connection releases it", exc_info=True)
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        try:
            conn.close()
        except Exception:
            log.debug("closing a dead leader connection failed", exc_info=True)


def leader_lock_for(db: Database, name: str, file_path: str | Path) -> LeaderLock:
    """PostgreSQL advisory lock when the database is PostgreSQL, else a file lock."""
    return FileLeaderLock(file_path) if db.is_sqlite else PgLeaderLock(db, name)


class LeaderElection:
    """Run ``on_elected`` while this process holds ``lock`` and ``on_deposed`` when it loses it.

    A daemon thread tries the lock every ``poll_seconds`` and, while leading, checks it is still
    held. ``stop()`` deposes (if leading) and releases the lock.
    """

    def __init__(
        self,
        lock: LeaderLock,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        *,
        poll_seconds: float = 5.0,
        name: str = "leader",
    ) -> None:
        self.lock = lock
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.poll_seconds = poll_seconds
        self.name = name
        self.leading = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def start(self) -> None:
        self.step()
        self._thread = threading.Thread(target=self._loop, name=f"{self.name}-election", daemon=True)
        self._thread.start()

    def step(self) -> None:
        """One round: become leader if the lock is free, step down if it was lost."""
        with self._mutex:
            if self._stop.is_set():
                return
            try:
                if not self.leading and self.lock.try_acquire():
                    self.leading = True
                    log.info("%s: this process (pid %s) is now the leader", self.name, os.getpid())
                    try:
                        self.on_elected()
                    except BaseException:
                        self.leading = False
                        self.lock.release()  # let another process try
                        raise
                elif self.leading and not self.lock.still_held():
                    self.leading = False
                    log.warning("%s: leadership lost, standing by", self.name)
                    self.on_deposed()
            except Exception:
                log.exception("%s: leader election round failed; will retry", self.name)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.step()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.poll_seconds + 5)
        with self._mutex:
            if self.leading:
                self.leading = False
                try:
                    self.on_deposed()
                finally:
                    self.lock.release()
            else:
                self.lock.release()
