"""Who gets units, and what the units stock cannot cover wait for.

Pure rules on plain values. The services load the waiting lines of one SKU, ask these
functions how to hand units out, and persist the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class LineKind(StrEnum):
    """What a line's uncovered units wait for. Decided when the line first falls short."""

    STOCK = "stock"  # covered from stock, nothing waits
    BACKORDER = "backorder"  # ships as soon as goods arrive
    PREORDER = "preorder"  # ships on or after the variant's release date
    DROPSHIP = "dropship"  # the supplier ships to the customer directly
    OVERSOLD = "oversold"  # the variant allows no backorders, yet the store sold past zero
    UNTRACKED = "untracked"  # custom item or untracked inventory: outside the engine


WAITING_KINDS = (LineKind.BACKORDER, LineKind.PREORDER, LineKind.OVERSOLD)
"""Kinds whose units are bought on purchase orders (dropship units go in forwards instead)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A line that wants units: its waiting count and its place in the queue."""

    line_id: int
    priority: int
    placed_at: datetime
    wanted: int


def queue_key(priority: int, placed_at: datetime, line_id: int) -> tuple[int, datetime, int]:
    """Merchant priority first (higher goes first), then the oldest order, then the line id
    so that equal timestamps still give a stable, repeatable order."""
    return (-priority, placed_at, line_id)


def in_queue_order(claims: Iterable[Claim]) -> list[Claim]:
    return sorted(claims, key=lambda c: queue_key(c.priority, c.placed_at, c.line_id))


def distribute(units: int, claims: Iterable[Claim]) -> tuple[list[tuple[int, int]], int]:
    """Hand ``units`` to ``claims`` in queue order; returns ``[(line_id, n)]`` and the rest."""
    if units < 0:
        raise ValueError("units must be >= 0")
    given: list[tuple[int, int]] = []
    for claim in in_queue_order(claims):
        if units == 0:
            break
        n = min(units, claim.wanted)
        if n > 0:
            given.append((claim.line_id, n))
            units -= n
    return given, units


def split_new_demand(quantity: int, free_stock: int) -> tuple[int, int]:
    """How much of a new demand stock covers now, and how much falls short."""
    if quantity < 0:
        raise ValueError("quantity must be >= 0")
    covered = min(quantity, max(free_stock, 0))
    return covered, quantity - covered


def shortfall_kind(
    *, allows_backorder: bool, dropship: bool, release_date: date | None, today: date, tracked: bool = True
) -> LineKind:
    """What units stock cannot cover wait for, in order of precedence."""
    if not tracked:
        return LineKind.UNTRACKED
    if dropship:
        return LineKind.DROPSHIP
    if release_date is not None and release_date > today:
        return LineKind.PREORDER
    if allows_backorder:
        return LineKind.BACKORDER
    return LineKind.OVERSOLD


def take_back(units: int, backordered: int, allocated: int) -> tuple[int, int]:
    """A cancellation of ``units`` takes waiting units first (the customer gives up the part
    that has not arrived), then allocated ones. Returns ``(from_backordered, from_allocated)``."""
    if units > backordered + allocated:
        raise ValueError("cannot cancel more units than the line still holds")
    from_backordered = min(units, backordered)
    return from_backordered, units - from_backordered


def release_pegs(excess: int, pegs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Which pegs to shrink when a line waits for ``excess`` fewer units than it has pegged.

    ``pegs`` are ``(peg_id, units)`` newest PO first: the units due latest are released first,
    so the line keeps its earliest arrival. Returns ``[(peg_id, units_released)]``.
    """
    released: list[tuple[int, int]] = []
    for peg_id, units in pegs:
        if excess <= 0:
            break
        n = min(units, excess)
        released.append((peg_id, n))
        excess -= n
    return released
