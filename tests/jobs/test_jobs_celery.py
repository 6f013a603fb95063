"""Scale-out with real processes: Celery workers on Redis + PostgreSQL, and the clock election.

Slow (worker start-up, real timers): run with ``-m slow`` or the full suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from jobs_support import DELIVERIES_DDL, PULLS_DDL, add_shop, seed_backorders
from sqlalchemy import func, select, text

from connector.db.engine import Database
from connector.db.models import DRAFT_PO_STATUSES, JobRun, OrderLine, OutboxMessage, PurchaseOrder
from connector.db.uow import UnitOfWork
from jobs.celery_app import FAN_OUT, RUN_FOR_SHOP, celery_config

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


@pytest.fixture
def pg(db: Database) -> Iterator[Database]:
    """PostgreSQL only; the tables these tests add are dropped again (the database is shared)."""
    if db.is_sqlite:
        pytest.skip("scale-out runs on PostgreSQL")

    def drop() -> None:
        with db.engine.begin() as conn:
            for table in ("test_deliveries", "test_pulls", "apscheduler_clock_jobs"):
                conn.execute(text(f"DROP TABLE IF EXISTS {table}"))

    drop()
    yield db
    drop()


@pytest.fixture
def queue() -> Iterator[str]:
    client = redis.Redis.from_url(BROKER, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        pytest.skip(f"Redis not reachable at {BROKER}")
    name = f"bo-test-{uuid.uuid4().hex[:10]}"
    yield name
    client.delete(name)
    client.close()


def _env(db: Database, queue: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db.url,
        "DEMO": "1",
        "CELERY_BROKER_URL": BROKER,
        "CELERY_QUEUE": queue,
        "BACKORDERS_JOB_CONTEXT": "jobs_support:build_context",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
    }


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _table_count(db: Database, sql: str) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def test_many_duplicate_tasks_on_three_workers_make_one_draft_per_supplier_and_send_each_message_once(
    pg: Database, queue: str, tmp_path: Path
) -> None:
    db = pg
    with db.engine.begin() as conn:
        conn.execute(text(DELIVERIES_DDL))
    shops = [add_shop(db, f"shop-{i}") for i in range(12)]
    for shop in shops:
        seed_backorders(db, shop, suppliers=2, orders=3)
    assert _table_count(db, "SELECT count(*) FROM outbox_messages") >= 12 * 3

    logs = [(tmp_path / f"w{i}.log").open("wb") for i in range(3)]
    workers = [
        subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "jobs.celery_app", "worker", "-Q", queue, "-c", "2",
             "-n", f"w{i}-{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "WARNING"],
            cwd=ROOT, env=_env(db, queue), stdout=logs[i], stderr=subprocess.STDOUT,
        )
        for i in range(3)
    ]
    client = Celery("test-client", set_as_current=False)
    client.config_from_object(celery_config(BROKER, queue))
    try:
        sent = 0
        for shop in shops:  # every job fired six times at once for each shop
            for job in ("consolidate", "deliver_outbox", "recompute_etas", "retention"):
                for _duplicate in range(6):
                    client.send_task(RUN_FOR_SHOP, args=(job, shop), queue=queue)
                    sent += 1
        for _ in range(3):
            client.send_task(FAN_OUT, args=("consolidate",), queue=queue)
        expected = sent + 3 * len(shops)

        def finished() -> bool:
            return _table_count(
                db, "SELECT count(*) FROM job_runs WHERE shop_id IS NOT NULL AND status <> 'running'"
            ) >= expected

        assert wait_for(finished, timeout=120), (tmp_path / "w0.log").read_text()[-3000:]
        # Consolidation may have written ETA messages after the last delivery: one more round.
        for shop in shops:
            client.send_task(RUN_FOR_SHOP, args=("deliver_outbox", shop), queue=queue)
        assert wait_for(lambda: _table_count(
            db, "SELECT count(*) FROM job_runs WHERE shop_id IS NOT NULL AND status <> 'running'"
        ) >= expected + len(shops), timeout=60)
    finally:
        for w in workers:
            _stop(w)
        for f in logs:
            f.close()
        client.close()

    with UnitOfWork(db, readonly=True) as uow:
        statuses = dict(uow.session.execute(select(JobRun.status, func.count()).where(
            JobRun.shop_id.is_not(None)).group_by(JobRun.status)).all())
    assert statuses.get("failed", 0) == 0, statuses
    assert statuses.get("ok", 0) >= 4 * len(shops)
    assert statuses.get("skipped", 0) > 0  # duplicates really overlapped and met the per-shop lock
    for shop in shops:
        with UnitOfWork(db, shop, readonly=True) as uow:
            drafts = uow.session.execute(
                select(PurchaseOrder.supplier_id, func.count())
                .where(PurchaseOrder.status.in_(DRAFT_PO_STATUSES))
                .group_by(PurchaseOrder.supplier_id)
            ).all()
            assert sorted(n for _, n in drafts) == [1, 1], (shop, drafts)
            assert all(line.pegged == line.backordered for line in uow.all(select(OrderLine)))
            states = set(uow.session.scalars(select(OutboxMessage.state)))
            assert states == {"sent"}, (shop, states)
    total = _table_count(db, "SELECT count(*) FROM outbox_messages")
    assert _table_count(db, "SELECT count(*) FROM test_deliveries") == total
    assert _table_count(db, "SELECT count(DISTINCT message_id) FROM test_deliveries") == total
    assert _table_count(db, "SELECT count(DISTINCT pid) FROM test_deliveries") >= 2  # really spread out


def _worker(db: Database, queue: str, name: str, log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "jobs.celery_app", "worker", "-Q", queue, "-c", "2",
         "-n", f"{name}-{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        cwd=ROOT, env=_env(db, queue), stdout=log, stderr=subprocess.STDOUT,
    )


def test_a_task_whose_worker_process_is_killed_runs_again_on_another_process(
    pg: Database, queue: str, tmp_path: Path
) -> None:
    db = pg
    with db.engine.begin() as conn:
        conn.execute(text(PULLS_DDL))
    shop = add_shop(db, "killed")
    log = (tmp_path / "worker.log").open("wb")
    worker = _worker(db, queue, "k", log)
    client = Celery("test-client", set_as_current=False)
    client.config_from_object(celery_config(BROKER, queue))
    try:
        client.send_task(RUN_FOR_SHOP, args=("pull_store", shop), queue=queue)
        assert wait_for(lambda: _table_count(db, "SELECT count(*) FROM test_pulls") == 1, timeout=60)
        victim = _table_count(db, "SELECT pid FROM test_pulls")
        os.kill(victim, signal.SIGKILL)  # the pool process dies mid-task (OOM killer, segfault)

        def done() -> bool:
            return _table_count(db, "SELECT count(*) FROM job_runs WHERE job = 'pull_store' AND status = 'ok'") == 1

        assert wait_for(done, timeout=60), (tmp_path / "worker.log").read_text()[-3000:]
    finally:
        _stop(worker)
        log.close()
        client.close()
    with db.engine.connect() as conn:
        pids = [int(r[0]) for r in conn.execute(text("SELECT pid FROM test_pulls ORDER BY id"))]
        runs = [r[0] for r in conn.execute(text("SELECT status FROM job_runs WHERE job = 'pull_store' ORDER BY id"))]
    assert len(pids) == 2 and pids[0] != pids[1]
    # The killed attempt's row stays 'running' until retention closes it as abandoned.
    assert runs == ["running", "ok"]


def _clock_process(db: Database, queue: str, interval: float) -> tuple[subprocess.Popen[str], list[tuple[float, str]]]:
    script = (
        "import logging, sys\n"
        "from bootstrap.wiring import build_database\n"
        "from connector.config import load_settings\n"
        "from jobs.clock import main\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr, format='%(message)s')\n"
        "settings = load_settings(dotenv_path=None)\n"
        f"raise SystemExit(main(settings, build_database(settings), {{'deliver_outbox': {interval}}}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=_env(db, queue), stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.monotonic(), line.strip()))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def test_a_standby_clock_takes_over_within_one_interval_when_the_leader_is_killed(pg: Database, queue: str) -> None:
    db = pg
    interval = 2.0
    r = redis.Redis.from_url(BROKER)
    first, first_log = _clock_process(db, queue, interval)
    second = None
    try:
        assert wait_for(lambda: any("clock is the leader" in line for _, line in first_log), timeout=20), first_log
        second, second_log = _clock_process(db, queue, interval)
        assert wait_for(lambda: any("standing by" in line for _, line in second_log), timeout=20), second_log
        assert wait_for(lambda: r.llen(queue) >= 2, timeout=3 * interval + 5)  # the leader enqueues
        time.sleep(interval)
        assert not any("enqueued" in line for _, line in second_log)  # the standby does not

        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()

        def second_enqueued() -> bool:
            return any("enqueued" in line for _, line in second_log)

        assert wait_for(second_enqueued, timeout=3 * interval + 5), second_log
        took = next(t for t, line in second_log if "enqueued" in line) - killed_at
        # Poll (interval / 2) + the remainder of the current interval, plus process slack.
        assert took <= interval + 1.5, took
        assert any("clock is the leader" in line for _, line in second_log)
    finally:
        for proc in (first, second):
            if proc is not None:
                _stop(proc)  # type: ignore[arg-type]
                if proc.stderr is not None:
                    proc.stderr.close()
        r.close()
