"""Read model of the purchase-order pages and the outbox dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from connector.db.engine import Database
from connector.db.models import (
    ExpectedDateChange,
    OrderLine,
    OutboxMessage,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Supplier,
)
from connector.db.uow import UnitOfWork

PO_STATUSES = ("draft", "ready", "sent", "confirmed", "partially_received", "received", "cancelled")


@dataclass(frozen=True, slots=True)
class PoSummary:
    id: int
    number: str
    supplier: str
    status: str
    created_at: datetime
    expected_date: date
    lines: int
    ordered: int
    received: int
    late: bool


@dataclass(frozen=True, slots=True)
class PoLineView:
    id: int
    sku: str
    supplier_sku: str | None
    ordered: int
    received: int
    pegged: int
    unit_cost_cents: int


@dataclass(frozen=True, slots=True)
class PoDetail:
    id: int
    number: str
    supplier_id: int
    supplier: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    expected_date: date
    expected_date_source: str
    currency: str
    lines: list[PoLineView]
    waiting_orders: list[tuple[str, str | None, int]]  # order number, sku, units pegged
    date_history: list[tuple[datetime, date | None, date, str, str | None]]

    @property
    def editable(self) -> bool:
        return self.status in ("draft", "ready")

    @property
    def receivable(self) -> bool:
        return self.status in ("sent", "confirmed", "partially_received", "received")

    @property
    def open(self) -> bool:
        return self.status in ("draft", "ready", "sent", "confirmed", "partially_received")


def purchase_orders(db: Database, shop_id: int, today: date, status: str | None = None) -> list[PoSummary]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        stmt = (
            select(
                PurchaseOrder.id, PurchaseOrder.number, Supplier.name, PurchaseOrder.status, PurchaseOrder.created_at,
                PurchaseOrder.expected_date, func.count(PurchaseOrderLine.id),
                func.coalesce(func.sum(PurchaseOrderLine.ordered), 0),
                func.coalesce(func.sum(PurchaseOrderLine.received), 0),
            )
            .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
            .outerjoin(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
            .group_by(PurchaseOrder.id, PurchaseOrder.number, Supplier.name, PurchaseOrder.status,
                      PurchaseOrder.created_at, PurchaseOrder.expected_date)
            .order_by(PurchaseOrder.created_at.desc(), PurchaseOrder.id.desc())
        )
        if status:
            stmt = stmt.where(PurchaseOrder.status == status)
        return [
            PoSummary(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), int(r[8]),
                      r[3] in ("sent", "confirmed", "partially_received") and r[5] < today)
            for r in uow.session.execute(stmt)
        ]


def purchase_order_detail(db: Database, shop_id: int, po_id: int) -> PoDetail:
    """One PO of the shop; another shop's id raises NotFound like a missing one."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        po = uow.get(PurchaseOrder, po_id)
        supplier = uow.get(Supplier, po.supplier_id)
        s = uow.session
        pegged = dict(
            s.execute(
                select(Peg.po_line_id, func.sum(Peg.units))
                .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
                .where(PurchaseOrderLine.purchase_order_id == po.id)
                .group_by(Peg.po_line_id)
            ).tuples().all()
        )
        lines = [
            PoLineView(pol.id, pol.sku, pol.supplier_sku, pol.ordered, pol.received, int(pegged.get(pol.id, 0)),
                       pol.unit_cost_cents)
            for pol in po.lines
        ]
        waiting = [
            (number, sku, int(units))
            for number, sku, units in s.execute(
                select(SalesOrder.number, OrderLine.sku, Peg.units)
                .join(OrderLine, OrderLine.id == Peg.order_line_id)
                .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
                .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
                .where(PurchaseOrderLine.purchase_order_id == po.id)
                .order_by(OrderLine.priority.desc(), OrderLine.placed_at, OrderLine.id)
            )
        ]
        history = [
            (c.changed_at, c.old_date, c.new_date, c.source, c.reason)
            for c in uow.all(
                select(ExpectedDateChange).where(ExpectedDateChange.purchase_order_id == po.id)
                .order_by(ExpectedDateChange.changed_at, ExpectedDateChange.id)
            )
        ]
        return PoDetail(
            po.id, po.number, supplier.id, supplier.name, po.status, po.created_at, po.sent_at, po.expected_date,
            po.expected_date_source, supplier.currency, lines, waiting, history,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    kind: str
    target: str
    subject: str | None
    attempts: int
    last_error: str | None
    created_at: datetime


def dead_letters(db: Database, shop_id: int, limit: int = 200) -> list[DeadLetter]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return [
            DeadLetter(m.id, m.kind, m.target, m.subject, m.attempts, m.last_error, m.created_at)
            for m in uow.all(
                select(OutboxMessage).where(OutboxMessage.state == "dead")
                .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)
            )
        ]
