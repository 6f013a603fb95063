"""The runner: every installed, due shop runs; a failure is recorded and isolated; runs are visible."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from jobs_support import T0, RecordingDispatcher, add_message, add_shop, fetch, seed_backorders
from sqlalchemy import select

from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import JobRun, PurchaseOrder
from connector.db.uow import UnitOfWork
from connector.errors import NotFound
from connector.services.locks import shop_lock
from jobs.registry import JOBS, JobContext, default_intervals
from jobs.runner import due_shop_ids, run_job_for_all_shops, run_job_for_shop


def _ctx(db: Database, dispatcher: RecordingDispatcher | None = None, **hooks: Any) -> JobContext:
    d = dispatcher or RecordingDispatcher()
    return JobContext(db=db, settings=Settings(database_url=db.url), dispatcher_factory=lambda shop_id: d,
                      hooks=hooks, clock=lambda: T0)


def _runs(db: Database, job: str) -> list[JobRun]:
    return fetch(db, select(JobRun).where(JobRun.job == job).order_by(JobRun.id))


def test_one_shops_failure_is_recorded_and_the_others_still_run(db: Database) -> None:
    shops = [add_shop(db, f"s{i}") for i in range(3)]
    add_shop(db, "gone", status="uninstalled")
    seen: list[int] = []

    def flaky(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
        if shop_id == shops[1]:
            raise RuntimeError("store unreachable")
        seen.append(shop_id)
        return {"pulled": 1}

    report = run_job_for_all_shops(_ctx(db, pull_store=flaky), "pull_store", T0)

    assert (report.ok, report.failed, report.skipped) == ([shops[0], shops[2]], [shops[1]], [])
    assert seen == [shops[0], shops[2]]
    runs = _runs(db, "pull_store")
    by_shop = {r.shop_id: r for r in runs}
    assert by_shop[shops[1]].status == "failed" and "store unreachable" in by_shop[shops[1]].detail["error"]
    assert by_shop[shops[0]].status == "ok" and by_shop[shops[0]].detail["pulled"] == 1
    assert by_shop[shops[0]].finished_at is not None
    assert by_shop[None].status == "failed" and by_shop[None].detail["failed"] == [shops[1]]
    assert len(runs) == 4  # three shops and the fan-out; the uninstalled shop never ran


def test_consolidate_and_deliver_run_the_real_services_per_shop(db: Database) -> None:
    a, b = add_shop(db, "a"), add_shop(db, "b")
    seed_backorders(db, a, suppliers=2, orders=2)
    dispatcher = RecordingDispatcher()
    ctx = _ctx(db, dispatcher)

    assert run_job_for_all_shops(ctx, "consolidate", T0).ok == [a, b]
    assert run_job_for_all_shops(ctx, "consolidate", T0).ok == [a, b]  # idempotent
    with UnitOfWork(db, a, readonly=True) as uow:
        assert len(uow.all(select(PurchaseOrder))) == 2
    add_message(db, b, "hello")
    run_job_for_all_shops(ctx, "deliver_outbox", T0)
    delivered = {(m.shop_id, m.idempotency_key) for m in dispatcher.delivered}
    assert (b, "hello") in delivered and len({m.shop_id for m in dispatcher.delivered}) == 2
    assert run_job_for_shop(ctx, "recompute_etas", a, T0).status == "ok"
    assert run_job_for_shop(ctx, "retention", a, T0).status == "ok"


def test_a_hook_job_without_implementation_is_skipped_and_not_scheduled(db: Database) -> None:
    shop = add_shop(db, "a")
    ctx = _ctx(db)
    outcome = run_job_for_shop(ctx, "process_webhooks", shop, T0)
    assert outcome.status == "skipped" and outcome.detail["reason"] == "not_configured"
    assert "process_webhooks" not in default_intervals(ctx)
    assert {"consolidate", "recompute_etas", "deliver_outbox", "retention"} <= set(default_intervals(ctx))
    assert set(JOBS) >= {"process_webhooks", "pull_store", "dropship_check", "refresh_tokens"}


def test_unknown_job_is_refused(db: Database) -> None:
    with pytest.raises(NotFound):
        run_job_for_all_shops(_ctx(db), "nope", T0)


def test_a_shop_is_not_due_again_within_the_jobs_min_interval(db: Database) -> None:
    a, b = add_shop(db, "a"), add_shop(db, "b")
    ctx = _ctx(db)
    assert run_job_for_shop(ctx, "retention", a, T0).status == "ok"
    assert due_shop_ids(ctx, "retention", T0 + timedelta(hours=1)) == [b]
    assert due_shop_ids(ctx, "retention", T0 + timedelta(hours=21)) == [a, b]


@pytest.mark.postgres
def test_a_shop_locked_by_another_worker_is_skipped_not_waited_for(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("the lock is a no-op on SQLite")
    shop = add_shop(db, "a")
    calls: list[int] = []
    ctx = _ctx(db, pull_store=lambda c, s, n: calls.append(s) or {})
    with shop_lock(db, "engine", shop) as held:
        assert held
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.update(out=run_job_for_shop(ctx, "pull_store", shop, T0)))
        t.start()
        t.join(10)
    assert box["out"].status == "skipped" and box["out"].detail["reason"] == "locked" and calls == []
    assert run_job_for_shop(ctx, "pull_store", shop, T0).status == "ok"
