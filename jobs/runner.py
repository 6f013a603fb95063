"""Run a job for one shop or for every due shop, recording each run in ``job_runs``.

Per shop: a ``JobRun`` row is committed as ``running`` before the work starts (so a run that
dies is visible), the per-shop lock of the job is taken without waiting (held elsewhere: the run
is ``skipped``), the job runs, and the row becomes ``ok`` / ``failed`` / ``skipped`` with a detail.
A failure in one shop is logged with its context and recorded; the other shops still run.
The fan-out over all shops records one more row with ``shop_id`` NULL summarising the pass.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from connector.db.models import JobRun, Shop
from connector.db.uow import UnitOfWork
from connector.services.locks import shop_lock
from jobs.registry import JobContext, JobNotConfigured, get_job

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


def due_shop_ids(ctx: JobContext, job_name: str, now: datetime) -> list[int]:
    """Installed shops for which ``job_name`` is due at ``now``."""
    spec = get_job(job_name)
    with UnitOfWork(ctx.db, readonly=True) as uow:
        shop_ids = list(uow.session.scalars(select(Shop.id).where(Shop.status == "installed").order_by(Shop.id)))
        if spec.min_interval is None or not shop_ids:
            return shop_ids
        recent = set(
            uow.session.scalars(
                select(JobRun.shop_id)
                .where(
                    JobRun.job == job_name,
                    JobRun.status == "ok",
                    JobRun.started_at > now - spec.min_interval,
                    JobRun.shop_id.is_not(None),
                )
                .group_by(JobRun.shop_id)
                .having(func.count() > 0)
            )
        )
    return [s for s in shop_ids if s not in recent]


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


def run_job_for_all_shops(ctx: JobContext, job_name: str, now: datetime) -> FleetRunReport:
    """Run ``job_name`` for every installed, due shop, one after the other."""
    get_job(job_name)
    report = FleetRunReport(job_name)
    fleet_run = _start_run(ctx, job_name, None, now)
    try:
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
