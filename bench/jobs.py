"""Jobs through Celery (1, 2, 4 worker processes) against the same jobs run inline, and the
latency from a webhook to the storefront push.

Three parts, each printing one JSON line per figure:

- **no-op job**: a per-shop job plugged in as a hook (``refresh_tokens``), so the figures measure
  the machinery every real job pays: the JobRun rows (two commits), the per-shop advisory lock,
  the Redis round trip and the task bookkeeping.
- **outbox delivery**: ``eta_changed`` storefront pushes of many Shopify shops delivered by the
  ``deliver_outbox`` job with the real composition root (``bootstrap.runtime``: dispatcher,
  Shopify gateway, GraphQL over HTTP) to the sandbox Shopify, through Celery and inline.
- **webhook → push latency**: the sandbox store sends a signed ``orders/create`` webhook; the
  figure is the time from the webhook's arrival (``webhook_events.received_at``) until the
  order's storefront push (its ``backordered`` tag) is in the sandbox, p50 and p99. Embedded:
  SQLite, the web app and the APScheduler thread pool in one process, as ``backorders serve``
  runs them. Scaled out: PostgreSQL, Celery workers, the clock enqueuing, the web app kicking
  webhook processing onto the queue. The scheduler tick of ``process_webhooks`` and
  ``deliver_outbox`` is a parameter (``--tick``, 1 s here; the default schedule is 1 minute,
  which then dominates the latency: a push waits up to one ``deliver_outbox`` interval).

The sandbox Shopify runs in this process (a threaded HTTP server), so it shares this process's
CPU with the inline runs; workers are separate processes. Needs PostgreSQL
(``BENCH_DATABASE_URL`` / ``TEST_DATABASE_URL``: a server where the bench may create and drop its
own databases) and Redis (``BENCH_BROKER_URL``, default redis://127.0.0.1:6379/0).

Run ``python -m bench.jobs [--quick]`` (not ``python bench/jobs.py``: that would shadow the
``jobs`` package).
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

from sqlalchemy import func, select, text

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
TASKS = 400
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


def inline_rate(db: Database, shop_ids: list[int], tasks: int = TASKS) -> float:
    ctx = _context(db, Settings(database_url=db.url))
    t0 = time.perf_counter()
    for i in range(tasks):
        run_job_for_shop(ctx, JOB, shop_ids[i % len(shop_ids)], NOW)
    return tasks / (time.perf_counter() - t0)


def start_workers(db_url: str, queue: str, workers: int, context_ref: str,
                  extra_env: dict[str, str] | None = None) -> list[subprocess.Popen[bytes]]:
    """``workers`` Celery worker processes (one pool process each) on ``queue``."""
    env = {**os.environ, "DATABASE_URL": db_url, "DEMO": "1", "CELERY_BROKER_URL": BROKER, "CELERY_QUEUE": queue,
           "BACKORDERS_JOB_CONTEXT": context_ref, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "jobs.celery_app", "worker", "-Q", queue, "-c", "1",
             "-n", f"b{i}-{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-l", "ERROR"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _client(queue: str) -> Any:
    from celery import Celery

    from jobs.celery_app import celery_config

    client = Celery("bench-client", set_as_current=False)
    client.config_from_object(celery_config(BROKER, queue))
    return client


def celery_rate(db: Database, shop_ids: list[int], workers: int, tasks: int = TASKS) -> float:
    from jobs.celery_app import RUN_FOR_SHOP

    queue = f"bo-bench-{uuid.uuid4().hex[:8]}"
    procs = start_workers(db.url, queue, workers, "bench.jobs:build_context")
    client = _client(queue)
    try:
        start = _finished(db)
        for i in range(workers * 4):  # warm-up: every worker up and connected
            client.send_task(RUN_FOR_SHOP, args=(JOB, shop_ids[i % len(shop_ids)]), queue=queue)
        _wait(db, start + workers * 4, timeout=120)
        start = _finished(db)
        t0 = time.perf_counter()
        for i in range(tasks):
            client.send_task(RUN_FOR_SHOP, args=(JOB, shop_ids[i % len(shop_ids)]), queue=queue)
        _wait(db, start + tasks)
        return tasks / (time.perf_counter() - t0)
    finally:
        stop_workers(procs)
        client.close()


def noop_figures(tasks: int, shops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgres", Path(tmp)) as db:
        with UnitOfWork(db) as uow:
            for i in range(shops):
                uow.add(Shop(platform="manual", domain=f"bench-{i}", created_at=NOW, settings={}))
            uow.commit()
        with db.engine.connect() as conn:
            shop_ids = [int(r[0]) for r in conn.execute(text("SELECT id FROM shops ORDER BY id"))]
        inline = inline_rate(db, shop_ids, tasks)
        emit("jobs", "inline.noop_job_per_s", inline, "jobs/s", None, "reported", None, tasks=tasks)
        one = None
        for workers in (1, 2, 4):
            rate = celery_rate(db, shop_ids, workers, tasks)
            if workers == 1:
                one = rate
                emit("jobs", "celery_1_worker.noop_job_per_s", rate, "jobs/s", inline, ">= 0.3x inline",
                     rate >= 0.3 * inline, tasks=tasks)
            else:
                assert one is not None
                wanted = {2: 1.5, 4: 2.5}[workers]
                emit("jobs", f"celery_{workers}_workers.noop_job_per_s", rate, "jobs/s", inline,
                     f">= {wanted}x the 1-worker rate ({one:.0f}/s)", rate >= wanted * one, tasks=tasks,
                     vs_one_worker=round(rate / one, 3), cpus=os.cpu_count())


# Outbox delivery to the sandbox store -----------------------------------------------------------

SHOPIFY_VERSION = "2025-01"
PUSH_KIND = "eta_changed"


def delivery_context() -> JobContext:
    """The worker-side factory for delivery (BACKORDERS_JOB_CONTEXT=bench.jobs:delivery_context):
    the real composition root, with Shopify pointed at the sandbox (``BENCH_SHOPIFY_URL``)."""
    return _runtime(load_settings(dotenv_path=None), os.environ["BENCH_SHOPIFY_URL"]).job_ctx


def _runtime(settings: Settings, shopify_url: str) -> Any:
    from bootstrap.runtime import build_runtime

    return build_runtime(settings, shopify_base_url_for=lambda _shop: shopify_url)


class SandboxShops:
    """The sandbox Shopify with ``count`` shops, each installed in ``db`` with one product past
    stock and one backordered order (pulled through the real gateway)."""

    def __init__(self, db: Database, count: int) -> None:
        from adapters.shopify.gateway import ShopifyGateway
        from connector.services.shops import install_shop, shop_access
        from connector.services.sync import pull_store
        from sandbox.shopify.server import SandboxShopify

        self.sb = SandboxShopify(validate_with_real_schema=False, bucket_size=1_000_000, restore_rate=1_000_000)
        self.sb.start()
        self.gateway = ShopifyGateway(self.sb.api_key, self.sb.api_secret, SHOPIFY_VERSION, lambda _s: self.sb.base_url)
        self.shop_ids: list[int] = []
        self.domains: dict[int, str] = {}
        self.orders: dict[int, str] = {}  # shop id -> the external id of its first order
        now = datetime.now(UTC)
        for i in range(count):
            domain = f"bench-{i}.myshopify.com"
            if domain not in self.sb.shops:
                self.sb.add_shop(domain)
            self.sb.set_rate_limit(1_000_000, 1_000_000, shop=domain)
            self.sb.create_product(f"Chair {i}", [{"sku": f"CHAIR-{i}", "price": 9000, "available": 0,
                                                   "inventory_policy": "continue"}], shop=domain)
            order = self.sb.create_order([{"sku": f"CHAIR-{i}", "quantity": 2}], shop=domain, notify=False)
            shop_id, _ = install_shop(db, "shopify", domain, {"access_token": self.sb.issue_token(domain)}, now)
            pull_store(db, shop_id, self.gateway.storefront_for(shop_access(db, shop_id), db), now)
            self.shop_ids.append(shop_id)
            self.domains[shop_id] = domain
            self.orders[shop_id] = str(order.id)
        # Only the pushes the bench adds are measured: what the pulls queued counts as delivered.
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE outbox_messages SET state = 'sent', sent_at = created_at"))

    @property
    def url(self) -> str:
        return str(self.sb.base_url)

    def settings(self, database_url: str, **overrides: Any) -> Settings:
        return load_settings({}, dotenv_path=None, demo=True, database_url=database_url,
                             shopify_api_key=self.sb.api_key, shopify_api_secret=self.sb.api_secret,
                             shopify_api_version=SHOPIFY_VERSION, **overrides)

    def worker_env(self) -> dict[str, str]:
        return {"BENCH_SHOPIFY_URL": self.url, "SHOPIFY_API_KEY": self.sb.api_key,
                "SHOPIFY_API_SECRET": self.sb.api_secret, "SHOPIFY_API_VERSION": SHOPIFY_VERSION}

    def tagged(self, shop_id: int, order_id: str) -> bool:
        order = self.sb.shop(self.domains[shop_id]).orders.get(int(order_id))
        return order is not None and "backordered" in order.tags

    def stop(self) -> None:
        self.sb.stop()


def queue_pushes(db: Database, shops: SandboxShops, messages: int, run: str) -> str:
    """``messages`` storefront pushes spread over the shops; returns the key prefix of this run."""
    from connector.db.models import OutboxMessage

    now = datetime.now(UTC)
    prefix = f"bench-{run}-"
    for i in range(messages):
        shop_id = shops.shop_ids[i % len(shops.shop_ids)]
        order = shops.orders[shop_id]
        with UnitOfWork(db, shop_id) as uow:
            uow.add(OutboxMessage(kind=PUSH_KIND, target="storefront", subject=order, payload={"order": order},
                                  idempotency_key=f"{prefix}{i}", next_attempt_at=now, created_at=now))
            uow.commit()
    return prefix


def _delivered(db: Database, prefix: str) -> tuple[int, int]:
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state "
                                "IN ('dead', 'skipped')) FROM outbox_messages WHERE idempotency_key LIKE :p"),
                           {"p": prefix + "%"}).one()
    return int(row[0]), int(row[1])


def inline_delivery_rate(db: Database, shops: SandboxShops, messages: int) -> float:
    rt = _runtime(shops.settings(db.url), shops.url)
    try:
        prefix = queue_pushes(db, shops, messages, "inline")
        t0 = time.perf_counter()
        for shop_id in shops.shop_ids:
            run_job_for_shop(rt.job_ctx, "deliver_outbox", shop_id, datetime.now(UTC))
        elapsed = time.perf_counter() - t0
        sent, failed = _delivered(db, prefix)
        if (sent, failed) != (messages, 0):
            raise RuntimeError(f"inline delivery sent {sent} of {messages} ({failed} dead)")
        return messages / elapsed
    finally:
        rt.executor.shutdown()
        rt.db.dispose()


def celery_delivery_rate(db: Database, shops: SandboxShops, messages: int, workers: int) -> float:
    from jobs.celery_app import RUN_FOR_SHOP

    queue = f"bo-bench-{uuid.uuid4().hex[:8]}"
    procs = start_workers(db.url, queue, workers, "bench.jobs:delivery_context", shops.worker_env())
    client = _client(queue)
    try:
        start = _finished(db)
        for i in range(workers * 4):  # warm-up: every worker up, its runtime built (nothing is due)
            client.send_task(RUN_FOR_SHOP, args=("deliver_outbox", shops.shop_ids[i % len(shops.shop_ids)]),
                             queue=queue)
        _wait(db, start + workers * 4, timeout=120)
        prefix = queue_pushes(db, shops, messages, f"celery{workers}")
        t0 = time.perf_counter()
        for shop_id in shops.shop_ids:  # one job per shop, as the clock's fan-out sends them
            client.send_task(RUN_FOR_SHOP, args=("deliver_outbox", shop_id), queue=queue)
        deadline = time.monotonic() + 300
        while (done := _delivered(db, prefix))[0] + done[1] < messages:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {messages} delivered")
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        if done != (messages, 0):
            raise RuntimeError(f"Celery delivery: {done[0]} sent, {done[1]} dead of {messages}")
        return messages / elapsed
    finally:
        stop_workers(procs)
        client.close()


def delivery_figures(shop_count: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgres", Path(tmp)) as db:
        shops = SandboxShops(db, shop_count)
        try:
            inline = inline_delivery_rate(db, shops, messages)
            emit("jobs", "inline.outbox_delivery_msgs_per_s", inline, "messages/s", None, "reported", None,
                 messages=messages, shops=shop_count)
            one = None
            for workers in (1, 2, 4):
                rate = celery_delivery_rate(db, shops, messages, workers)
                if workers == 1:
                    one = rate
                    emit("jobs", "celery_1_worker.outbox_delivery_msgs_per_s", rate, "messages/s", inline,
                         ">= 0.5x inline", rate >= 0.5 * inline, messages=messages, shops=shop_count)
                else:
                    assert one is not None
                    wanted = {2: 1.3, 4: 1.5}[workers]
                    emit("jobs", f"celery_{workers}_workers.outbox_delivery_msgs_per_s", rate, "messages/s", inline,
                         f">= {wanted}x the 1-worker rate ({one:.0f}/s)", rate >= wanted * one, messages=messages,
                         shops=shop_count, vs_one_worker=round(rate / one, 3), cpus=os.cpu_count())
        finally:
            shops.stop()


# Webhook → storefront push latency ---------------------------------------------------------------


class WebServer:
    """The web app of a runtime on a loopback port, as ``backorders serve`` serves it (threaded)."""

    def __init__(self, app: Any) -> None:
        import threading

        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _subscribe(db: Database, shops: SandboxShops, url: str) -> None:
    """What the install does: subscribe the app's webhook endpoint for every shop."""
    from connector.services.shops import shop_access

    for shop_id in shops.shop_ids:
        shops.gateway.storefront_for(shop_access(db, shop_id), db).register_webhooks(f"{url}/webhooks/shopify")


