"""``backorders clock``: the one process that decides *when*; Celery workers do the work.

The clock runs APScheduler whose jobs only enqueue a fan-out task per job name. Any number of
clocks may be started (one per host, for availability); a PostgreSQL session advisory lock elects
one. The others poll the lock every ``poll_seconds`` (at most half the shortest interval, and at
most 5 s) and the first to find it free takes over: PostgreSQL drops the lock as soon as the dead
leader's connection closes, so a standby starts enqueuing within one interval. The schedule is
kept in its own ``SQLAlchemyJobStore`` table, so the new leader continues the old leader's
timetable (``coalesce`` folds runs missed during the handover into one).

Split brain is bounded, not impossible: a leader whose database session was cut learns of it at
its next ``still_held`` ping and stops, but may enqueue once more in between. That duplicate is
harmless: tasks are idempotent and run under per-shop locks.

On SQLite (embedded deployments) the clock falls back to the scheduler file lock; scaled out means
PostgreSQL.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from connector.config import Settings
from connector.db.engine import Database
from jobs.leader import LeaderElection, leader_lock_for
from jobs.registry import JOBS, get_job
from jobs.scheduler import Intervals, as_timedelta, start_stored_scheduler

log = logging.getLogger(__name__)

CLOCK_TABLE = "apscheduler_clock_jobs"
CLOCK_LOCK = "clock"

Enqueue = Callable[[str], None]
_enqueue: Enqueue | None = None


def enqueue_scheduled(job_name: str) -> None:
    """What the clock's stored schedule calls: put one fan-out task for ``job_name`` on the queue."""
    if _enqueue is None:
        raise RuntimeError("clock fired without an enqueue function (run_clock not started)")
    _enqueue(job_name)
    log.info("clock enqueued %s", job_name)


def _celery_enqueue(job_name: str) -> None:
    from jobs.celery_app import enqueue_job

    enqueue_job(job_name, scheduled=True)


def clock_intervals(hooks: Mapping[str, Any] | None = None) -> dict[str, timedelta]:
    """The default schedule; hook jobs are included only when the workers will implement them."""
    return {name: spec.interval for name, spec in JOBS.items() if not spec.hook or name in (hooks or {})}


@dataclass
class Clock:
    """A running clock: leading (scheduler running) or standing by."""

    intervals: dict[str, timedelta]
    election: LeaderElection | None = None
    scheduler: BackgroundScheduler | None = None
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def leader(self) -> bool:
        return self.election is not None and self.election.leading and self.scheduler is not None

    def stop(self) -> None:
        self.stopped.set()
        if self.election is not None:
            self.election.stop()


def start_clock(
    settings: Settings,
    db: Database,
    intervals: Intervals | None = None,
    *,
    enqueue: Enqueue | None = None,
    poll_seconds: float | None = None,
) -> Clock:
    """Join the clock election; schedule ``intervals`` while elected. Returns immediately."""
    global _enqueue
    wanted = {name: as_timedelta(v) for name, v in (intervals or clock_intervals()).items()}
    for name in wanted:
        get_job(name)
    if poll_seconds is None:
        poll_seconds = min(5.0, min(v.total_seconds() for v in wanted.values()) / 2) if wanted else 5.0
    if enqueue is None:
        from jobs.celery_app import configure

        configure(settings)
        enqueue = _celery_enqueue
    _enqueue = enqueue
    clock = Clock(intervals=wanted)

    def elected() -> None:
        clock.scheduler = start_stored_scheduler(db.engine, CLOCK_TABLE, f"{__name__}:enqueue_scheduled", wanted,
                                                 max_workers=2)
        log.info("clock is the leader: %s", ", ".join(f"{k} every {v}" for k, v in wanted.items()))

    def deposed() -> None:
        scheduler, clock.scheduler = clock.scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)

    clock.election = LeaderElection(
        leader_lock_for(db, CLOCK_LOCK, f"{settings.scheduler_lock_path}.clock"), elected, deposed,
        poll_seconds=poll_seconds, name="clock",
    )
    clock.election.start()
    if not clock.leader:
        log.info("clock standing by: another clock holds the lock (polling every %.1fs)", poll_seconds)
    return clock


def main(settings: Settings, db: Database, intervals: Intervals | None = None) -> int:
    """Run the clock in the foreground until SIGINT/SIGTERM (``backorders clock``)."""
    clock = start_clock(settings, db, intervals)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: clock.stopped.set())
    try:
        while not clock.stopped.wait(1.0):
            pass
    finally:
        clock.stop()
        db.dispose()
    return 0
