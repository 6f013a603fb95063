"""How backordered need becomes purchase-order quantities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.domain.allocation import Claim, in_queue_order


def pack_quantity(units: int, pack_size: int, moq: int) -> int:
    """The smallest multiple of ``pack_size`` that is at least ``units`` and at least ``moq``.

    Zero units need no line at all, whatever the MOQ.
    """
    if pack_size < 1:
        raise ValueError("pack_size must be >= 1")
    if units <= 0:
        return 0
    target = max(units, moq)
    return -(-target // pack_size) * pack_size


@dataclass(frozen=True, slots=True)
class Slot:
    """Units of an open PO line that no order line is pegged to yet."""

    po_line_id: int
    free: int


def peg_to_slots(claims: Iterable[Claim], slots: Sequence[Slot]) -> tuple[list[tuple[int, int, int]], dict[int, int]]:
    """Peg waiting units to free PO units: oldest line first, earliest slot first.

    Returns ``[(line_id, po_line_id, units)]`` and each line's units left unpegged.
    """
    free = [[s.po_line_id, s.free] for s in slots if s.free > 0]
    pegs: list[tuple[int, int, int]] = []
    left: dict[int, int] = {}
    i = 0
    for claim in in_queue_order(claims):
        wanted = claim.wanted
        while wanted > 0 and i < len(free):
            po_line_id, available = free[i]
            n = min(wanted, available)
            pegs.append((claim.line_id, po_line_id, n))
            wanted -= n
            free[i][1] -= n
            if free[i][1] == 0:
                i += 1
        left[claim.line_id] = wanted
    return pegs, left


def draft_is_ready(
    *,
    value_cents: int,
    min_order_value_cents: int,
    oldest_waiting_since: datetime | None,
    max_wait_days: int | None,
    now: datetime,
) -> bool:
    """A draft may go out once it reaches the supplier's minimum order value, or once its
    oldest waiting line has waited ``max_wait_days`` (the customer matters more than the
    minimum)."""
    if value_cents >= min_order_value_cents:
        return True
    if max_wait_days is None or oldest_waiting_since is None:
        return False
    return now - oldest_waiting_since >= timedelta(days=max_wait_days)


def safety_top_up(*, target: int, free_stock: int, unpegged_on_order: int, waiting_unpegged: int) -> int:
    """Extra units to order so that, once open POs arrive and waiting lines are served,
    ``target`` units remain for immediate sale."""
    if target <= 0:
        return 0
    return max(0, target - (free_stock + unpegged_on_order - waiting_unpegged))
