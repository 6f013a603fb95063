"""The webhook writer: web processes hand deliveries to one writer process on a SQLite file.

Real sockets, a real SQLite file and, where the test is about the process, a real writer
process started the way a web worker starts it. What must hold: a delivery answered as stored
is committed, exactly once, whether the writer ran, never started, died or failed a batch.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from connector.config import DEMO_FERNET_KEY, Settings
from connector.db.engine import Database
from connector.db.models import Shop, WebhookEvent
from connector.ports import VerifiedDelivery
from connector.services import webhook_writer
from connector.services.webhook_writer import WebhookWriter, WebhookWriterClient
from connector.services.webhooks import event_row, insert_event, store_delivery

NOW = datetime(2026, 3, 2, 8, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "writer.sqlite3"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture
def shop(sqlite_db: Database) -> int:
    with sqlite_db.engine.begin() as conn:
        return int(conn.execute(Shop.__table__.insert().values(  # type: ignore[attr-defined]
            platform="shopify", domain="writer.myshopify.com", name="W", status="installed", scopes="",
            timezone="UTC", currency="USD", settings={}, po_sequence=0, forward_sequence=0, created_at=NOW,
        )).inserted_primary_key[0])


class Served:
    """A writer serving in a thread of the test process (its own Database, like the real one)."""

    def __init__(self, url: str, idle_exit: float = 60.0, startup_grace: float = 60.0) -> None:
        self.db = Database(url)
        self.writer = WebhookWriter(self.db, idle_exit=idle_exit, startup_grace=startup_grace)
        self.result: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.writer.serve()), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.writer.sock_path.exists():
            assert time.monotonic() < deadline, "the writer did not listen within 10 s"
            assert self.thread.is_alive(), "the writer stopped before listening"
            time.sleep(0.01)

    def stop(self) -> None:
        self.writer.stop()
        self.thread.join(10)
        self.db.dispose()


@pytest.fixture
def served(sqlite_db: Database, shop: int) -> Iterator[Served]:
    s = Served(sqlite_db.url)
    yield s
    s.stop()


def client_of(db: Database, **kwargs: Any) -> WebhookWriterClient:
    assert db.sqlite_file is not None
    return WebhookWriterClient(db.url, db.sqlite_file, timeout_seconds=10, **kwargs)


def delivery(event_id: str, *, body: bytes = b'{"id": 450789469, "updated_at": "2026-03-02T07:59:00Z"}') -> VerifiedDelivery:
    return VerifiedDelivery(platform="shopify", topic="orders/create", shop_key="writer.myshopify.com",
                            event_id=event_id, payload={"id": 450789469}, resource_id="450789469",
                            resource_updated_at=datetime(2026, 3, 2, 7, 59, tzinfo=UTC), raw_body=body)


def stored_rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM webhook_events ORDER BY id"))]


def test_the_writer_stores_the_same_row_the_web_process_would_have_stored(sqlite_db: Database, shop: int,
                                                                          served: Served) -> None:
    client = client_of(sqlite_db, spawn=False)
    assert client.store(event_row(shop, delivery("via-writer"), NOW)) is True
    with sqlite_db.engine.begin() as conn:
        assert insert_event(conn, event_row(shop, delivery("direct"), NOW)) is True
    via_writer, direct = stored_rows(sqlite_db)
    assert via_writer["event_id"] == "via-writer" and direct["event_id"] == "direct"
    for row in (via_writer, direct):
        row.pop("id"), row.pop("event_id")
    assert via_writer == direct, "same columns, same text (datetimes included) either way"
    assert direct["received_at"] == "2026-03-02 08:00:00.123456"
    client.close()


def test_a_repeated_event_id_is_answered_as_a_duplicate_and_stored_once(sqlite_db: Database, shop: int,
                                                                        served: Served) -> None:
    client = client_of(sqlite_db, spawn=False)
    assert client.store(event_row(shop, delivery("once"), NOW)) is True
    assert client.store(event_row(shop, delivery("once"), NOW)) is False
    assert store_delivery(sqlite_db, shop, delivery("once"), NOW, client) is False
    assert [r["event_id"] for r in stored_rows(sqlite_db)] == ["once"]
    client.close()


def test_deliveries_from_many_threads_are_each_stored_once_by_the_writer(sqlite_db: Database, shop: int,
                                                                         served: Served) -> None:
    client = client_of(sqlite_db, spawn=False)
    answers: list[bool | None] = []
    lock = threading.Lock()

    def send(t: int) -> None:
        for n in range(40):
            answer = client.store(event_row(shop, delivery(f"t{t}-{n}"), NOW))
            with lock:
                answers.append(answer)
        client.close()

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert answers == [True] * 320, "every delivery went through the writer and was stored"
    assert len({r["event_id"] for r in stored_rows(sqlite_db)}) == 320 == len(stored_rows(sqlite_db))
    assert served.writer.rows == 320 and 1 <= served.writer.batches <= 320


def test_without_a_writer_the_client_says_so_and_the_delivery_is_stored_directly(sqlite_db: Database,
                                                                                  shop: int) -> None:
    client = client_of(sqlite_db, spawn=False)
    assert client.store(event_row(shop, delivery("nobody-listens"), NOW)) is None
    assert store_delivery(sqlite_db, shop, delivery("stored-anyway"), NOW, client) is True
    assert [r["event_id"] for r in stored_rows(sqlite_db)] == ["stored-anyway"]


def test_a_writer_that_goes_away_without_answering_loses_nothing(sqlite_db: Database, shop: int) -> None:
    """A writer that crashes between reading a delivery and answering: the connection closes
    with no answer. The sender stores the row itself, and the writer's socket is dropped."""
    client = client_of(sqlite_db, spawn=False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(client.sock_path))
    listener.listen(1)

    def crash_after_reading() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    crasher = threading.Thread(target=crash_after_reading)
    crasher.start()
    assert store_delivery(sqlite_db, shop, delivery("survives"), NOW, client) is True
    crasher.join(5)
    listener.close()
    assert [r["event_id"] for r in stored_rows(sqlite_db)] == ["survives"]
    assert client.store(event_row(shop, delivery("later"), NOW)) is None, "no writer now: the caller stores"


