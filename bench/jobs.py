"""Jobs per second through Celery (1, 2, 4 worker processes) against the same job run inline.

The job is a no-op per-shop job plugged in as a hook (``refresh_tokens``), so the figures measure
the machinery every real job pays: the JobRun rows (two commits), the per-shop advisory lock, the
Redis round trip and the task bookkeeping. Needs PostgreSQL (``BENCH_DATABASE_URL`` /
``TEST_DATABASE_URL``) and Redis (``BENCH_BROKER_URL``, default redis://127.0.0.1:6379/0).

Run ``python -m bench.jobs`` (not ``python bench/jobs.py``: that would shadow the ``jobs`` package).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import emit, fresh_database, postgres_available
from connector.config import Settings, load_settings
from connector.db.engine import Database
from connector.db.models import Shop
from connector.db.uow import UnitOfWork
from jobs.registry import JobContext
from jobs.runner import run_job_for_shop

ROOT = Path(__file__).resolve().parents[1]
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
JOB = "refresh_tokens"
SHOPS = 50
TASKS = 600
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _noop(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    return {}


def _context(db: Database, settings: Settings) -> JobContext:
    def no_dispatcher(shop_id: int) -> Any:
        raise RuntimeError("the bench delivers nothing")

    return JobContext(db=db, settings=settings, dispatcher_factory=no_dispatcher, hooks={JOB: _noop})


def build_context() -> JobContext:
    """The worker-side factory (BACKORDERS_JOB_CONTEXT=bench.jobs:build_context)."""
    settings = load_settings(dotenv_path=None)
    return _context(Database(settings.database_url), settings)


def _finished(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM job_runs WHERE status <> 'running'")).scalar() or 0)


def _wait(db: Database, target: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while _finished(db) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {_finished(db)} of {target} runs finished")
        time.sleep(0.02)


def inline_rate(db: Database, shop_ids: list[int]) -> float:
    ctx = _context(db, Settings(database_url=db.url))
    t0 = time.perf_counter()
    for i in range(TASKS):
        run_job_for_shop(ctx, JOB, shop_ids[i % len(shop_ids)], NOW)
    return TASKS / (time.perf_counter() - t0)


def celery_rate(db: Database, shop_ids: list[int], workers: int) -> float:
    from celery import Celery

    from jobs.celery_app import RUN_FOR_SHOP, celery_config

    queue = f"bo-bench-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": db.url, "DEMO": "1", "CELERY_BROKER_URL": BROKER, "CELERY_QUEUE": queue,
           "BACKORDERS_JOB_CONTEXT": "bench.jobs:build_context", "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs.celery_app", "worker", "-Q", queue, "-c", "1",
             "-n", f"b{i}-{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "ERROR"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    client = Celery("bench-client", set_as_current=False)
    client.config_from_object(celery_config(BROKER, queue))
    try:
        start = _finished(db)
        for i in range(workers * 4):  # warm-up: every worker up and connected
            client.send_task(RUN_FOR_SHOP, args=(JOB, shop_ids[i % len(shop_ids)]), queue=queue)
        _wait(db, start + workers * 4, timeout=120)
        start = _finished(db)
        t0 = time.perf_counter()
        for i in range(TASKS):
            client.send_task(RUN_FOR_SHOP, args=(JOB, shop_ids[i % len(shop_ids)]), queue=queue)
        _wait(db, start + TASKS)
        return TASKS / (time.perf_counter() - t0)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        client.close()


def main() -> None:
    if not postgres_available():
        print("# PostgreSQL not reachable: bench jobs skipped", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgres", Path(tmp)) as db:
        with UnitOfWork(db) as uow:
            for i in range(SHOPS):
                uow.add(Shop(platform="manual", domain=f"bench-{i}", created_at=NOW, settings={}))
            uow.commit()
        with db.engine.connect() as conn:
            shop_ids = [int(r[0]) for r in conn.execute(text("SELECT id FROM shops ORDER BY id"))]
        inline = inline_rate(db, shop_ids)
        emit("jobs", "inline.noop_job_per_s", inline, "jobs/s", None, "reported", None, tasks=TASKS)
        one = None
        for workers in (1, 2, 4):
            rate = celery_rate(db, shop_ids, workers)
            if workers == 1:
                one = rate
                emit("jobs", "celery_1_worker.noop_job_per_s", rate, "jobs/s", inline, ">= 0.3x inline",
                     rate >= 0.3 * inline, tasks=TASKS)
            else:
                assert one is not None
                wanted = {2: 1.5, 4: 2.5}[workers]
                emit("jobs", f"celery_{workers}_workers.noop_job_per_s", rate, "jobs/s", inline,
                     f">= {wanted}x the 1-worker rate ({one:.0f}/s)", rate >= wanted * one, tasks=TASKS,
                     vs_one_worker=round(rate / one, 3), cpus=os.cpu_count())


if __name__ == "__main__":
    main()
