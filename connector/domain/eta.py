"""Estimated dates: when each part of a line can ship, and what the customer is promised."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True, slots=True)
class ToleranceBand:
    """Lines whose unit value is at most ``max_unit_value_cents`` get ``days`` of slack in the
    promise (``None`` means no upper bound). Cheap items tolerate less wait than big ones."""

    max_unit_value_cents: int | None
    days: int


def tolerance_days(unit_value_cents: int, bands: Sequence[ToleranceBand], default: int = 0) -> int:
    for band in sorted(bands, key=lambda b: (b.max_unit_value_cents is None, b.max_unit_value_cents or 0)):
        if band.max_unit_value_cents is None or unit_value_cents <= band.max_unit_value_cents:
            return band.days
    return default


def covered_eta(covered_at: datetime, handling_days: int) -> date:
    return covered_at.date() + timedelta(days=handling_days)


def po_eta(expected_date: date, handling_days: int) -> date:
    return expected_date + timedelta(days=handling_days)


def unpegged_eta(today: date, lead_time_days: int, handling_days: int) -> date:
    return today + timedelta(days=lead_time_days + handling_days)


def line_eta(parts: Iterable[date], release_date: date | None = None) -> date | None:
    """The line ships when its last part can; a preorder never before its release date."""
    dates = list(parts)
    if not dates:
        return None
    eta = max(dates)
    if release_date is not None and release_date > eta:
        eta = release_date
    return eta


def promise(eta: date, tolerance: int) -> date:
    return eta + timedelta(days=tolerance)


def is_delay(new_eta: date | None, told: date | None, tolerance: int) -> bool:
    """A delay is news only when the new date is past what the customer was told (a promise
    that already includes the shop's tolerance), so a slip inside the tolerance stays quiet. An
    earlier date is good news and never a delay."""
    if new_eta is None or told is None:
        return False
    return new_eta > told