def test_a_writer_that_does_not_answer_in_time_is_given_up_and_the_delivery_stored_directly(
    sqlite_db: Database, shop: int,
) -> None:
    """A hung writer (say SQLite busy beyond its timeout) holds a delivery no longer than the
    client's timeout; the sender then stores it itself."""
    assert sqlite_db.sqlite_file is not None
    client = WebhookWriterClient(sqlite_db.url, sqlite_db.sqlite_file, timeout_seconds=0.5, spawn=False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(client.sock_path))
    listener.listen(1)
    held: list[socket.socket] = []
    hung = threading.Thread(target=lambda: held.append(listener.accept()[0]))
    hung.start()
    started = time.monotonic()
    assert store_delivery(sqlite_db, shop, delivery("not-answered"), NOW, client) is True
    waited = time.monotonic() - started
    started = time.monotonic()
    assert store_delivery(sqlite_db, shop, delivery("right-after"), NOW, client) is True
    assert time.monotonic() - started < 0.3, "the next delivery does not wait on the hung writer again"
    hung.join(5)
    for sock in (*held, listener):
        sock.close()
    assert 0.4 < waited < 5, f"given up after the 0.5 s timeout, not {waited:.2f} s"
    assert [r["event_id"] for r in stored_rows(sqlite_db)] == ["not-answered", "right-after"]


def test_a_batch_that_fails_is_answered_failed_and_each_sender_meets_its_own_error(
    sqlite_db: Database, shop: int, served: Served,
) -> None:
    client = client_of(sqlite_db, spawn=False)
    orphan = event_row(shop + 1000, delivery("no-such-shop"), NOW)  # the foreign key refuses it
    assert client.store(orphan) is None
    with pytest.raises(IntegrityError):
        store_delivery(sqlite_db, shop + 1000, delivery("no-such-shop"), NOW, client)
    assert client.store(event_row(shop, delivery("fine"), NOW)) is True, "the writer serves on"
    assert [r["event_id"] for r in stored_rows(sqlite_db)] == ["fine"]
    client.close()


