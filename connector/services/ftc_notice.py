"""The thirty-day notice (FTC Mail Order Rule): customers who have waited 30 days without a
firm date are offered the choice to keep waiting or cancel.

A line has no firm date when some of its waiting units are not pegged to any purchase order,
or are pegged to one whose expected date is still only the supplier's lead time
(``expected_date_source == 'lead_time'``: nobody confirmed it). Preorders wait for a release
date the customer knew when buying, so they are left out.

One notice per order, ever: the outbox idempotency key is ``thirty_day_notice:<order>``, so the
daily run (and any rerun) finds it already written. The e-mail goes out through the outbox like
every other, built from the lines as they are when it is delivered.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, Peg, PurchaseOrder, PurchaseOrderLine, SalesOrder
from connector.db.uow import UnitOfWork
from connector.domain.allocation import LineKind

KIND = "thirty_day_notice"
WAIT = timedelta(days=30)
NOTICE_KINDS = (LineKind.BACKORDER.value, LineKind.OVERSOLD.value, LineKind.DROPSHIP.value)


def _key(order_external_id: str) -> str:
    return f"{KIND}:{order_external_id}"


def queue_thirty_day_notices(db: Database, shop_id: int, now: datetime, wait: timedelta = WAIT) -> int:
    """Write a notice for every order with a line waiting ``wait`` without a firm date; returns
    how many were written."""
    with UnitOfWork(db, shop_id) as uow:
        rows = uow.session.execute(
            select(OrderLine.id, OrderLine.external_id, OrderLine.sku, OrderLine.backordered, OrderLine.pegged,
                   OrderLine.current_eta, SalesOrder.external_id)
            .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
            .where(SalesOrder.state == "open", OrderLine.backordered > 0, OrderLine.kind.in_(NOTICE_KINDS),
                   OrderLine.waiting_since <= now - wait)
        ).all()
        if not rows:
            return 0
        firm: dict[int, int] = defaultdict(int)  # line id -> units pegged to a confirmed date
        for line_id, units in uow.session.execute(
            select(Peg.order_line_id, Peg.units)
            .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
            .where(Peg.order_line_id.in_([r[0] for r in rows]), PurchaseOrder.expected_date_source != "lead_time")
        ).tuples():
            firm[line_id] += units
        by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line_id, line_ext, sku, backordered, _pegged, eta, order_ext in rows:
            if firm[line_id] < backordered:
                by_order[order_ext].append({"sku": sku, "line": line_ext, "eta": eta.isoformat() if eta else None})
        if not by_order:
            return 0
        existing = set(uow.session.scalars(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.idempotency_key.in_([_key(o) for o in by_order]))
        ))
        written = 0
        for order_ext, lines in sorted(by_order.items()):
            if _key(order_ext) in existing:
                continue
            uow.add(OutboxMessage(
                kind=KIND, target="customer", subject=order_ext, payload={"order": order_ext, "lines": lines},
                idempotency_key=_key(order_ext), state="pending", attempts=0, next_attempt_at=now, created_at=now,
            ))
            written += 1
        uow.commit()
        return written


__all__ = ["queue_thirty_day_notices"]
