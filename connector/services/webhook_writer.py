"""One writer for webhook deliveries on a SQLite file, shared by every web process.

Why: under gunicorn, every worker process committed each delivery in its own SQLite
transaction. SQLite has one writer at a time, so the workers took turns on the write lock, and
every commit by one process emptied the page cache of all the others (they re-read the pages
on their next write): at 4 workers the endpoint spent about twice the CPU per delivery it
spends alone.

How: the web processes hand each verified delivery's row to one writer process over a Unix
socket beside the database (``<db>-writer.sock``, mode 0600, so only the service's own user can
write to it) and wait for its answer. The writer stores, in one transaction, every row that
arrived while it was busy with the previous ones (under sync workers that is mostly one: the
gain is one process writing with a warm cache, not bigger transactions), then answers each
sender: stored or duplicate. A sender answers the platform only after that answer, i.e. after
the commit: the same promise as storing the row itself (the 200 means the delivery is stored).

The writer is an optimisation, never a dependency: when it is not running, does not answer,
or fails a batch, the web process stores the row itself as before (the unique event id makes a
row that the writer did commit a harmless duplicate). The first web process that finds no
writer starts one (``python -m connector.services.webhook_writer``, detached); a lock file
(``<db>-writer.lock``, holding the writer's pid) held for the writer's lifetime makes sure only
one runs per database, and it exits ``idle_exit`` seconds after the last web process disconnected, so it
never outlives the server by long. PostgreSQL needs none of this: it takes
concurrent writers.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection

from connector.config import Settings
from connector.db.engine import Database
from connector.services.webhooks import EVENT_DATETIMES, driver_insert

log = logging.getLogger(__name__)

# A frame: two lengths (row fields as JSON, then the payload text as UTF-8), then both parts.
# The payload travels as raw bytes: JSON-escaping a 10 kB body again would cost more than sending it.
_HEADER = struct.Struct("!II")
_MAX_PART = 64 * 1024 * 1024
STORED, DUPLICATE, FAILED = b"S", b"D", b"F"


def socket_path(db_file: Path) -> Path:
    return db_file.with_name(db_file.name + "-writer.sock")


def lock_path(db_file: Path) -> Path:
    return db_file.with_name(db_file.name + "-writer.lock")


def encode(row: dict[str, Any]) -> bytes:
    payload = (row.get("payload") or "").encode("utf-8")
    fields = orjson.dumps({k: v for k, v in row.items() if k != "payload"} | {"has_payload": row.get("payload") is not None})
    return _HEADER.pack(len(fields), len(payload)) + fields + payload


def decode(fields_part: bytes, payload_part: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(fields_part)
    row["payload"] = payload_part.decode("utf-8") if row.pop("has_payload") else None
    for name in EVENT_DATETIMES:
        if row.get(name) is not None:
            row[name] = datetime.fromisoformat(row[name])
    return row


# ---------------------------------------------------------------------------------------------
# the web process's side
# ---------------------------------------------------------------------------------------------


class WebhookWriterClient:
    """Hands rows to the writer over a small pool of connections (one per concurrent request:
    a sync worker keeps one, a threaded server one per busy thread)."""

    RETRY_SECONDS = 1.0  # after a failed connect, store directly for this long before trying again

    def __init__(self, database_url: str, db_file: Path, *, timeout_seconds: float = 35.0,
                 spawn: bool = True) -> None:
        self.database_url = database_url
        self.sock_path = socket_path(db_file)
        self.lock_path = lock_path(db_file)
        self.timeout = timeout_seconds  # above SQLite's busy timeout: the writer may wait that long
        self.spawn = spawn
        self._idle: list[socket.socket] = []
        self._pool_lock = threading.Lock()
        self._pid = os.getpid()
        self._retry_at = 0.0
        self._spawn_lock = threading.Lock()
        self.answered = 0  # deliveries the writer answered (stored or duplicate), for the demo and operators
        # Connections still idle when the client is dropped are closed, not left to the collector.
        weakref.finalize(self, _close_all, self._idle)

    def store(self, row: dict[str, Any]) -> bool | None:
        """True: stored; False: a duplicate; None: the writer did not answer (store it yourself)."""
        sock = self._take()
        if sock is None:
            return None
        try:
            sock.sendall(encode(row))
            reply = sock.recv(1)
        except OSError as exc:
            log.warning("webhook writer did not answer (%s): storing directly", exc)
            sock.close()
            # A hung writer must not cost every delivery the whole timeout: store directly for a
            # while, then try it again.
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            return None
        if reply == STORED or reply == DUPLICATE:
            with self._pool_lock:
                self._idle.append(sock)
                self.answered += 1
            return reply == STORED
        sock.close()  # no answer: the writer went away (exit, crash), maybe before the commit
        return None

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the writer to accept a connection (the demo does, so
        that every run tells the same story); False if it did not."""
        deadline = time.monotonic() + timeout
        while True:
            self._retry_at = 0.0
            sock = self._take()
            if sock is not None:
                with self._pool_lock:
                    self._idle.append(sock)
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def close(self) -> None:
        """Close the idle connections (the writer exits when no process is connected)."""
        with self._pool_lock:
            _close_all(self._idle)

    def _take(self) -> socket.socket | None:
        with self._pool_lock:
            if self._pid != os.getpid():  # a forked child must not share its parent's connections
                _close_all(self._idle)
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        if time.monotonic() < self._retry_at:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A blocking socket with the kernel's own send/receive timeouts: Python's settimeout()
        # would poll() before every send and receive, two system calls more per delivery.
        limit = struct.pack("ll", int(self.timeout), int(self.timeout % 1 * 1_000_000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        try:
            sock.connect(str(self.sock_path))
        except OSError:
            sock.close()
            self._retry_at = time.monotonic() + self.RETRY_SECONDS
            if self.spawn:
                self.start_writer()
            return None
        return sock

    def start_writer(self) -> bool:
        """Start the writer unless one runs (or is starting); True when this call started it.

        The lock file is taken here and handed to the child (an ``flock`` belongs to the open
        file, which the child inherits), so of several web processes booting at once exactly
        one starts a writer, and a writer that is still importing already counts as running.
        """
        with self._spawn_lock:
            try:
                fd = try_lock(self.lock_path)
            except OSError as exc:
                log.warning("webhook writer: cannot open %s (%s); each process stores its own deliveries",
                            self.lock_path, exc)
                return False
            if fd is None:
                return False  # a writer holds it
            try:
                # Started through a launcher that forks and exits at once, so the writer is
                # nobody's child here (no zombie in this process when it exits, no Popen left
                # running). stderr is inherited: its log lines go where this server's go.
                launcher = subprocess.Popen(
                    [sys.executable, "-c", _DETACH, self.database_url,
                     "--busy-timeout-ms", str(int((self.timeout - 5) * 1000)), "--lock-fd", str(fd),
                     # it logs like the process that started it (the demo's is quiet, a server's not)
                     "--log-level", logging.getLevelName(logging.getLogger().getEffectiveLevel())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True,
                    pass_fds=(fd,),
                )
                launcher.wait(30)
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning("webhook writer: could not start it (%s); each process stores its own deliveries", exc)
                return False
            finally:
                os.close(fd)  # the writer's copy keeps the lock for its lifetime
            log.info("started the webhook writer for %s", self.sock_path.parent)
            return True


# Fork, let the parent exit, exec the writer in the child: a detached process (see start_writer).
_DETACH = (
    "import os, sys\n"
    "if os.fork():\n"
    "    os._exit(0)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'connector.services.webhook_writer', *sys.argv[1:]])\n"
)


def try_lock(path: Path) -> int | None:
    """The lock file, open and exclusively locked, or None when another process holds it.
    (Like ``jobs.leader.FileLeaderLock``, which the service layer cannot import.)"""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _close_all(socks: list[socket.socket]) -> None:
    while socks:
        with contextlib.suppress(OSError):
            socks.pop().close()


def client_for(settings: Settings, db: Database) -> WebhookWriterClient | None:
    """The client a web app should use (on a SQLite file unless ``WEBHOOK_WRITER`` is off), with
    the writer already starting: the first deliveries need not wait for it to come up."""
    if not settings.webhook_writer or db.sqlite_file is None:
        return None
    client = WebhookWriterClient(settings.database_url, db.sqlite_file,
                                 timeout_seconds=settings.sqlite_busy_timeout_ms / 1000 + 5)
    client.start_writer()
    return client


# ---------------------------------------------------------------------------------------------
# the writer process
# ---------------------------------------------------------------------------------------------


class _Peer:
    __slots__ = ("sock", "buffer")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()


class WebhookWriter:
    """The writer: one thread, one SQLite connection, one transaction per batch."""

    def __init__(self, db: Database, *, idle_exit: float = 2.0, startup_grace: float = 30.0) -> None:
        if db.sqlite_file is None:
            raise ValueError("the webhook writer serves a SQLite file database only")
        self.db = db
        self.sock_path = socket_path(db.sqlite_file)
        self.lock_path = lock_path(db.sqlite_file)
        # Exit this long after the last web process disconnected (a restarting worker's
        # successor starts a new writer on boot), or after startup_grace if none ever connected.
        self.idle_exit = idle_exit
        self.startup_grace = startup_grace
        self.batches = 0
        self.rows = 0
        self._stop = threading.Event()
        self._conn: Connection | None = None
        self._sql, self._params = driver_insert(db.engine.dialect)

    def stop(self) -> None:
        self._stop.set()

    def serve(self, lock_fd: int | None = None) -> bool:
        """Serve until stopped or idle; False at once when another writer holds the lock.
        ``lock_fd``: the lock file, already locked by the process that started this one."""
        if lock_fd is None:
            lock_fd = try_lock(self.lock_path)
            if lock_fd is None:
                return False
        try:
            os.ftruncate(lock_fd, 0)
            os.write(lock_fd, f"{os.getpid()}\n".encode())  # who holds it, for an operator (and the tests)
            self._serve_locked()
            return True
        finally:
            os.close(lock_fd)

    def _serve_locked(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()  # a dead writer's socket: we hold the lock, so nobody uses it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket file is created 0600: only our user may connect
        try:
            listener.bind(str(self.sock_path))
        finally:
            os.umask(old_umask)
        listener.listen(256)
        listener.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        peers: dict[socket.socket, _Peer] = {}
        last_peer, ever_connected = time.monotonic(), False
        log.info("webhook writer serving %s", self.sock_path)
        try:
            while not self._stop.is_set():
                # The batch is what arrived while the previous one was committed. Waiting a
                # little for more (up to one row per connected process) made bigger batches but
                # left the web processes waiting and a fifth of the machine idle: no waiting.
                batch: list[tuple[_Peer, dict[str, Any]]] = []
                for key, _ in selector.select(timeout=0.5):
                    if key.fileobj is listener:
                        self._accept(listener, selector, peers)
                    else:
                        self._read(peers[key.fileobj], batch, selector, peers)  # type: ignore[index]
                if batch:
                    self._commit(batch, selector, peers)
                if peers:
                    last_peer, ever_connected = time.monotonic(), True
                elif time.monotonic() - last_peer > (self.idle_exit if ever_connected else self.startup_grace):
                    log.info("webhook writer: no web process connected, exiting")
                    break
        finally:
            log.info("webhook writer: %d rows stored in %d transactions", self.rows, self.batches)
            self._close_connection()
            for peer in list(peers.values()):
                peer.sock.close()
            selector.close()
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self.sock_path.unlink()

    @staticmethod
    def _accept(listener: socket.socket, selector: selectors.BaseSelector, peers: dict[socket.socket, _Peer]) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            peers[sock] = _Peer(sock)
            selector.register(sock, selectors.EVENT_READ)

    def _read(self, peer: _Peer, batch: list[tuple[_Peer, dict[str, Any]]], selector: selectors.BaseSelector,
              peers: dict[socket.socket, _Peer]) -> None:
        try:
            data = peer.sock.recv(65536)  # below malloc's mmap threshold: no mmap per call
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._forget(peer, selector, peers)
            return
        buf = peer.buffer
        buf += data
        while len(buf) >= _HEADER.size:
            fields_len, payload_len = _HEADER.unpack_from(buf)
            if fields_len > _MAX_PART or payload_len > _MAX_PART:
                log.error("webhook writer: a frame of %s + %s bytes, dropping that connection", fields_len, payload_len)
                self._forget(peer, selector, peers)
                return
            end = _HEADER.size + fields_len + payload_len
            if len(buf) < end:
                break
            start = _HEADER.size
            try:
                row = decode(bytes(buf[start:start + fields_len]), bytes(buf[start + fields_len:end]))
            except (ValueError, UnicodeDecodeError, KeyError) as exc:
                log.error("webhook writer: an unreadable frame (%s), dropping that connection", exc)
                self._forget(peer, selector, peers)
                return
            del buf[:end]
            batch.append((peer, row))

    def _commit(self, batch: list[tuple[_Peer, dict[str, Any]]], selector: selectors.BaseSelector,
                peers: dict[socket.socket, _Peer]) -> None:
        try:
            answers = self._store(row for _, row in batch)
        except Exception:  # noqa: BLE001 - each sender then stores its own row and meets its own error
            log.exception("webhook writer: a batch of %d rows failed; the senders store them themselves", len(batch))
            answers = [FAILED] * len(batch)
            self._close_connection()  # whatever state it is in, the next batch starts afresh
        else:
            self.batches += 1
            self.rows += len(batch)
        for (peer, _), answer in zip(batch, answers, strict=True):
            try:
                peer.sock.send(answer)
            except OSError:  # gone, or (never with one byte per request) full: it will store directly
                self._forget(peer, selector, peers)

    def _store(self, rows: Iterable[dict[str, Any]]) -> list[bytes]:
        """One transaction for the batch, begun through the engine (so the database's write lock
        and ``BEGIN IMMEDIATE`` apply as for any writer), each row through the driver's cursor:
        SQLAlchemy's per-statement work was most of the writer's time, and the writer is the one
        place every delivery passes through. The datetimes get the engine's own bind processors,
        so the stored text is the same as the web process would have written."""
        if self._conn is None:
            self._conn = self.db.engine.connect()
        conn = self._conn
        with conn.begin():
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                answers = []
                for row in rows:
                    cursor.execute(self._sql, self._params(row))
                    answers.append(STORED if cursor.fetchone() is not None else DUPLICATE)
            finally:
                cursor.close()
        return answers

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def _forget(peer: _Peer, selector: selectors.BaseSelector, peers: dict[socket.socket, _Peer]) -> None:
        if peers.pop(peer.sock, None) is not None:
            selector.unregister(peer.sock)
            peer.sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connector.services.webhook_writer", description=__doc__.split("\n")[0])
    parser.add_argument("database_url", help="a SQLite file URL, e.g. sqlite:///var/backorders.sqlite3")
    parser.add_argument("--busy-timeout-ms", type=int, default=30_000)
    parser.add_argument("--lock-fd", type=int, help="the lock file, already locked (set by the web process)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--idle-exit", type=float, default=2.0,
                        help="exit this many seconds after the last client disconnected")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db = Database(args.database_url, busy_timeout_ms=args.busy_timeout_ms)
    writer = WebhookWriter(db, idle_exit=args.idle_exit)
    signal.signal(signal.SIGTERM, lambda *_: writer.stop())
    try:
        if not writer.serve(args.lock_fd):
            log.info("another webhook writer serves %s", db.sqlite_file)
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
