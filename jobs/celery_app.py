"""Celery for the scaled-out deployment: workers on Redis run the same job functions per shop.

Start workers with ``celery -A jobs.celery_app worker -Q backorders`` (or the CLI's
``backorders worker``). Importing this module touches nothing: the broker settings are those given
to :func:`configure`, or else read from the environment (``load_settings``) the first time Celery
needs its configuration, and the
:class:`~jobs.registry.JobContext` is built lazily in each worker process (after the prefork
pool forks, so no database connection crosses a fork) by the *context factory*:
``set_context_factory(fn)`` from a composition root, or ``BACKORDERS_JOB_CONTEXT=module:function``
in the environment for a bare ``celery`` command line.

Delivery guarantees: tasks are acknowledged *after* they run (``acks_late``) and given back to
the queue if the worker process dies mid-task (``task_reject_on_worker_lost``), so a killed
worker loses no work; the price is that a task may run twice. That is safe because every job is
idempotent (consolidation recomputes from the current state, outbox delivery claims messages with
leases, retention deletes by age) and runs under the per-shop lock, so a duplicate either waits
its turn as a no-op or is recorded ``skipped``. Redis redelivers an unacknowledged task after
``visibility_timeout`` (1 hour), longer than the task hard time limit, so a long job is not
handed to a second worker while it still runs.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

from celery import Celery

from connector.config import Settings
from jobs.registry import JobContext, get_job
from jobs.runner import due_shop_ids, run_job_for_shop

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "backorders"
CONTEXT_ENV = "BACKORDERS_JOB_CONTEXT"
QUEUE_ENV = "CELERY_QUEUE"
RUN_FOR_SHOP = "backorders.run_job_for_shop"
FAN_OUT = "backorders.fan_out"

ContextFactory = Callable[[], JobContext]
_factory: ContextFactory | None = None
_context: tuple[int, JobContext] | None = None
# Set by configure(): Celery evaluates the lazy defaults below the first time it reads its
# configuration (e.g. when routing a task), even after conf.update(); without this they would
# call load_settings() and fail in a process whose settings did not come from the environment.
_configured: dict[str, Any] | None = None


def _config() -> dict[str, Any]:
    if _configured is not None:
        return _configured
    from connector.config import load_settings

    settings = load_settings()
    return celery_config(settings.celery_broker_url, os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE)


def celery_config(broker_url: str, queue: str = DEFAULT_QUEUE) -> dict[str, Any]:
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": 3600},
        "task_default_queue": queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_soft_time_limit": 15 * 60,
        "task_time_limit": 20 * 60,
        # One task at a time per process: a prefetched task would wait behind a slow shop.
        "worker_prefetch_multiplier": 1,
        "timezone": "UTC",
        "enable_utc": True,
    }


app = Celery("backorders", set_as_current=False)
app.add_defaults(_config)


def configure(settings: Settings, queue: str | None = None) -> Celery:
    """Configure the app from already-loaded settings (composition roots): these win over the
    lazy defaults, which then never read the environment."""
    global _configured
    _configured = celery_config(settings.celery_broker_url, queue or os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE)
    app.conf.update(_configured)
    return app


def set_context_factory(factory: ContextFactory | None) -> None:
    """Tell this process how to build its JobContext (call before the worker starts)."""
    global _factory, _context
    _factory, _context = factory, None


def _load_factory() -> ContextFactory:
    if _factory is not None:
        return _factory
    ref = os.environ.get(CONTEXT_ENV, "")
    if ":" not in ref:
        raise RuntimeError(
            f"no JobContext factory: call jobs.celery_app.set_context_factory() or set {CONTEXT_ENV}=module:function"
        )
    module, _, attr = ref.partition(":")
    factory: ContextFactory = getattr(importlib.import_module(module), attr)
    return factory


def job_context() -> JobContext:
    """This process's JobContext, built on first use (once per process, so once per pool child)."""
    global _context
    if _context is None or _context[0] != os.getpid():
        _context = (os.getpid(), _load_factory()())
    return _context[1]


@app.task(name=RUN_FOR_SHOP, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job_for_shop_task(job_name: str, shop_id: int) -> dict[str, Any]:
    """One job for one shop, recorded in job_runs; a job failure is recorded, not retried here
    (the next scheduled run is the retry, and the outbox has its own backoff)."""
    ctx = job_context()
    outcome = run_job_for_shop(ctx, job_name, shop_id, ctx.clock())
    return {"shop_id": shop_id, "status": outcome.status}


@app.task(name=FAN_OUT, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def fan_out_task(self: Any, job_name: str, scheduled: bool = False) -> int:
    """Enqueue ``job_name`` for every installed, due shop (on the queue this task came from).

    ``scheduled`` (what the clock sends) also applies the per-shop schedules (``jobs.runner``).
    """
    get_job(job_name)
    ctx = job_context()
    queue = (self.request.delivery_info or {}).get("routing_key") or None
    shop_ids = due_shop_ids(ctx, job_name, ctx.clock(), scheduled=scheduled)
    for shop_id in shop_ids:
        run_job_for_shop_task.apply_async((job_name, shop_id), queue=queue)
    return len(shop_ids)


def enqueue_job(job_name: str, *, queue: str | None = None, scheduled: bool = False) -> None:
    """Ask the workers to run ``job_name`` for every due shop (the clock sends ``scheduled=True``)."""
    get_job(job_name)
    app.send_task(FAN_OUT, args=(job_name,), kwargs={"scheduled": True} if scheduled else {}, queue=queue)


def enqueue_job_for_shop(job_name: str, shop_id: int, *, queue: str | None = None) -> None:
    """Ask the workers to run ``job_name`` for one shop (e.g. right after an install)."""
    get_job(job_name)
    app.send_task(RUN_FOR_SHOP, args=(job_name, shop_id), queue=queue)


def worker_main(factory: ContextFactory, argv: list[str] | None = None, settings: Settings | None = None) -> int:
    """Run a Celery worker in the foreground (``backorders worker [celery worker options]``).

    ``factory`` builds the JobContext in each pool process; ``argv`` are ``celery worker``
    options (``-c 4``, ``-Q backorders``, ``-l INFO``).
    """
    if settings is not None:
        configure(settings)
    set_context_factory(factory)
    app.worker_main(["worker", *(argv or [])])
    return 0
