"""Per-shop schedules for the jobs a merchant times: store pulls, consolidation, dropship checks.

A shop keeps them in ``Shop.settings["schedules"]``, one entry per job, each either
``{"every_minutes": N}`` or ``{"daily_at": "HH:MM"}`` (a wall-clock time in ``Shop.timezone``,
an IANA name). A job the shop has not timed, or timed with a value that no longer parses, runs
on the job's default. The scheduler ticks these jobs every minute (see ``jobs.registry``) and
the runner asks :func:`is_due` per shop, so one fleet can pull one store every 10 minutes and
another daily at 06:00 its time.

Pure: no database, no clock; ``now`` and the last successful start are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any

from connector.errors import ValidationError
from connector.services.settings_schema import (
    MAX_EVERY_MINUTES,
    SCHEDULE_DEFAULTS,
    Schedule,
    parse_schedule,
    parse_schedules,
    parse_timezone,
)

# The model and its validation live with the other shop settings (the settings page and the API
# check them before saving; ``connector`` does not import ``jobs``); this module adds time.
DEFAULTS = SCHEDULE_DEFAULTS
SCHEDULED_JOBS = tuple(DEFAULTS)
# A run starts a little after its tick (the fan-out goes shop by shop), so "60 minutes after the
# last start" can land a few seconds after the tick that should have run it, and the job would
# slip a whole tick each period. Half a tick of slack keeps "every 60 minutes" at 60, not 61.
TICK_SLACK = timedelta(seconds=30)
# How far back the runner looks for the last successful run: longer than the longest interval
# and than one day (daily_at), so an older run counts as "never" (due), which is what it means.
LOOKBACK = timedelta(minutes=MAX_EVERY_MINUTES) + timedelta(days=1)
# After a failed run a timed job is retried at this pace (or its own, if shorter) rather than at
# every one-minute tick: a store that is down must not be asked sixty times an hour.
RETRY_AFTER_FAILURE = timedelta(minutes=15)

__all__ = [
    "DEFAULTS", "LOOKBACK", "RETRY_AFTER_FAILURE", "SCHEDULED_JOBS", "TICK_SLACK", "Schedule", "is_due",
    "latest_daily_slot", "parse_schedule", "parse_schedules", "parse_timezone", "shop_schedule", "shop_zone",
]


def shop_schedule(settings: Mapping[str, Any] | None, job: str) -> Schedule:
    """What the runner uses: the shop's schedule for ``job``, else the job's default.

    Lenient on purpose: settings are validated when saved, but a value written by an older
    version must not stop the job for that shop; it runs on the default instead.
    """
    raw = ((settings or {}).get("schedules") or {})
    try:
        return parse_schedule(job, raw[job]) if isinstance(raw, Mapping) and job in raw else DEFAULTS[job]
    except ValidationError:
        return DEFAULTS[job]


def shop_zone(name: str | None) -> tzinfo:
    """The shop's zone for the runner; an unknown name falls back to UTC rather than stopping jobs."""
    try:
        return parse_timezone(name)
    except ValidationError:
        return UTC


def latest_daily_slot(at: time, now: datetime, tz: tzinfo) -> datetime:
    """The most recent instant, at or before ``now``, when the shop's clock showed ``at``.

    Built from the local *date* and wall time and only then converted, so it stays at 06:00 local
    across DST changes (a fixed 24-hour period would drift to 05:00 or 07:00). A wall time that
    does not exist that day (skipped in spring) resolves with the pre-change offset, i.e. just
    after the gap; one that happens twice (autumn) resolves to its first occurrence (fold=0).
    """
    local_now = now.astimezone(tz)
    for days_back in (0, 1, 2):
        day = local_now.date() - timedelta(days=days_back)
        slot = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: a slot two days back is always in the past")


def is_due(
    schedule: Schedule,
    last_ok_started_at: datetime | None,
    now: datetime,
    tz: tzinfo,
    *,
    last_failed_started_at: datetime | None = None,
) -> bool:
    """Whether a job on ``schedule`` should run at ``now`` given when its last successful run started.

    Every N minutes: due once N minutes (less half a tick) have passed since that start.
    Daily at HH:MM: due when the latest slot has passed and the last successful run started
    before it. Anchoring to the slot, not to "24 hours since the last run", means a run made by
    hand at 05:00 does not push the 06:00 run to tomorrow, a run that started late (scheduler
    down at 06:00) still counts for today, and a day missed entirely is made up once at the next
    tick, not once per missed day. A failed run does not count as done; the job is tried again
    :data:`RETRY_AFTER_FAILURE` (or its own interval, if shorter) after it.
    """
    if last_failed_started_at is not None and (last_ok_started_at is None or last_failed_started_at > last_ok_started_at):
        wait = RETRY_AFTER_FAILURE
        if schedule.every_minutes is not None:
            wait = min(wait, timedelta(minutes=schedule.every_minutes))
        if now - last_failed_started_at < wait - TICK_SLACK:
            return False
    if last_ok_started_at is None:
        return True
    if schedule.daily_at is not None:
        return last_ok_started_at < latest_daily_slot(schedule.daily_at, now, tz)
    assert schedule.every_minutes is not None
    return now - last_ok_started_at >= timedelta(minutes=schedule.every_minutes) - TICK_SLACK
