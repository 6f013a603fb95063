"""Recompute line ETAs, set first promises, and record delays.

One pass over tuples (no ORM objects) so the daily full recompute stays fast on 100,000
lines; the same code recomputes just the lines a change touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.db.bulk import update_by_id
from connector.db.models import (
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Supplier,
    Variant,
    line_table,
)
from connector.domain.allocation import LineKind
from connector.domain.eta import covered_eta, is_delay, line_eta, po_eta, promise, unpegged_eta
from connector.services.events import Changes
from connector.services.shop_settings import EngineSettings

CHUNK = 5_000
BIG_BATCH = 20_000

# The customer-facing event that confirms a line's first shortfall, by line kind. Backordered,
# dropship and oversold lines share one confirmation (one e-mail per order, each line says what
# it waits for); a preorder gets its own, with the release date.
SHORTFALL_EVENT = {
    LineKind.BACKORDER.value: "backordered",
    LineKind.PREORDER.value: "preorder",
    LineKind.DROPSHIP.value: "backordered",
    LineKind.OVERSOLD.value: "backordered",
}


@dataclass(frozen=True, slots=True)
class EtaResult:
    lines: int
    changed: int
    delayed: int


def recompute_etas(
    session: Session,
    shop_id: int,
    settings: EngineSettings,
    changes: Changes,
    line_ids: Collection[int] | None = None,
) -> EtaResult:
    """Recompute ETAs of ``line_ids`` (every open line of the shop when None)."""
    session.flush()
    today = changes.now.date()
    stmt = (
        select(
            OrderLine.id,
            OrderLine.external_id,
            OrderLine.sku,
            OrderLine.kind,
            OrderLine.ordered,
            OrderLine.allocated,
            OrderLine.backordered,
            OrderLine.cancelled,
            OrderLine.pegged,
            OrderLine.last_covered_at,
            OrderLine.promised_eta,
            OrderLine.notified_eta,
            OrderLine.current_eta,
            SalesOrder.external_id,
            Variant.release_date,
            Variant.unit_value_cents,
            Supplier.lead_time_days,
        )
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .outerjoin(Variant, Variant.id == OrderLine.variant_id)
        .outerjoin(Supplier, Supplier.id == Variant.supplier_id)
        .where(OrderLine.shop_id == shop_id, OrderLine.kind != LineKind.UNTRACKED.value)
    )
    wanted: set[int] | None = None
    if line_ids is not None and len(line_ids) > BIG_BATCH:
        # Tens of thousands of ids: one scan of the open lines beats hundreds of IN lists.
        wanted, line_ids = set(line_ids), None
    if line_ids is None:
        stmt = stmt.where(SalesOrder.state == "open")
        rows = [r for r in session.execute(stmt).all() if wanted is None or r[0] in wanted]
    else:
        ids = list(line_ids)
        rows = []
        for i in range(0, len(ids), CHUNK):
            rows.extend(session.execute(stmt.where(OrderLine.id.in_(ids[i : i + CHUNK]))).all())
    if not rows:
        return EtaResult(0, 0, 0)

    peg_dates: dict[int, list[date]] = defaultdict(list)
    peg_stmt = (
        select(Peg.order_line_id, PurchaseOrder.expected_date)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(Peg.shop_id == shop_id)
    )
    if line_ids is None:
        for line_id, expected in session.execute(peg_stmt):
            if wanted is not None and line_id not in wanted:
                continue
            peg_dates[line_id].append(expected)
    else:
        ids = [r[0] for r in rows]
        for i in range(0, len(ids), CHUNK):
            for line_id, expected in session.execute(peg_stmt.where(Peg.order_line_id.in_(ids[i : i + CHUNK]))):
                peg_dates[line_id].append(expected)

    handling = settings.handling_days
    updates: list[dict[str, Any]] = []
    changed = delayed = 0
    for (
        line_id, line_ext, sku, kind, ordered, allocated, backordered, cancelled, pegged, covered_at,
        promised, notified, current, order_ext, release_date, unit_value, lead_time,
    ) in rows:
        if ordered - cancelled <= 0:
            eta = None
        else:
            parts: list[date] = []
            if allocated > 0 and covered_at is not None:
                parts.append(covered_eta(covered_at, handling))
            parts.extend(po_eta(d, handling) for d in peg_dates.get(line_id, ()))
            if backordered - pegged > 0:
                lead = lead_time if lead_time is not None else settings.default_lead_time_days
                parts.append(unpegged_eta(today, lead, handling))
            eta = line_eta(parts, release_date if kind == LineKind.PREORDER.value else None)
        tolerance = settings.tolerance_for(unit_value or 0)
        new_promised, new_notified = promised, notified
        if eta is not None and promised is None:
            new_promised = new_notified = promise(eta, tolerance)
            if backordered > 0:
                changes.line(SHORTFALL_EVENT.get(kind, "backordered"), order_ext,
                             sku=sku, line=line_ext, eta=new_promised.isoformat(), waits_for=kind,
                             release_date=release_date.isoformat() if release_date and kind == "preorder" else None)
                if kind == LineKind.OVERSOLD.value:
                    # The store sold past zero on a variant that allows no backorders: the merchant
                    # must know (the customer got the confirmation above).
                    changes.line("oversold", order_ext, sku=sku, line=line_ext, units=backordered)
        elif eta is not None and is_delay(eta, notified, tolerance):
            new_notified = promise(eta, tolerance)
            changes.line("delayed", order_ext, sku=sku, line=line_ext, reason=changes.reason,
                         **{"from": notified.isoformat() if notified else None, "to": new_notified.isoformat()})
            delayed += 1
        if eta != current and eta is not None:
            changes.line("eta_changed", order_ext, sku=sku, line=line_ext, eta=eta.isoformat())
        if eta != current or new_promised != promised or new_notified != notified:
            changed += 1
            updates.append({"id": line_id, "current_eta": eta, "promised_eta": new_promised, "notified_eta": new_notified})
    if updates:
        update_by_id(session.connection(), line_table(), updates, ("current_eta", "promised_eta", "notified_eta"))
        session.expire_all()
    return EtaResult(len(rows), changed, delayed)
