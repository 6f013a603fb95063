"""Order ingest: upsert an order and its lines from a normalized record, allocate new demand,
release what was cancelled, and ignore deliveries older than what we hold."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connector.db.engine import Database
from connector.db.models import OrderLine, SalesOrder, Shop, Variant
from connector.db.uow import UnitOfWork
from connector.domain.allocation import LineKind, shortfall_kind, split_new_demand
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.errors import NotFound, ValidationError
from connector.services import events
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.stock_flow import release_line_units, trim_pegs


@dataclass(frozen=True, slots=True)
class IngestResult:
    order_id: int
    outcome: str  # created | updated | stale
    backordered_units: int


def resolve_variant(session: Session, shop_id: int, line: OrderLineRecord) -> Variant | None:
    """Find the line's variant by platform id, then by SKU; create a placeholder when the
    catalogue sync has not brought it yet (the next product sync fills in the details)."""
    if line.variant_external_id is None and not line.sku:
        return None
    conditions = []
    if line.variant_external_id is not None:
        conditions.append(Variant.external_id == line.variant_external_id)
    if line.sku:
        conditions.append(Variant.sku == line.sku)
    candidates = list(session.scalars(select(Variant).where(or_(*conditions))))
    for v in candidates:
        if line.variant_external_id is not None and v.external_id == line.variant_external_id:
            return v
    if candidates and line.variant_external_id is None:
        return candidates[0]
    if candidates and candidates[0].external_id is None:
        candidates[0].external_id = line.variant_external_id
        return candidates[0]
    variant = Variant(
        shop_id=shop_id,
        external_id=line.variant_external_id,
        product_external_id=line.product_external_id,
        sku=line.sku or f"variant-{line.variant_external_id}",
        title=line.title or "",
        unit_value_cents=line.unit_price_cents,
        backorders_allowed=True,  # the store accepted the sale, so it sells past zero
        free_stock=0,
    )
    session.add(variant)
    session.flush()
    return variant


def allocate_demand(line: OrderLine, variant: Variant | None, units: int, changes: Changes) -> None:
    """New demand on a line: stock first (arrival order), the rest waits by the variant's rule."""
    if units <= 0:
        return
    line.ordered += units
    if variant is None or not variant.tracks_inventory:
        line.kind = LineKind.UNTRACKED.value
        line.allocated += units
        line.last_covered_at = changes.now
        return
    covered, short = split_new_demand(units, variant.free_stock)
    variant.free_stock -= covered
    line.allocated += covered
    if covered:
        line.last_covered_at = changes.now
    if short:
        if line.kind in (LineKind.STOCK.value, LineKind.UNTRACKED.value):
            line.kind = shortfall_kind(
                allows_backorder=variant.backorders_allowed,
                dropship=variant.dropship,
                release_date=variant.release_date,
                today=changes.now.date(),
            ).value
        line.backordered += short
        if line.waiting_since is None:
            line.waiting_since = changes.now
    changes.touch(line.id)


def _apply_lines(session: Session, shop: Shop, order: SalesOrder, record: OrderRecord, changes: Changes) -> None:
    existing = {line.external_id: line for line in order.lines}
    seen: set[str] = set()
    for rec in record.lines:
        if rec.quantity < 0:
            raise ValidationError("line quantity must be >= 0", field=f"lines[{rec.external_id}].quantity")
        seen.add(rec.external_id)
        line = existing.get(rec.external_id)
        variant: Variant | None
        if line is None:
            line, variant = _new_line(session, shop, order, rec)
            session.flush()
        else:
            variant = session.get(Variant, line.variant_id) if line.variant_id else None
        wanted_now = line.ordered - line.cancelled
        if rec.quantity > wanted_now:
            allocate_demand(line, variant, rec.quantity - wanted_now, changes)
        elif rec.quantity < wanted_now:
            release_line_units(session, line, wanted_now - rec.quantity, changes)
        if rec.fulfilled_quantity:
            before = line.fulfilled
            line.fulfilled = min(line.allocated, max(line.fulfilled, rec.fulfilled_quantity))
            _shipped(order, line, before, changes)
    for ext_id, line in existing.items():
        if ext_id not in seen:  # removed from the order by an edit
            release_line_units(session, line, line.ordered - line.cancelled, changes)


def _close(session: Session, shop: Shop, order: SalesOrder, record: OrderRecord, changes: Changes) -> None:
    for line in order.lines:
        release_line_units(session, line, line.ordered - line.cancelled, changes)
    _add_cancelled_lines(session, shop, order, record)


def _add_cancelled_lines(session: Session, shop: Shop, order: SalesOrder, record: OrderRecord) -> None:
    """Lines of a closed order that we never saw open (its cancellation overtook its creation, or
    it was cancelled before payment): stored as cancelled, with nothing allocated.

    Keeping them (rather than a closed order without lines) shows the merchant what was
    cancelled, and the order's ``platform_updated_at`` makes the late ``create`` stale, so the
    units are never allocated and no customer hears about a wait.
    """
    known = {line.external_id for line in order.lines}
    for rec in record.lines:
        if rec.external_id in known or rec.quantity < 0:
            continue
        _new_line(session, shop, order, rec, ordered=rec.quantity, cancelled=rec.quantity)


