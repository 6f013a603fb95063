"""The embedded scheduler: one per machine (file lock), runs the jobs, keeps its schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from jobs_support import RecordingDispatcher, add_message, add_shop, message
from sqlalchemy import text

from connector.config import Settings
from connector.db.engine import Database
from jobs.leader import FileLeaderLock
from jobs.registry import JobContext
from jobs.scheduler import EMBEDDED_TABLE, start_embedded_scheduler

ROOT = Path(__file__).resolve().parents[2]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def clean_schedule(db: Database) -> Iterator[Database]:
    with db.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {EMBEDDED_TABLE}"))
    yield db
    with db.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {EMBEDDED_TABLE}"))


def _ctx(db: Database, lock: Path, dispatcher: RecordingDispatcher | None = None) -> JobContext:
    d = dispatcher or RecordingDispatcher()
    return JobContext(db=db, settings=Settings(database_url=db.url, scheduler_lock_path=str(lock)),
                      dispatcher_factory=lambda shop_id: d)


def _scheduler_process(url: str, lock: Path) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys
        from connector import crypto
        from connector.config import DEMO_FERNET_KEY, Settings
        from connector.db.engine import Database
        from jobs.registry import JobContext
        from jobs.scheduler import start_embedded_scheduler
        crypto.configure_cipher([DEMO_FERNET_KEY])
        ctx = JobContext(db=Database({url!r}), settings=Settings(database_url={url!r}, scheduler_lock_path={str(lock)!r}),
                         dispatcher_factory=lambda shop_id: (lambda m: None))
        handle = start_embedded_scheduler(ctx, {{"retention": 3600}}, retry_seconds=0.2)
        print("leader" if handle.leader else "standby", flush=True)
        sys.stdin.read()
        handle.shutdown()
        """
    )
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def test_only_one_process_schedules_and_a_standby_takes_over_when_it_dies(
    clean_schedule: Database, tmp_path: Path
) -> None:
    db, lock = clean_schedule, tmp_path / "scheduler.lock"
    first = _scheduler_process(db.url, lock)
    second = None
    handle = None
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "leader"
        second = _scheduler_process(db.url, lock)
        assert second.stdout is not None and second.stdout.readline().strip() == "standby"
        handle = start_embedded_scheduler(_ctx(db, lock), {"retention": 3600}, retry_seconds=0.1)
        assert not handle.leader
        _stop(second)
        time.sleep(0.3)
        assert not handle.leader  # the leader is still alive
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        assert wait_for(lambda: handle is not None and handle.leader, timeout=5)
        assert not FileLeaderLock(lock).try_acquire()
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
        if handle is not None:
            handle.shutdown()
    assert FileLeaderLock(lock).try_acquire()  # released on shutdown


def test_the_leader_runs_the_scheduled_jobs(clean_schedule: Database, tmp_path: Path) -> None:
    db = clean_schedule
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher()
    handle = start_embedded_scheduler(_ctx(db, tmp_path / "lock", dispatcher), {"deliver_outbox": 0.3})
    try:
        assert handle.leader
        assert wait_for(lambda: dispatcher.keys() == ["k1"], timeout=10)
    finally:
        handle.shutdown()
    assert message(db, shop, mid).state == "sent"


def _stored(db: Database) -> dict[str, float]:
    with db.engine.connect() as conn:
        return {row[0]: row[1] for row in conn.execute(text(f"SELECT id, next_run_time FROM {EMBEDDED_TABLE}"))}


def test_the_schedule_survives_a_restart_and_follows_changed_intervals(
    clean_schedule: Database, tmp_path: Path
) -> None:
    db, lock = clean_schedule, tmp_path / "lock"
    ctx = _ctx(db, lock)
    start_embedded_scheduler(ctx, {"retention": 3600, "recompute_etas": 7200}).shutdown()
    first = _stored(db)
    assert set(first) == {"retention", "recompute_etas"}
    time.sleep(0.05)

    start_embedded_scheduler(ctx, {"retention": 3600, "consolidate": timedelta(minutes=5)}).shutdown()
    second = _stored(db)
    assert set(second) == {"retention", "consolidate"}  # dropped jobs leave the store
    assert second["retention"] == first["retention"]  # unchanged job keeps its next run

    start_embedded_scheduler(ctx, {"retention": 60, "consolidate": timedelta(minutes=5)}).shutdown()
    assert _stored(db)["retention"] != first["retention"]  # a changed interval is rescheduled