def measure_latency(db: Database, shops: SandboxShops, samples: int, tick: float, seed: int = 5) -> list[float]:
    """Seconds from each webhook's arrival to its order's push in the store, one order at a time."""
    import random

    from connector.db.models import WebhookEvent

    rng = random.Random(seed)
    latencies = []
    for k in range(samples):
        shop_id = shops.shop_ids[k % len(shops.shop_ids)]
        time.sleep(rng.uniform(0, tick))  # do not phase-lock with the scheduler's tick
        n = shops.shop_ids.index(shop_id)
        order = shops.sb.create_order([{"sku": f"CHAIR-{n}", "quantity": 1}], shop=shops.domains[shop_id])
        deadline = time.monotonic() + 30 + 2 * tick
        while not shops.tagged(shop_id, str(order.id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the push of order {order.id} never arrived")
            time.sleep(0.002)
        arrived = datetime.now(UTC)
        with UnitOfWork(db, shop_id, readonly=True) as uow:
            received = uow.session.scalar(select(func.min(WebhookEvent.received_at))
                                          .where(WebhookEvent.resource_id == str(order.id)))
        if received is None:
            raise RuntimeError(f"order {order.id} was pushed but its webhook is not recorded")
        latencies.append((arrived - received).total_seconds())
    return latencies


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _emit_latency(mode: str, latencies: list[float], tick: float, **extra: Any) -> None:
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        value = _percentile(latencies, q)
        bound = 2 * tick + 1.0  # one process_webhooks kick, at most one deliver_outbox tick, the work
        emit("jobs", f"{mode}.webhook_to_push_{name}_s", value, "s", tick, f"<= {bound:g} s (tick {tick:g} s)",
             value <= bound, samples=len(latencies), **extra)


def embedded_latency(shop_count: int, samples: int, tick: float) -> None:
    from bootstrap.runtime import build_web_app
    from jobs.scheduler import start_embedded_scheduler

    with tempfile.TemporaryDirectory() as tmp, fresh_database("sqlite", Path(tmp)) as db:
        shops = SandboxShops(db, shop_count)
        rt = _runtime(shops.settings(db.url, scheduler_lock_path=str(Path(tmp) / "scheduler.lock")), shops.url)
        web = WebServer(build_web_app(rt))
        _subscribe(db, shops, web.url)
        handle = start_embedded_scheduler(rt.job_ctx, {"process_webhooks": tick, "deliver_outbox": tick})
        try:
            latencies = measure_latency(db, shops, samples, tick)
        finally:
            handle.shutdown()
            web.stop()
            rt.executor.shutdown()
            rt.db.dispose()
            shops.stop()
    _emit_latency("embedded_sqlite", latencies, tick, shops=shop_count)


def scaled_out_latency(shop_count: int, samples: int, tick: float, workers: int = 2) -> None:
    from bootstrap.runtime import build_web_app
    from jobs import celery_app
    from jobs.clock import start_clock

    queue = f"bo-bench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, fresh_database("postgres", Path(tmp)) as db:
        shops = SandboxShops(db, shop_count)
        settings = shops.settings(db.url, job_backend="celery", celery_broker_url=BROKER,
                                  scheduler_lock_path=str(Path(tmp) / "scheduler.lock"))
        # This process is the web server (its kick enqueues process_webhooks) and the clock; the
        # Celery app reads the rest of its configuration from the environment, as in production.
        saved = {k: os.environ.get(k) for k in ("DEMO", "DATABASE_URL", "CELERY_BROKER_URL", "CELERY_QUEUE")}
        os.environ.update({"DEMO": "1", "DATABASE_URL": db.url, "CELERY_BROKER_URL": BROKER, "CELERY_QUEUE": queue})
        celery_app.configure(settings, queue)
        rt = _runtime(settings, shops.url)
        web = WebServer(build_web_app(rt))
        _subscribe(db, shops, web.url)
        procs = start_workers(db.url, queue, workers, "bench.jobs:delivery_context", shops.worker_env())
        clock = start_clock(settings, rt.db, {"process_webhooks": tick, "deliver_outbox": tick})
        try:
            start = _finished(db)
            _wait(db, start + workers, timeout=120)  # the first ticks ran: the workers are up
            latencies = measure_latency(db, shops, samples, tick)
        finally:
            clock.stop()
            stop_workers(procs)
            web.stop()
            rt.executor.shutdown()
            rt.db.dispose()
            shops.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    _emit_latency("scaled_out_postgres_celery", latencies, tick, shops=shop_count, workers=workers)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that every part runs")
    parser.add_argument("--tasks", type=int, help=f"no-op jobs per run (default {TASKS})")
    parser.add_argument("--messages", type=int, help="storefront pushes per delivery run (default 100)")
    parser.add_argument("--shops", type=int, help="Shopify shops the pushes are spread over (default 12)")
    parser.add_argument("--latency-shops", type=int, help="Shopify shops in the latency runs (default 5)")
    parser.add_argument("--samples", type=int, help="webhooks per latency mode (default 20)")
    parser.add_argument("--tick", type=float, default=1.0, help="process_webhooks / deliver_outbox interval, s")
    parser.add_argument("--only", choices=["noop", "delivery", "latency"], action="append",
                        help="run only these parts (repeatable)")
    args = parser.parse_args(argv if argv is not None else [])
    quick = args.quick
    tasks = args.tasks or (40 if quick else TASKS)
    messages = args.messages or (20 if quick else 100)
    shop_count = args.shops or (4 if quick else 12)
    latency_shops = args.latency_shops or (2 if quick else 5)
    samples = args.samples or (4 if quick else 20)
    parts = set(args.only or ["noop", "delivery", "latency"])
    if not postgres_available():
        print("# PostgreSQL not reachable: bench jobs skipped", file=sys.stderr)
        return
    started = time.monotonic()
    if "noop" in parts:
        noop_figures(tasks, SHOPS)
        print(f"# bench jobs: no-op part done after {time.monotonic() - started:.0f} s", file=sys.stderr)
    if "delivery" in parts:
        delivery_figures(shop_count, messages)
        print(f"# bench jobs: delivery part done after {time.monotonic() - started:.0f} s", file=sys.stderr)
    if "latency" in parts:
        embedded_latency(latency_shops, samples, args.tick)
        scaled_out_latency(latency_shops, samples, args.tick)
        print(f"# bench jobs: latency part done after {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
