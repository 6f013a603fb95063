"""Purchase-order lifecycle after consolidation: send, expected dates, receipts, edits, cancel."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.db.engine import Database
from connector.db.models import (
    DRAFT_PO_STATUSES,
    OPEN_PO_STATUSES,
    ExpectedDateChange,
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    Shop,
    Supplier,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.allocation import queue_key, release_pegs
from connector.errors import NotFound, ValidationError
from connector.services import events
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.stock_flow import add_stock, give_units


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    to_pegged_lines: int
    to_other_lines: int
    to_stock: int
    status: str


def _lines_pegged_to(session: Session, po_line_ids: list[int]) -> set[int]:
    if not po_line_ids:
        return set()
    return set(session.scalars(select(Peg.order_line_id).where(Peg.po_line_id.in_(po_line_ids))))


def _finish(session: Session, shop: Shop, changes: Changes) -> None:
    recompute_etas(session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
    events.flush(session, shop.id, changes)


def send_in_session(session: Session, shop: Shop, po: PurchaseOrder, changes: Changes) -> None:
    if po.status not in DRAFT_PO_STATUSES:
        raise ValidationError(f"{po.number} is {po.status}; only a draft or ready PO can be sent", field="status")
    if not po.lines:
        raise ValidationError(f"{po.number} has no lines", field="lines")
    po.status = "sent"
    po.sent_at = changes.now
    # The supplier document goes out through the outbox: a crash after commit still sends it once.
    changes.event("purchase_order", po.number, number=po.number, purchase_order_id=po.id)


def open_po_of_supplier(
    session: Session, supplier_name: str, statuses: tuple[str, ...], sku: str | None = None
) -> PurchaseOrder:
    """The oldest PO of the supplier in ``statuses`` (holding ``sku`` when given)."""
    supplier = session.scalars(select(Supplier).where(Supplier.name == supplier_name)).first()
    if supplier is None:
        raise NotFound(f"supplier {supplier_name!r} not found", field="supplier")
    stmt = select(PurchaseOrder).where(PurchaseOrder.supplier_id == supplier.id, PurchaseOrder.status.in_(statuses))
    if sku is not None:
        stmt = stmt.join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id).where(
            PurchaseOrderLine.sku == sku
        )
    po = session.scalars(stmt.order_by(PurchaseOrder.created_at, PurchaseOrder.id)).first()
    if po is None:
        raise NotFound(f"supplier {supplier_name!r} has no matching purchase order", field="supplier")
    return po


def send_purchase_order(db: Database, shop_id: int, po_id: int, now: datetime) -> str:
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        po = uow.get(PurchaseOrder, po_id)
        changes = Changes(now)
        send_in_session(uow.session, shop, po, changes)
        _finish(uow.session, shop, changes)
        uow.commit()
        return po.number


def set_expected_date_in_session(
    session: Session, po: PurchaseOrder, new_date: date, source: str, changes: Changes, reason: str | None = None
) -> None:
    if po.status not in OPEN_PO_STATUSES:
        raise ValidationError(f"{po.number} is {po.status}; its date can no longer change", field="expected_date")
    if new_date == po.expected_date:
        return
    session.add(
        ExpectedDateChange(
            shop_id=po.shop_id,
            purchase_order_id=po.id,
            old_date=po.expected_date,
            new_date=new_date,
            source=source,
            reason=reason,
            changed_at=changes.now,
        )
    )
    po.expected_date = new_date
    po.expected_date_source = source
    if reason:
        changes.reason = reason
    for line_id in _lines_pegged_to(session, [pol.id for pol in po.lines]):
        changes.touch(line_id)


def set_expected_date(
    db: Database, shop_id: int, po_id: int, new_date: date, now: datetime, source: str = "merchant",
    reason: str | None = None,
) -> None:
    """The supplier or merchant sets when goods arrive; pegged lines' ETAs follow (delays recorded)."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        po = uow.get(PurchaseOrder, po_id)
        changes = Changes(now)
        set_expected_date_in_session(uow.session, po, new_date, source, changes, reason)
        _finish(uow.session, shop, changes)
        uow.commit()


