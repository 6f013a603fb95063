"""Read model of the merchant dashboard: a handful of aggregate queries, one shop at a time.

Everything is computed in SQL aggregates or from two narrow column scans, so a shop with ten
thousand waiting lines renders in well under the page budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, PurchaseOrder, SalesOrder, Supplier, Variant
from connector.db.uow import UnitOfWork

WAITING_KINDS = ("backorder", "preorder", "dropship", "oversold")
LATE_PO_STATUSES = ("sent", "confirmed", "partially_received")
# ETA accuracy buckets: (label, lowest days late, highest days late); negative = early.
ACCURACY_BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("> 7 days early", None, -8),
    ("1-7 days early", -7, -1),
    ("on the day", 0, 0),
    ("1-3 days late", 1, 3),
    ("4-7 days late", 4, 7),
    ("> 7 days late", 8, None),
)


@dataclass(frozen=True, slots=True)
class Dashboard:
    open_units: int
    open_lines: int
    open_orders: int
    open_value_cents: int
    currency: str
    oldest_order_number: str | None
    oldest_waiting_since: datetime | None
    per_supplier: list[tuple[str, int, int]]  # supplier name (or "(no supplier)"), lines, units
    late_pos: list[tuple[int, str, str, date, int]]  # id, number, supplier, expected date, days late
    emails_sent: int
    dead_letters: int
    backlog: list[tuple[date, int]]  # day, lines waiting at the end of that day
    accuracy: list[tuple[str, int]]  # bucket label, lines


def dashboard(db: Database, shop_id: int, now: datetime, days: int = 30) -> Dashboard:
    today = now.date()
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        s = uow.session
        shop = uow.shop()
        waiting = OrderLine.backordered > 0
        units, lines, orders, value = s.execute(
            select(
                func.coalesce(func.sum(OrderLine.backordered), 0),
                func.count(),
                func.count(func.distinct(OrderLine.order_id)),
                func.coalesce(func.sum(OrderLine.backordered * OrderLine.unit_price_cents), 0),
            ).where(waiting)
        ).one()
        oldest = s.execute(
            select(SalesOrder.number, func.coalesce(OrderLine.waiting_since, OrderLine.placed_at))
            .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
            .where(waiting)
            .order_by(func.coalesce(OrderLine.waiting_since, OrderLine.placed_at), OrderLine.id)
            .limit(1)
        ).first()
        per_supplier = [
            (name or "(no supplier)", int(n), int(u))
            for name, n, u in s.execute(
                select(Supplier.name, func.count(), func.sum(OrderLine.backordered))
                .select_from(OrderLine)
                .outerjoin(Variant, Variant.id == OrderLine.variant_id)
                .outerjoin(Supplier, Supplier.id == Variant.supplier_id)
                .where(waiting)
                .group_by(Supplier.name)
                .order_by(func.count().desc())
            )
        ]
        late = [
            (po_id, number, supplier, expected, (today - expected).days)
            for po_id, number, supplier, expected in s.execute(
                select(PurchaseOrder.id, PurchaseOrder.number, Supplier.name, PurchaseOrder.expected_date)
                .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
                .where(PurchaseOrder.status.in_(LATE_PO_STATUSES), PurchaseOrder.expected_date < today)
                .order_by(PurchaseOrder.expected_date)
            )
        ]
        emails = s.scalar(
            select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.target == "customer", OutboxMessage.state == "sent"
            )
        )
        dead = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "dead"))
        backlog = _backlog(s, today, days)
        accuracy = _accuracy(s)
        return Dashboard(
            open_units=int(units),
            open_lines=int(lines),
            open_orders=int(orders),
            open_value_cents=int(value),
            currency=shop.currency,
            oldest_order_number=oldest[0] if oldest else None,
            oldest_waiting_since=oldest[1] if oldest else None,
            per_supplier=per_supplier,
            late_pos=late,
            emails_sent=int(emails or 0),
            dead_letters=int(dead or 0),
            backlog=backlog,
            accuracy=accuracy,
        )


def _day_of(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores naive UTC text


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _backlog(s: Session, today: date, days: int) -> list[tuple[date, int]]:
    """Lines waiting at the end of each of the last ``days`` days.

    A waiting line started at ``waiting_since``; a line that no longer waits lost that stamp,
    so its start is approximated by ``placed_at`` and its end is ``last_covered_at``. The
    database groups lines by (start day, end day), so Python sees a few hundred rows at most.
    """
    first = today - timedelta(days=days - 1)
    open_now = OrderLine.backordered > 0
    start = _day_of(s, case((open_now & OrderLine.waiting_since.is_not(None), OrderLine.waiting_since),
                            else_=OrderLine.placed_at))
    end = _day_of(s, case((open_now, None), else_=OrderLine.last_covered_at))
    rows = s.execute(
        select(start, end, func.count())
        .where(OrderLine.kind.in_(WAITING_KINDS), open_now | OrderLine.last_covered_at.is_not(None))
        .group_by(start, end)
    )
    delta = [0] * (days + 1)
    for raw_start, raw_end, n in rows:
        start_day, end_day = _as_date(raw_start), _as_date(raw_end)
        assert start_day is not None
        if (end_day is not None and end_day < first) or start_day > today:
            continue
        delta[max((start_day - first).days, 0)] += n
        if end_day is not None and end_day <= today:
            delta[(end_day - first).days] -= n
    series = []
    running = 0
    for i in range(days):
        running += delta[i]
        series.append((first + timedelta(days=i), running))
    return series


def _accuracy(s: Session) -> list[tuple[str, int]]:
    """Lines fully covered, bucketed by the day they were covered against the promised ETA."""
    counts = [0] * len(ACCURACY_BUCKETS)
    covered = _day_of(s, OrderLine.last_covered_at)
    rows = s.execute(
        select(OrderLine.promised_eta, covered, func.count())
        .where(
            OrderLine.kind.in_(WAITING_KINDS),
            OrderLine.backordered == 0,
            OrderLine.promised_eta.is_not(None),
            OrderLine.last_covered_at.is_not(None),
        )
        .group_by(OrderLine.promised_eta, covered)
    )
    for promised, raw_covered, n in rows:
        covered_day = _as_date(raw_covered)
        assert covered_day is not None
        late = (covered_day - promised).days
        for i, (_, low, high) in enumerate(ACCURACY_BUCKETS):
            if (low is None or late >= low) and (high is None or late <= high):
                counts[i] += n
                break
    return [(label, counts[i]) for i, (label, _, _) in enumerate(ACCURACY_BUCKETS)]
