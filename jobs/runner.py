"""Run a job for one shop or for every due shop, recording each run in ``job_runs``.

Per shop: a ``JobRun`` row is committed as ``running`` before the work starts (so a run that
dies is visible), the per-shop lock of the job is taken without waiting (held elsewhere: the run
is ``skipped``), the job runs, and the row becomes ``ok`` / ``failed`` / ``skipped`` with a detail.
A failure in one shop is logged with its context and recorded; the other shops still run.
The fan-out over all shops records one more row with ``shop_id`` NULL summarising the pass.

A *scheduled* pass (the embedded scheduler, the Celery fan-out) runs only the shops that are due:
past the job's ``min_interval`` and, for the jobs each shop times (``jobs.schedules``), due on
that shop's schedule. A pass by hand (``backorders run-job``, the demo, tests) ignores the
per-shop schedules: whoever asks for a consolidation now gets one now.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from connector.db.models import JobRun, Shop
from connector.db.uow import UnitOfWork
from connector.services.locks import shop_lock
from jobs.registry import JobContext, JobNotConfigured, get_job
from jobs.schedules import LOOKBACK, is_due, shop_schedule, shop_zone

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShopRunOutcome:
    shop_id: int
    status: str  # ok | failed | skipped
    detail: dict[str, Any]
    job_run_id: int | None


@dataclass
class FleetRunReport:
    job: str
    ok: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"job": self.job, "ok": self.ok, "failed": self.failed, "skipped": self.skipped}


def _start_run(ctx: JobContext, job: str, shop_id: int | None, now: datetime) -> int:
    with UnitOfWork(ctx.db) as uow:
        run = uow.add(JobRun(shop_id=shop_id, job=job, started_at=now, status="running"))
        uow.commit()
        return int(run.id)


def _finish_run(ctx: JobContext, run_id: int, status: str, detail: dict[str, Any]) -> None:
    with UnitOfWork(ctx.db) as uow:
        run = uow.session.get(JobRun, run_id)
        if run is None:  # pruned meanwhile (abandoned-run cleanup); nothing to record on
            return
        run.status = status
        run.detail = detail
        run.finished_at = ctx.clock()
        uow.commit()


def due_shop_ids(ctx: JobContext, job_name: str, now: datetime, *, scheduled: bool = False) -> list[int]:
    """Installed shops for which ``job_name`` is due at ``now`` (``scheduled``: see the module docstring).

    Two queries whatever the number of shops: the shops (with their settings and time zone when
    the job is timed per shop) and the last successful and failed starts per shop.
    """
    spec = get_job(job_name)
    timed = scheduled and spec.per_shop_schedule
    with UnitOfWork(ctx.db, readonly=True) as uow:
        columns = (Shop.id, Shop.timezone, Shop.settings) if timed else (Shop.id,)
        shops = uow.session.execute(select(*columns).where(Shop.status == "installed").order_by(Shop.id)).all()
        if not shops or (spec.min_interval is None and not timed):
            return [row.id for row in shops]
        lookback = max(LOOKBACK if timed else timedelta(0), spec.min_interval or timedelta(0))
        # Per shop, the last successful start and the last failed one (for the retry pace).
        last: dict[int, tuple[datetime | None, datetime | None]] = {
            shop_id: (ok, failed)
            for shop_id, ok, failed in uow.session.execute(
                select(
                    JobRun.shop_id,
                    func.max(case((JobRun.status == "ok", JobRun.started_at))),
                    func.max(case((JobRun.status == "failed", JobRun.started_at))),
                )
                .where(
                    JobRun.job == job_name,
                    JobRun.status.in_(("ok", "failed")),
                    JobRun.started_at > now - lookback,
                    JobRun.shop_id.is_not(None),
                )
                .group_by(JobRun.shop_id)
            ).tuples()
            if shop_id is not None
        }
    due = []
    for row in shops:
        last_ok, last_failed = last.get(row.id, (None, None))
        if spec.min_interval is not None and last_ok is not None and last_ok > now - spec.min_interval:
            continue
        if timed and not is_due(shop_schedule(row.settings, job_name), last_ok, now, shop_zone(row.timezone),
                                last_failed_started_at=last_failed):
            continue
        due.append(row.id)
    return due


def run_job_for_shop(ctx: JobContext, job_name: str, shop_id: int, now: datetime) -> ShopRunOutcome:
    """Run one job for one shop under its lock; never raises for a job failure (it is recorded)."""
    spec = get_job(job_name)
    run_id = _start_run(ctx, job_name, shop_id, now)
    started = time.monotonic()
    status = "ok"
    detail: dict[str, Any] = {}
    try:
        with shop_lock(ctx.db, spec.lock, shop_id) as held:
            if not held:
                status, detail = "skipped", {"reason": "locked", "lock": spec.lock}
            else:
                detail = dict(spec.fn(ctx, shop_id, now))
    except JobNotConfigured as exc:
        status, detail = "skipped", {"reason": "not_configured", "error": exc.message}
    except Exception as exc:
        status = "failed"
        detail = {"error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-4000:]}
        log.exception("job %s failed for shop %s (run %s)", job_name, shop_id, run_id)
    detail["seconds"] = round(time.monotonic() - started, 3)
    try:
        _finish_run(ctx, run_id, status, detail)
    except Exception:  # the database went away: the run stays "running" and retention closes it
        log.exception("could not record the end of job %s for shop %s (run %s)", job_name, shop_id, run_id)
    return ShopRunOutcome(shop_id, status, detail, run_id)


def run_job_for_all_shops(ctx: JobContext, job_name: str, now: datetime, *, scheduled: bool = False) -> FleetRunReport:
    """Run ``job_name`` for every installed, due shop, one after the other.

    ``scheduled`` applies the per-shop schedules (see the module docstring). A scheduled pass
    that finds no shop due records nothing: with a one-minute tick, empty passes would otherwise
    be most rows of ``job_runs``.
    """
    spec = get_job(job_name)
    report = FleetRunReport(job_name)
    shop_ids: list[int] | None = None
    if scheduled and spec.per_shop_schedule:
        shop_ids = due_shop_ids(ctx, job_name, now, scheduled=True)
        if not shop_ids:
            return report
    fleet_run = _start_run(ctx, job_name, None, now)
    try:
        if shop_ids is None:
            shop_ids = due_shop_ids(ctx, job_name, now)
        for shop_id in shop_ids:
            outcome = run_job_for_shop(ctx, job_name, shop_id, now)
            getattr(report, outcome.status).append(shop_id)
    except Exception as exc:
        log.exception("job %s: fan-out over shops failed", job_name)
        _finish_run(ctx, fleet_run, "failed", {**report.as_dict(), "error": f"{type(exc).__name__}: {exc}"})
        raise
    _finish_run(ctx, fleet_run, "failed" if report.failed else "ok", report.as_dict())
    return report
