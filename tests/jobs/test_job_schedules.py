"""Per-shop schedules: when a timed job is due, and which shops a scheduled pass runs."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jobs_support import T0, RecordingDispatcher, add_shop, fetch
from sqlalchemy import select

from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import JobRun
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from jobs.registry import JOBS, JobContext
from jobs.runner import due_shop_ids, run_job_for_all_shops
from jobs.schedules import (
    DEFAULTS,
    Schedule,
    is_due,
    parse_schedule,
    parse_schedules,
    parse_timezone,
    shop_schedule,
)

PARIS = ZoneInfo("Europe/Paris")
SIX = Schedule(daily_at=time(6, 0))


def paris(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=PARIS).astimezone(UTC)


# --- is_due, pure ------------------------------------------------------------------------------


def test_every_n_minutes_is_due_once_n_minutes_have_passed_since_the_last_success() -> None:
    hourly = Schedule(every_minutes=60)
    assert is_due(hourly, None, T0, UTC)  # never ran: due at once
    assert not is_due(hourly, T0, T0 + timedelta(minutes=45), UTC)
    assert is_due(hourly, T0, T0 + timedelta(minutes=60), UTC)
    # The run started a few seconds after its tick: the next tick still counts as an hour later.
    assert is_due(hourly, T0 + timedelta(seconds=8), T0 + timedelta(minutes=60), UTC)


def test_daily_at_six_paris_time_is_due_from_six_until_a_run_started_after_six() -> None:
    yesterday = paris(2026, 3, 1, 6, 1)
    assert not is_due(SIX, yesterday, paris(2026, 3, 2, 5, 59), PARIS)
    assert is_due(SIX, yesterday, paris(2026, 3, 2, 6, 0), PARIS)
    assert is_due(SIX, paris(2026, 3, 2, 5, 0), paris(2026, 3, 2, 6, 30), PARIS)  # a 05:00 run by hand
    assert not is_due(SIX, paris(2026, 3, 2, 6, 0), paris(2026, 3, 2, 23, 0), PARIS)
    # The scheduler was down all of yesterday: the missed day is made up once, at once.
    assert is_due(SIX, paris(2026, 2, 28, 6, 0), paris(2026, 3, 2, 3, 0), PARIS)


def test_daily_at_six_stays_at_six_local_across_the_spring_and_autumn_clock_changes() -> None:
    # 29 March 2026: Paris goes from UTC+1 to UTC+2 at 02:00; 06:00 local is 04:00 UTC that day.
    assert paris(2026, 3, 29, 6) == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)
    before = paris(2026, 3, 28, 6, 0)
    assert not is_due(SIX, before, datetime(2026, 3, 29, 3, 59, tzinfo=UTC), PARIS)
    assert is_due(SIX, before, datetime(2026, 3, 29, 4, 0, tzinfo=UTC), PARIS)
    # 25 October 2026: back to UTC+1; 06:00 local is 05:00 UTC, not 04:00 (24 hours after the last).
    last = datetime(2026, 10, 24, 4, 0, tzinfo=UTC)  # 06:00 CEST
    assert not is_due(SIX, last, datetime(2026, 10, 25, 4, 30, tzinfo=UTC), PARIS)
    assert is_due(SIX, last, datetime(2026, 10, 25, 5, 0, tzinfo=UTC), PARIS)


def test_a_daily_time_skipped_by_the_spring_change_runs_just_after_the_gap() -> None:
    half_two = Schedule(daily_at=time(2, 30))  # does not exist in Paris on 29 March 2026
    last = paris(2026, 3, 28, 2, 30)
    assert not is_due(half_two, last, datetime(2026, 3, 29, 1, 0, tzinfo=UTC), PARIS)  # 03:00 CEST
    assert is_due(half_two, last, datetime(2026, 3, 29, 1, 30, tzinfo=UTC), PARIS)  # 03:30 CEST


def test_a_failed_run_is_retried_after_a_pause_not_at_every_tick() -> None:
    daily = SIX
    failed = paris(2026, 3, 2, 6, 0)
    ok = paris(2026, 3, 1, 6, 0)
    assert not is_due(daily, ok, failed + timedelta(minutes=5), PARIS, last_failed_started_at=failed)
    assert is_due(daily, ok, failed + timedelta(minutes=15), PARIS, last_failed_started_at=failed)
    every_ten = Schedule(every_minutes=10)
    assert is_due(every_ten, None, T0 + timedelta(minutes=10), UTC, last_failed_started_at=T0)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"daily_at": "25:00"}, "schedules.consolidate.daily_at"),
        ({"daily_at": "6am"}, "schedules.consolidate.daily_at"),
        ({"every_minutes": -5}, "schedules.consolidate.every_minutes"),
        ({"every_minutes": 0}, "schedules.consolidate.every_minutes"),
        ({"every_minutes": "15"}, "schedules.consolidate.every_minutes"),
        ({"every_minutes": True}, "schedules.consolidate.every_minutes"),
        ({"every_minutes": 15, "daily_at": "06:00"}, "schedules.consolidate"),
        ({}, "schedules.consolidate"),
        ("daily", "schedules.consolidate"),
    ],
)
def test_bad_schedules_are_refused_naming_the_field(raw: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedule("consolidate", raw)
    assert caught.value.field == field


def test_unknown_jobs_and_time_zones_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_schedules({"retention": {"every_minutes": 60}})
    assert caught.value.field == "schedules.retention"
    with pytest.raises(ValidationError):
        parse_timezone("Mars/Olympus_Mons")
    assert parse_timezone("Europe/Paris") == PARIS
    assert parse_schedules({"consolidate": {"daily_at": "06:00"}}) == {"consolidate": SIX}


def test_a_bad_stored_schedule_falls_back_to_the_jobs_default() -> None:
    assert shop_schedule({"schedules": {"consolidate": {"daily_at": "25:00"}}}, "consolidate") == DEFAULTS["consolidate"]
    assert shop_schedule({}, "pull_store") == Schedule(every_minutes=60)
    assert shop_schedule({"schedules": {"pull_store": {"every_minutes": 10}}}, "pull_store") == Schedule(every_minutes=10)


# --- the runner, on a real database ------------------------------------------------------------


def _ctx(db: Database, **hooks: Any) -> JobContext:
    dispatcher = RecordingDispatcher()
    return JobContext(db=db, settings=Settings(database_url=db.url), dispatcher_factory=lambda _: dispatcher,
                      hooks=hooks, clock=lambda: T0)


def _set_schedule(db: Database, shop_id: int, schedules: dict[str, Any], timezone: str = "UTC") -> None:
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        shop.settings = {**(shop.settings or {}), "schedules": schedules}
        shop.timezone = timezone
        uow.commit()


def test_timed_jobs_tick_every_minute_and_the_others_keep_their_interval() -> None:
    assert {name for name, spec in JOBS.items() if spec.per_shop_schedule} == {"pull_store", "consolidate",
                                                                               "dropship_check"}
    assert JOBS["consolidate"].interval == JOBS["pull_store"].interval == timedelta(minutes=1)
    assert JOBS["retention"].interval == timedelta(days=1)


def test_two_shops_pull_on_their_own_schedules(db: Database) -> None:
    often, daily = add_shop(db, "often"), add_shop(db, "daily")
    _set_schedule(db, often, {"pull_store": {"every_minutes": 10}})
    _set_schedule(db, daily, {"pull_store": {"daily_at": "06:00"}}, timezone="Europe/Paris")
    pulled: list[tuple[int, datetime]] = []

    def pull(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
        pulled.append((shop_id, now))
        return {}

    ctx = _ctx(db, pull_store=pull)
    start = paris(2026, 3, 2, 5, 0)
    minute = start
    while minute < paris(2026, 3, 2, 7, 0):  # two hours of one-minute ticks
        run_job_for_all_shops(ctx, "pull_store", minute, scheduled=True)
        minute += timedelta(minutes=1)

    assert [now for shop, now in pulled if shop == daily] == [start, paris(2026, 3, 2, 6, 0)]
    assert [now for shop, now in pulled if shop == often] == [start + timedelta(minutes=10 * i) for i in range(12)]
    # Only passes that ran a shop left a row: 12 (the daily shop's two fell on the same ticks), not 120.
    fleet = fetch(db, select(JobRun).where(JobRun.job == "pull_store", JobRun.shop_id.is_(None)))
    assert len(fleet) == 12


def test_a_pass_by_hand_ignores_the_schedules_and_a_scheduled_one_honours_them(db: Database) -> None:
    a, b = add_shop(db, "a"), add_shop(db, "b")
    _set_schedule(db, a, {"consolidate": {"every_minutes": 240}})
    ctx = _ctx(db)
    assert run_job_for_all_shops(ctx, "consolidate", T0).ok == [a, b]
    assert run_job_for_all_shops(ctx, "consolidate", T0 + timedelta(minutes=1)).ok == [a, b]  # by hand
    # Scheduled: b runs on the default (every 15 minutes), a every 4 hours.
    assert due_shop_ids(ctx, "consolidate", T0 + timedelta(minutes=16), scheduled=True) == [b]
    assert due_shop_ids(ctx, "consolidate", T0 + timedelta(minutes=16)) == [a, b]  # the by-hand view
    assert run_job_for_all_shops(ctx, "consolidate", T0 + timedelta(minutes=16), scheduled=True).ok == [b]
    assert due_shop_ids(ctx, "consolidate", T0 + timedelta(hours=4, minutes=1), scheduled=True) == [a, b]


def test_a_failing_store_is_retried_every_quarter_hour_not_every_minute(db: Database) -> None:
    shop = add_shop(db, "down")
    _set_schedule(db, shop, {"pull_store": {"every_minutes": 60}})
    tries: list[datetime] = []

    def unreachable(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
        tries.append(now)
        raise ConnectionError("store unreachable")

    ctx = _ctx(db, pull_store=unreachable)
    for minute in range(46):
        run_job_for_all_shops(ctx, "pull_store", T0 + timedelta(minutes=minute), scheduled=True)
    assert tries == [T0 + timedelta(minutes=m) for m in (0, 15, 30, 45)]
    statuses = {r.status for r in fetch(db, select(JobRun).where(JobRun.shop_id == shop))}
    assert statuses == {"failed"}


def test_an_uninstalled_shop_and_a_bad_time_zone_do_not_stop_the_others(db: Database) -> None:
    good, odd = add_shop(db, "good"), add_shop(db, "odd")
    add_shop(db, "gone", status="uninstalled")
    _set_schedule(db, odd, {"consolidate": {"daily_at": "06:00"}}, timezone="Not/AZone")  # read as UTC
    assert due_shop_ids(_ctx(db), "consolidate", T0, scheduled=True) == [good, odd]
