"""The jobs by name: thin per-shop functions that call one service each.

A job function is ``(ctx: JobContext, shop_id: int, now: datetime) -> dict`` and returns a
JSON-able summary that lands in ``JobRun.detail``. The same functions run inline (tests, the
embedded scheduler) and inside Celery tasks (scaled out): the runner adds the JobRun row and the
per-shop lock around them.

Jobs that need platform adapters (webhook processing, store pulls, dropship checks, token
refresh) are *hooks*: the composition root puts a callable with the job signature into
``JobContext.hooks`` under the job's name. Until it does, the job is skipped with
``not_configured`` and the scheduler does not schedule it. ``jobs`` never imports ``adapters``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.config import Settings
from connector.db.engine import Database
from connector.errors import ConnectorError, NotFound
from connector.ports import OutboxDispatcher
from connector.services import outbox, retention
from connector.services.consolidation import consolidate_backorders
from connector.services.stock import recompute_all_etas
from jobs.schedules import DEFAULTS as SHOP_SCHEDULE_DEFAULTS

JobFn = Callable[["JobContext", int, datetime], Mapping[str, Any]]
DispatcherFactory = Callable[[int], OutboxDispatcher]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobContext:
    """Everything a job needs, built by the composition root (never at import time).

    ``dispatcher_factory(shop_id)`` returns the OutboxDispatcher for a shop (storefront push,
    mail, supplier documents wired by the root); ``hooks`` holds the adapter-backed jobs;
    ``clock`` is the source of ``now`` for scheduled and queued runs.
    """

    db: Database
    settings: Settings
    dispatcher_factory: DispatcherFactory
    hooks: Mapping[str, JobFn] = field(default_factory=dict)
    clock: Callable[[], datetime] = _utcnow


class JobNotConfigured(ConnectorError):
    """A hook job whose callable the composition root did not supply."""

    code = "not_configured"


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    fn: JobFn
    # Jobs sharing a lock never run at once on one shop. Everything that rewrites order lines,
    # POs and ETAs shares "engine"; delivery and housekeeping have their own.
    lock: str
    # Default schedule (the embedded scheduler and the clock use it unless told otherwise). For a
    # job with a per-shop schedule this is only the tick at which the runner asks each shop.
    interval: timedelta
    # A shop is not due again until this long after its last successful run (None: always due).
    min_interval: timedelta | None = None
    hook: bool = False

    def available(self, ctx: JobContext) -> bool:
        return not self.hook or self.name in ctx.hooks

    @property
    def per_shop_schedule(self) -> bool:
        """Whether each shop times this job itself (``jobs.schedules``)."""
        return self.name in SHOP_SCHEDULE_DEFAULTS


def _summary(result: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return dict(result or {})


def consolidate(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    return _summary(consolidate_backorders(ctx.db, shop_id, now))


def recompute_etas(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    return _summary(recompute_all_etas(ctx.db, shop_id, now))


def deliver_outbox(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    return _summary(outbox.deliver_due(ctx.db, shop_id, ctx.dispatcher_factory(shop_id), now,
                                       max_attempts=ctx.settings.outbox_max_attempts))


def prune_history(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
    return _summary(retention.prune(ctx.db, shop_id, now))


def _hook(name: str) -> JobFn:
    # INTEGRATOR HOOK: the composition root supplies ctx.hooks[name] (an adapter-backed callable
    # with the job signature). Kept as a named module-level function so Celery and the
    # scheduler address it like any other job.
    def run_hook(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
        fn = ctx.hooks.get(name)
        if fn is None:
            raise JobNotConfigured(f"job {name!r} has no implementation in JobContext.hooks", job=name)
        return _summary(fn(ctx, shop_id, now))

    run_hook.__name__ = run_hook.__qualname__ = name
    return run_hook


process_webhooks = _hook("process_webhooks")
pull_store = _hook("pull_store")
dropship_check = _hook("dropship_check")
refresh_tokens = _hook("refresh_tokens")
thirty_day_notice = _hook("thirty_day_notice")

# Jobs that each shop times (jobs.schedules) tick every minute: a scheduled pass only runs the
# shops that are due, so the tick bounds how late "daily at 06:00" or "every 10 minutes" can be,
# not how often a shop runs. A pass with no due shop costs two queries and writes nothing.
SHOP_SCHEDULE_TICK = timedelta(minutes=1)

JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec("consolidate", consolidate, "engine", SHOP_SCHEDULE_TICK),
        JobSpec("recompute_etas", recompute_etas, "engine", timedelta(hours=6), min_interval=timedelta(hours=1)),
        JobSpec("deliver_outbox", deliver_outbox, "outbox", timedelta(minutes=1)),
        JobSpec("retention", prune_history, "retention", timedelta(days=1), min_interval=timedelta(hours=20)),
        # Hooks the integrator fills (see module docstring).
        JobSpec("process_webhooks", process_webhooks, "engine", timedelta(minutes=1), hook=True),
        JobSpec("pull_store", pull_store, "engine", SHOP_SCHEDULE_TICK, hook=True),
        JobSpec("dropship_check", dropship_check, "engine", SHOP_SCHEDULE_TICK, hook=True),
        JobSpec("refresh_tokens", refresh_tokens, "tokens", timedelta(hours=12), hook=True),
        # The US FTC mail-order rule: a line without a firm date that has waited 30 days.
        JobSpec("thirty_day_notice", thirty_day_notice, "engine", timedelta(days=1), min_interval=timedelta(hours=20),
                hook=True),
    )
}


def get_job(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise NotFound(f"no job named {name!r}; known: {', '.join(sorted(JOBS))}", job=name) from None


def default_intervals(ctx: JobContext) -> dict[str, timedelta]:
    """The schedule for the jobs this context can run (hooks only once they are supplied)."""
    return {name: spec.interval for name, spec in JOBS.items() if spec.available(ctx)}
