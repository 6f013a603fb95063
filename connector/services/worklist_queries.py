"""Read model of the worklist: which waiting order line waits on which purchase order."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select

from connector.db.engine import Database
from connector.db.models import (
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Supplier,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.supplier_csv import csv_safe_text

PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class WorklistFilters:
    supplier_id: int | None = None
    sku: str | None = None  # substring, case-insensitive
    min_age_days: int | None = None


@dataclass(frozen=True, slots=True)
class WorklistRow:
    line_id: int
    order_number: str
    customer_name: str | None
    sku: str | None
    title: str
    kind: str
    waiting_units: int
    waiting_since: datetime | None
    age_days: int
    supplier: str | None
    pegs: list[tuple[int, str, int]]  # PO id, PO number, units
    promised_eta: date | None
    current_eta: date | None


@dataclass(frozen=True, slots=True)
class Worklist:
    rows: list[WorklistRow]
    total: int
    page: int
    pages: int


def _query(filters: WorklistFilters, now: datetime) -> Select[Any]:
    since = func.coalesce(OrderLine.waiting_since, OrderLine.placed_at)
    stmt = (
        select(
            OrderLine.id,
            SalesOrder.number,
            SalesOrder.customer_name,
            OrderLine.sku,
            OrderLine.title,
            OrderLine.kind,
            OrderLine.backordered,
            since,
            Supplier.name,
            OrderLine.promised_eta,
            OrderLine.current_eta,
        )
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .outerjoin(Variant, Variant.id == OrderLine.variant_id)
        .outerjoin(Supplier, Supplier.id == Variant.supplier_id)
        .where(OrderLine.backordered > 0)
    )
    if filters.supplier_id is not None:
        stmt = stmt.where(Variant.supplier_id == filters.supplier_id)
    if filters.sku:
        stmt = stmt.where(func.lower(OrderLine.sku).contains(filters.sku.lower(), autoescape=True))
    if filters.min_age_days is not None:
        stmt = stmt.where(since <= now - timedelta(days=filters.min_age_days))
    return stmt.order_by(since, OrderLine.id)


def _rows(uow: UnitOfWork, stmt: Select[Any], now: datetime) -> list[WorklistRow]:
    raw = uow.session.execute(stmt).all()
    pegs: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    ids = [r[0] for r in raw]
    for i in range(0, len(ids), 500):
        for line_id, po_id, number, units in uow.session.execute(
            select(Peg.order_line_id, PurchaseOrder.id, PurchaseOrder.number, Peg.units)
            .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
            .where(Peg.order_line_id.in_(ids[i : i + 500]))
            .order_by(PurchaseOrder.expected_date, PurchaseOrder.id)
        ):
            pegs[line_id].append((po_id, number, units))
    return [
        WorklistRow(
            line_id=r[0], order_number=r[1], customer_name=r[2], sku=r[3], title=r[4], kind=r[5],
            waiting_units=r[6], waiting_since=r[7], age_days=(now - r[7]).days if r[7] else 0,
            supplier=r[8], pegs=pegs.get(r[0], []), promised_eta=r[9], current_eta=r[10],
        )
        for r in raw
    ]


def worklist(db: Database, shop_id: int, filters: WorklistFilters, now: datetime, page: int = 1) -> Worklist:
    """One page of waiting lines, oldest first."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        stmt = _query(filters, now)
        total = int(uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(max(1, page), pages)
        rows = _rows(uow, stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE), now)
        return Worklist(rows, total, page, pages)


def worklist_csv(db: Database, shop_id: int, filters: WorklistFilters, now: datetime) -> str:
    """Every waiting line matching ``filters`` as CSV (formula-looking text defused)."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = _rows(uow, _query(filters, now), now)
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["order", "customer", "sku", "title", "kind", "waiting_units", "waiting_since", "age_days",
                "supplier", "purchase_orders", "promised_eta", "current_eta"])
    for r in rows:
        w.writerow([
            csv_safe_text(r.order_number), csv_safe_text(r.customer_name or ""), csv_safe_text(r.sku or ""),
            csv_safe_text(r.title), r.kind, r.waiting_units, r.waiting_since.isoformat() if r.waiting_since else "",
            r.age_days, csv_safe_text(r.supplier or ""), " ".join(f"{n}:{u}" for _, n, u in r.pegs),
            r.promised_eta.isoformat() if r.promised_eta else "", r.current_eta.isoformat() if r.current_eta else "",
        ])
    return out.getvalue()
