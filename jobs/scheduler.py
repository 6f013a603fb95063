"""The embedded scheduler: APScheduler 3.11 in the web process, one per machine.

``start_embedded_scheduler(ctx)`` is called by ``backorders serve`` (and the WSGI app when
``JOB_BACKEND=embedded``). When a web server forks several workers, each calls it; an ``flock``
on ``settings.scheduler_lock_path`` lets exactly one of them schedule, the others stand by and
take over within ``retry_seconds`` if the leader dies. Do not start it before forking
(``gunicorn --preload``): threads do not survive ``fork``.

Schedules are kept in a ``SQLAlchemyJobStore`` (table ``apscheduler_jobs``) on the same
database, so a restart keeps each job's next run time instead of pushing every job one interval
further (a process that restarts often would otherwise starve the daily jobs). APScheduler 3.11's
store uses ``select()`` and ``engine.begin()`` only, which SQLAlchemy 2.0 supports; it is given
our engine so SQLite gets the same WAL / busy-timeout / BEGIN IMMEDIATE settings. Each job has an
explicit id, ``max_instances=1`` (a slow run is never overlapped by the next), ``coalesce=True``
(runs missed while down collapse into one) and a ``misfire_grace_time`` of one interval.

Stored jobs reference a module-level function by name with the job name as the only argument
(a JobContext cannot be pickled); the function finds the process's context in ``_CONTEXT``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from jobs.leader import FileLeaderLock, LeaderElection
from jobs.registry import JobContext, default_intervals, get_job
from jobs.runner import run_job_for_all_shops

log = logging.getLogger(__name__)

EMBEDDED_TABLE = "apscheduler_jobs"
FIRST_RUN_DELAY = timedelta(seconds=10)
_CONTEXT: JobContext | None = None

Intervals = Mapping[str, timedelta | float]


def run_scheduled_job(job_name: str) -> dict[str, Any]:
    """What the stored schedule calls: one pass of ``job_name`` over all due shops (per-shop
    schedules applied: see ``jobs.runner``)."""
    if _CONTEXT is None:
        raise RuntimeError("embedded scheduler fired without a JobContext (start_embedded_scheduler not called)")
    return run_job_for_all_shops(_CONTEXT, job_name, _CONTEXT.clock(), scheduled=True).as_dict()


def as_timedelta(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


def build_scheduler(engine: Engine, tablename: str, *, max_workers: int = 4) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=tablename)},
        executors={"default": ThreadPoolExecutor(max_workers)},
        timezone=UTC,
    )


def sync_schedule(scheduler: BackgroundScheduler, func_ref: str, intervals: Intervals, now: datetime) -> None:
    """Make the stored schedule match ``intervals``, keeping the next run of unchanged jobs.

    The scheduler must be started (paused is fine) so its job store is open.
    """
    wanted = {name: as_timedelta(v) for name, v in intervals.items()}
    for name in wanted:
        get_job(name)  # refuse unknown names before touching the store
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("schedule: removing stored job %s (no longer scheduled)", job.id)
            job.remove()
    for name, interval in wanted.items():
        grace = max(1, int(interval.total_seconds()))
        options: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": grace}
        existing = scheduler.get_job(name)
        same = (
            existing is not None
            and isinstance(existing.trigger, IntervalTrigger)
            and existing.trigger.interval == interval
            and existing.func_ref == func_ref
            and tuple(existing.args) == (name,)
        )
        if same:
            assert existing is not None
            existing.modify(**options)
            continue
        scheduler.add_job(
            func_ref,
            trigger=IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
            args=(name,),
            id=name,
            name=name,
            replace_existing=True,
            next_run_time=now + min(interval, FIRST_RUN_DELAY),
            **options,
        )


def start_stored_scheduler(
    engine: Engine, tablename: str, func_ref: str, intervals: Intervals, *, max_workers: int = 4
) -> BackgroundScheduler:
    scheduler = build_scheduler(engine, tablename, max_workers=max_workers)
    scheduler.start(paused=True)
    try:
        sync_schedule(scheduler, func_ref, intervals, datetime.now(UTC))
        scheduler.resume()
    except BaseException:
        scheduler.shutdown(wait=False)
        raise
    return scheduler


@dataclass
class SchedulerHandle:
    """The embedded scheduler of this process: leading (scheduling) or standing by."""

    intervals: dict[str, timedelta] = field(default_factory=dict)
    election: LeaderElection | None = None
    scheduler: BackgroundScheduler | None = None

    @property
    def leader(self) -> bool:
        return self.election is not None and self.election.leading and self.scheduler is not None

    def shutdown(self) -> None:
        """Stop scheduling (waiting for running jobs) and release the lock."""
        global _CONTEXT
        if self.election is not None:
            self.election.stop()
        _CONTEXT = None


def start_embedded_scheduler(
    ctx: JobContext,
    intervals: Intervals | None = None,
    *,
    retry_seconds: float = 30.0,
    max_workers: int = 4,
) -> SchedulerHandle:
    """Start scheduling ``intervals`` (default: every available job) if this process wins the lock.

    Returns at once either way; ``handle.leader`` tells which. A standby retries the lock every
    ``retry_seconds``. Call ``handle.shutdown()`` on exit.
    """
    global _CONTEXT
    wanted = {name: as_timedelta(v) for name, v in (intervals or default_intervals(ctx)).items()}
    _CONTEXT = ctx
    handle = SchedulerHandle(intervals=wanted)

    def elected() -> None:
        handle.scheduler = start_stored_scheduler(
            ctx.db.engine, EMBEDDED_TABLE, f"{__name__}:run_scheduled_job", wanted, max_workers=max_workers
        )
        log.info("embedded scheduler running: %s", ", ".join(f"{k} every {v}" for k, v in wanted.items()))

    def deposed() -> None:
        scheduler, handle.scheduler = handle.scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    handle.election = LeaderElection(
        FileLeaderLock(ctx.settings.scheduler_lock_path), elected, deposed, poll_seconds=retry_seconds,
        name="embedded-scheduler",
    )
    handle.election.start()
    if not handle.leader:
        log.info("embedded scheduler standing by: %s is held by another process", ctx.settings.scheduler_lock_path)
    return handle


def main(ctx: JobContext, intervals: Intervals | None = None) -> int:
    """Run the scheduler in the foreground until interrupted (``backorders scheduler``)."""
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    handle = start_embedded_scheduler(ctx, intervals)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        handle.shutdown()
    return 0