def test_an_unreadable_frame_drops_that_connection_only(sqlite_db: Database, shop: int, served: Served) -> None:
    rogue = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    rogue.settimeout(5)
    rogue.connect(str(served.writer.sock_path))
    rogue.sendall(b"\xff" * 8 + b"garbage")  # claims parts of 4 GiB
    assert rogue.recv(1) == b"", "the writer closed the rogue connection"
    rogue.close()
    bad_json = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad_json.settimeout(5)
    bad_json.connect(str(served.writer.sock_path))
    bad_json.sendall(webhook_writer._HEADER.pack(3, 0) + b"{x}")
    assert bad_json.recv(1) == b""
    bad_json.close()
    client = client_of(sqlite_db, spawn=False)
    assert client.store(event_row(shop, delivery("after-garbage"), NOW)) is True
    client.close()


def test_one_writer_per_database_and_its_socket_is_private(sqlite_db: Database, shop: int, served: Served) -> None:
    mode = stat.S_IMODE(os.stat(served.writer.sock_path).st_mode)
    assert mode == 0o600, f"only the service's user may hand the writer rows, not {oct(mode)}"
    second_db = Database(sqlite_db.url)
    try:
        assert WebhookWriter(second_db).serve() is False, "the lock is held: a second writer gives way"
    finally:
        second_db.dispose()
    assert client_of(sqlite_db).start_writer() is False, "no web process starts a writer while one runs"


def test_the_writer_exits_once_no_web_process_has_been_connected_for_a_while(sqlite_db: Database, shop: int) -> None:
    s = Served(sqlite_db.url, idle_exit=0.3)
    client = client_of(sqlite_db, spawn=False)
    assert client.store(event_row(shop, delivery("before-idle"), NOW)) is True
    time.sleep(0.6)
    assert s.thread.is_alive(), "a connected web process keeps it running, even when it sends nothing"
    client.close()
    s.thread.join(5)
    assert not s.thread.is_alive() and s.result == [True]
    assert not s.writer.sock_path.exists(), "its socket is removed"
    s.db.dispose()

    never_used = Served(sqlite_db.url, idle_exit=0.05, startup_grace=0.8)
    time.sleep(0.3)
    assert never_used.thread.is_alive(), "web processes that are still booting get the longer startup grace"
    never_used.thread.join(5)
    assert not never_used.thread.is_alive() and never_used.result == [True]
    never_used.db.dispose()


def _writer_pid(client: WebhookWriterClient) -> int:
    text_ = client.lock_path.read_text().strip()
    return int(text_) if text_ else 0


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: whether PID 1 reaps it promptly is not ours to test)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_the_web_app_starts_one_writer_process_and_stores_through_it(sqlite_db: Database, shop: int) -> None:
    """The production wiring: a web process on a SQLite file starts the writer (a real, detached
    process), its deliveries go through it; killed, the next delivery is stored directly and a
    new writer is started."""
    settings = Settings(database_url=sqlite_db.url, fernet_keys=(DEMO_FERNET_KEY,), secret_key="w")
    client = webhook_writer.client_for(settings, sqlite_db)
    assert client is not None
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while client.store(event_row(shop, delivery("via-process"), NOW)) is None:
            assert time.monotonic() < deadline, "the writer process did not come up within 20 s"
            time.sleep(0.1)
        pids.append(_writer_pid(client))
        assert pids[0] not in (0, os.getpid()) and _alive(pids[0])
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pids[0]):  # reaped by init: it is not our child
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert store_delivery(sqlite_db, shop, delivery("writer-killed"), NOW, client) is True
        deadline = time.monotonic() + 20
        while client.store(event_row(shop, delivery("second-writer"), NOW)) is None:
            assert time.monotonic() < deadline, "no new writer within 20 s"
            time.sleep(0.2)
        pids.append(_writer_pid(client))
        assert pids[1] != pids[0] and _alive(pids[1])
    finally:
        client.close()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
    assert [r["event_id"] for r in stored_rows(sqlite_db)] == ["via-process", "writer-killed", "second-writer"]
    with sqlite_db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(WebhookEvent)) == 3
    assert webhook_writer.client_for(settings.with_overrides(webhook_writer=False), sqlite_db) is None