def receive_line_in_session(session: Session, pol: PurchaseOrderLine, quantity: int, changes: Changes) -> ReceiptResult:
    """Received units go to the lines pegged to this PO line (priority, then age), then to other
    waiting lines of the SKU, then to stock. Over-receipt is allowed and becomes stock."""
    if quantity <= 0:
        raise ValidationError("received quantity must be > 0", field="quantity")
    pol.received += quantity
    remaining = quantity
    to_pegged = to_other = 0
    pegged = list(
        session.execute(
            select(Peg, OrderLine).join(OrderLine, OrderLine.id == Peg.order_line_id).where(Peg.po_line_id == pol.id)
        ).tuples()
    )
    pegged.sort(key=lambda r: queue_key(r[1].priority, r[1].placed_at, r[1].id))
    for peg, line in pegged:
        if remaining == 0:
            break
        n = min(remaining, peg.units, line.backordered)
        # Consume this peg first so give_units trims the line's *other* pegs if needed.
        peg.units -= n
        line.pegged -= n
        if peg.units == 0:
            session.delete(peg)
        give_units(session, line, n, changes)
        remaining -= n
        to_pegged += n
    variant = session.get(Variant, pol.variant_id)
    assert variant is not None
    before = variant.free_stock
    if remaining:
        session.flush()
        add_stock(session, variant, remaining, changes)
        to_stock = variant.free_stock - before
        to_other = remaining - to_stock
    else:
        to_stock = 0
    pol.received_to_lines += to_pegged + to_other
    po = pol.purchase_order
    _update_receipt_status(po)
    return ReceiptResult(to_pegged, to_other, to_stock, po.status)


def _update_receipt_status(po: PurchaseOrder) -> None:
    if all(pol.received >= pol.ordered for pol in po.lines):
        po.status = "received"
    elif any(pol.received > 0 for pol in po.lines):
        po.status = "partially_received"


def receive_purchase_order(
    db: Database, shop_id: int, po_id: int, quantities: Mapping[str, int], now: datetime
) -> dict[str, ReceiptResult]:
    """Record a receipt: ``quantities`` maps SKU to units received now (full or partial)."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        po = uow.get(PurchaseOrder, po_id)
        if po.status not in ("sent", "confirmed", "partially_received", "received"):
            raise ValidationError(f"{po.number} is {po.status}; send it before receiving", field="status")
        by_sku = {pol.sku: pol for pol in po.lines}
        changes = Changes(now)
        results = {}
        for sku, qty in quantities.items():
            pol = by_sku.get(sku)
            if pol is None:
                raise ValidationError(f"{po.number} has no line for SKU {sku}", field="sku")
            results[sku] = receive_line_in_session(uow.session, pol, qty, changes)
        _finish(uow.session, shop, changes)
        uow.commit()
        return results


def cancel_purchase_order(db: Database, shop_id: int, po_id: int, now: datetime) -> int:
    """Cancel a PO: its pegs are released, so the next consolidation orders those units again."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        po = uow.get(PurchaseOrder, po_id)
        if po.status not in OPEN_PO_STATUSES:
            raise ValidationError(f"{po.number} is {po.status} and cannot be cancelled", field="status")
        changes = Changes(now)
        released = 0
        for pol in po.lines:
            for peg, line in uow.session.execute(
                select(Peg, OrderLine).join(OrderLine, OrderLine.id == Peg.order_line_id).where(Peg.po_line_id == pol.id)
            ).tuples():
                line.pegged -= peg.units
                released += peg.units
                uow.session.delete(peg)
                changes.touch(line.id)
        po.status = "cancelled"
        po.cancelled_at = now
        _finish(uow.session, shop, changes)
        uow.commit()
        return released


def set_po_line_quantity(db: Database, shop_id: int, po_line_id: int, quantity: int, now: datetime) -> None:
    """The merchant (or the supplier's confirmation) changes a line's quantity. Below what is
    pegged, the lines that ordered last lose their pegs first and wait for the next PO."""
    if quantity < 0:
        raise ValidationError("quantity must be >= 0", field="quantity")
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        pol = uow.get(PurchaseOrderLine, po_line_id)
        if pol.purchase_order.status not in OPEN_PO_STATUSES:
            raise ValidationError("this purchase order can no longer change", field="quantity")
        if quantity < pol.received:
            raise ValidationError(f"{pol.received} units were already received", field="quantity")
        changes = Changes(now)
        rows = list(
            uow.session.execute(
                select(Peg, OrderLine).join(OrderLine, OrderLine.id == Peg.order_line_id).where(Peg.po_line_id == pol.id)
            ).tuples()
        )
        excess = sum(p.units for p, _ in rows) - (quantity - pol.received)
        if excess > 0:
            rows.sort(key=lambda r: queue_key(r[1].priority, r[1].placed_at, r[1].id), reverse=True)
            by_id = {p.id: (p, line) for p, line in rows}
            for peg_id, n in release_pegs(excess, [(p.id, p.units) for p, _ in rows]):
                peg, line = by_id[peg_id]
                peg.units -= n
                line.pegged -= n
                changes.touch(line.id)
                if peg.units == 0:
                    uow.session.delete(peg)
        pol.ordered = quantity
        _update_receipt_status(pol.purchase_order)
        _finish(uow.session, shop, changes)
        uow.commit()
