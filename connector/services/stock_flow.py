"""Moving units between stock, waiting lines and purchase-order pegs, inside one session.

These helpers are the shared mechanism behind receiving, stock counts, cancellations and
edits: every path that frees or brings units hands them out the same way (pegged lines of
the PO first, then any waiting line of the SKU by priority and age, then stock).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.db.models import (
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Variant,
)
from connector.domain.allocation import Claim, LineKind, distribute, queue_key, release_pegs, take_back
from connector.services.dropship import tell_supplier_of_cancellation
from connector.services.events import Changes

# Lines that wait for goods that come into our stock (dropship units come from the supplier).
RECEIVING_KINDS = (LineKind.BACKORDER.value, LineKind.PREORDER.value, LineKind.OVERSOLD.value)


def waiting_lines(session: Session, variant_id: int, exclude: Iterable[int] = ()) -> list[OrderLine]:
    """Lines of the SKU still waiting for units, in queue order (priority, then age)."""
    stmt = (
        select(OrderLine)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(
            OrderLine.variant_id == variant_id,
            OrderLine.backordered > 0,
            OrderLine.kind.in_(RECEIVING_KINDS),
            SalesOrder.state == "open",
        )
    )
    excluded = set(exclude)
    lines = [line for line in session.scalars(stmt) if line.id not in excluded]
    lines.sort(key=lambda ln: queue_key(ln.priority, ln.placed_at, ln.id))
    return lines


def pegs_newest_first(session: Session, line_id: int) -> list[tuple[Peg, PurchaseOrder]]:
    stmt = (
        select(Peg, PurchaseOrder)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(Peg.order_line_id == line_id)
    )
    rows = [(peg, po) for peg, po in session.execute(stmt).tuples()]
    rows.sort(key=lambda r: (r[1].expected_date, r[1].created_at, r[1].id), reverse=True)
    return rows


def trim_pegs(session: Session, line: OrderLine) -> int:
    """Keep ``pegged <= backordered``: release the latest-arriving pegs first."""
    excess = line.pegged - line.backordered
    if excess <= 0:
        return 0
    # No autoflush: the line is mid-change (pegged > backordered) and would fail its CHECK.
    with session.no_autoflush:
        pegs = pegs_newest_first(session, line.id)
    by_id = {peg.id: peg for peg, _ in pegs}
    released = 0
    for peg_id, units in release_pegs(excess, [(peg.id, peg.units) for peg, _ in pegs]):
        peg = by_id[peg_id]
        peg.units -= units
        released += units
        if peg.units == 0:
            session.delete(peg)
    line.pegged -= released
    return released


def give_units(session: Session, line: OrderLine, units: int, changes: Changes) -> None:
    """Cover ``units`` of a waiting line (from stock or a receipt)."""
    if units <= 0:
        return
    line.allocated += units
    line.backordered -= units
    line.last_covered_at = changes.now
    if line.backordered == 0:
        line.waiting_since = None
    trim_pegs(session, line)
    changes.touch(line.id)
    if line.backordered == 0:
        changes.line("allocated", line.order.external_id, sku=line.sku, line=line.external_id)


def distribute_to_waiting(
    session: Session, variant: Variant, units: int, changes: Changes, exclude: Sequence[int] = ()
) -> int:
    """Give ``units`` to waiting lines of the variant in queue order; returns what is left."""
    lines = {line.id: line for line in waiting_lines(session, variant.id, exclude)}
    given, rest = distribute(
        units, [Claim(ln.id, ln.priority, ln.placed_at, ln.backordered) for ln in lines.values()]
    )
    for line_id, n in given:
        give_units(session, lines[line_id], n, changes)
    return rest


def add_stock(
    session: Session, variant: Variant, units: int, changes: Changes, exclude: Sequence[int] = ()
) -> None:
    """Units that arrive outside a PO: waiting lines first, the rest becomes free stock."""
    variant.free_stock += distribute_to_waiting(session, variant, units, changes, exclude)


def held_units(session: Session, variant_id: int) -> int:
    """Units on the shelf that open lines hold (allocated, not yet shipped)."""
    stmt = (
        select(func.coalesce(func.sum(OrderLine.allocated - OrderLine.fulfilled), 0))
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(OrderLine.variant_id == variant_id, SalesOrder.state.in_(("open", "pending")))
    )
    return int(session.scalar(stmt) or 0)


def set_on_hand(session: Session, variant: Variant, on_hand: int, changes: Changes) -> None:
    """A stock count: the shelf holds ``on_hand`` units (held ones included).

    More than we thought → the difference is handed out like a receipt. Fewer → free stock
    shrinks; if even held units are missing the merchant is told (we never silently take
    units away from a customer who was promised them).
    """
    held = held_units(session, variant.id)
    physical = variant.free_stock + held
    delta = on_hand - physical
    if delta > 0:
        add_stock(session, variant, delta, changes)
    elif delta < 0:
        variant.free_stock = max(0, on_hand - held)
        if on_hand < held:
            changes.event("stock_short", variant.sku, sku=variant.sku, on_hand=on_hand, held=held)


def release_line_units(session: Session, line: OrderLine, units: int, changes: Changes) -> None:
    """Cancel ``units`` of a line: waiting units first, then allocated ones, which go to the
    next waiting customer of the SKU (then to stock). Pegs beyond the new need are released,
    leaving their PO units as surplus for the next consolidation."""
    units = min(units, line.backordered + line.allocated - line.fulfilled)
    if units <= 0:
        return
    from_waiting, from_allocated = take_back(units, line.backordered, line.allocated - line.fulfilled)
    line.backordered -= from_waiting
    line.allocated -= from_allocated
    line.cancelled += units
    if line.backordered == 0:
        line.waiting_since = None
    if from_waiting and line.dropship_forward_id is not None:
        # A forward may already be with the supplier: tell them not to ship these units.
        tell_supplier_of_cancellation(session, line, from_waiting, changes.now)
    trim_pegs(session, line)
    changes.touch(line.id)
    if from_allocated and line.variant_id is not None:
        variant = session.get(Variant, line.variant_id)
        if variant is not None and variant.tracks_inventory:
            add_stock(session, variant, from_allocated, changes, exclude=[line.id])