def _new_line(
    session: Session, shop: Shop, order: SalesOrder, rec: OrderLineRecord, **counts: int
) -> tuple[OrderLine, Variant | None]:
    """A line of ``order`` for a record we have not seen, with its variant resolved (or None)."""
    variant = resolve_variant(session, shop.id, rec)
    line = OrderLine(
        shop_id=shop.id,
        external_id=rec.external_id,
        variant_id=variant.id if variant else None,
        sku=rec.sku or (variant.sku if variant else None),
        title=rec.title or (variant.title if variant else ""),
        unit_price_cents=rec.unit_price_cents,
        priority=order.priority,
        placed_at=order.placed_at,
        kind=LineKind.STOCK.value,
        **counts,
    )
    order.lines.append(line)
    return line, variant


def _mark_fulfilled(session: Session, order: SalesOrder, changes: Changes) -> None:
    """The store shipped the order. Units we still thought were waiting left from stock we
    did not know about; count them as covered so nothing waits for them any more."""
    for line in order.lines:
        if line.backordered:
            variant = session.get(Variant, line.variant_id) if line.variant_id else None
            if variant is not None:
                variant.free_stock = max(0, variant.free_stock - line.backordered)
            line.allocated += line.backordered
            line.backordered = 0
            trim_pegs(session, line)
        before = line.fulfilled
        line.fulfilled = line.allocated
        _shipped(order, line, before, changes)
        changes.touch(line.id)


# Lines whose customer we told they wait: only they get our shipped notice (the store tells
# everyone else itself). Dropship tracking raises its own notice and marks the lines shipped
# first, so the store's echo of that fulfilment raises nothing here.
_TOLD_KINDS = (LineKind.BACKORDER.value, LineKind.PREORDER.value, LineKind.OVERSOLD.value, LineKind.DROPSHIP.value)


def _shipped(order: SalesOrder, line: OrderLine, before: int, changes: Changes) -> None:
    """The store reported more units of ``line`` shipped: the customer hears it once (a replayed
    webhook raises nothing, the count did not grow)."""
    if line.fulfilled > before and line.kind in _TOLD_KINDS:
        changes.line("shipped", order.external_id, sku=line.sku, line=line.external_id, units=line.fulfilled - before)


def ingest_order(
    session: Session, shop: Shop, record: OrderRecord, changes: Changes, priority: int | None = None
) -> IngestResult:
    order = session.scalars(select(SalesOrder).where(SalesOrder.external_id == record.external_id)).first()
    if order is not None and record.updated_at < order.platform_updated_at:
        return IngestResult(order.id, "stale", 0)
    outcome = "updated"
    previous_state = None
    if order is None:
        outcome = "created"
        order = SalesOrder(
            shop_id=shop.id,
            external_id=record.external_id,
            number=record.number,
            placed_at=record.placed_at,
            platform_updated_at=record.updated_at,
            created_at=changes.now,
            priority=priority or 0,
            state=OrderState.PENDING.value,
        )
        session.add(order)
        session.flush()
    else:
        previous_state = order.state
    order.graphql_id = record.graphql_id
    order.number = record.number
    order.customer_email = record.customer_email
    order.customer_name = record.customer_name
    order.customer_external_id = record.customer_external_id
    order.ship_to = asdict(record.ship_to) if record.ship_to else None
    order.currency = record.currency
    order.platform_updated_at = record.updated_at
    if priority is not None:
        order.priority = priority

    state = record.state
    if state == OrderState.OPEN:
        order.state = state.value
        _apply_lines(session, shop, order, record, changes)
    elif state == OrderState.CLOSED:
        order.state = state.value
        _close(session, shop, order, record, changes)
    elif state == OrderState.FULFILLED:
        # Apply the shipped version's lines first: a quantity removed in the same edit (or in an
        # update that was lost or arrived late) must release its units before the rest ships.
        order.state = OrderState.OPEN.value
        _apply_lines(session, shop, order, record, changes)
        _mark_fulfilled(session, order, changes)
        order.state = state.value
    else:  # PENDING: not paid yet, reserves nothing
        order.state = state.value if previous_state in (None, OrderState.PENDING.value) else order.state
    session.flush()
    backordered = sum(line.backordered for line in order.lines)
    return IngestResult(order.id, outcome, backordered)


def record_order(
    db: Database, shop_id: int, record: OrderRecord, now: datetime, priority: int | None = None
) -> IngestResult:
    """Use case: one order from a webhook, a poll or the scenario runner, in one transaction."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        changes = Changes(now)
        result = ingest_order(uow.session, shop, record, changes, priority)
        recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
        return result


def cancel_order_units(
    db: Database, shop_id: int, order_external_id: str, now: datetime, sku: str | None = None, qty: int | None = None
) -> int:
    """Cancel a whole order, or ``qty`` units of its ``sku`` line; returns units cancelled."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        order = uow.find(SalesOrder, external_id=order_external_id)
        if order is None:
            raise NotFound(f"order {order_external_id} not found", field="order")
        changes = Changes(now)
        cancelled = 0
        lines = [ln for ln in order.lines if sku is None or ln.sku == sku]
        if sku is not None and not lines:
            raise NotFound(f"order {order_external_id} has no line with SKU {sku}", field="sku")
        for line in lines:
            remaining = line.ordered - line.cancelled - line.fulfilled
            units = remaining if qty is None else min(qty - cancelled, remaining)
            before = line.cancelled
            release_line_units(uow.session, line, units, changes)
            cancelled += line.cancelled - before
            if qty is not None and cancelled >= qty:
                break
        if sku is None:
            order.state = OrderState.CLOSED.value
        recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
        return cancelled
