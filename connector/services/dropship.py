"""Dropship: waiting lines queue per supplier until its quota, then go out as one forward.

A dropship line (``OrderLine.kind == 'dropship'``) is shipped by the supplier straight to the
customer. Sending each line on its own annoys suppliers that want batches, so the lines of a
supplier wait until its quota is reached (``dropship_min_units`` units or
``dropship_min_value_cents`` of value) or the oldest has waited ``dropship_max_wait_days``;
then **one** :class:`DropshipForward` takes every waiting line of that supplier and the outbox
message that sends it is written in the same transaction (kind ``dropship_forward``, target
``supplier``), so a crash can neither lose the forward nor send it twice.

When the supplier reports tracking (portal link, API, merchant), :func:`record_tracking`
marks the lines shipped and writes one ``fulfil_dropship`` message per customer order for the
storefront dispatcher. Its payload (target ``storefront``, subject = the order's external id)::

    {
      "forward": "F-00001",             # the forward's number
      "dropship_forward_id": 7,
      "order_id": "5012345",            # SalesOrder.external_id (platform id)
      "order_graphql_id": "gid://shopify/Order/5012345" | null,
      "order_number": "#1001",
      "lines": [{"line_id": "13001", "sku": "LAMP-1", "quantity": 1}],   # OrderLine.external_id
      "tracking": {"number": "1Z999", "company": "UPS" | null, "url": "https://..." | null}
    }

One message per order (not per call) so a store call that fails is retried for that order
alone; the storefront side creates the fulfilment (Shopify) or completes the order with a
note (WooCommerce).

A line cancelled while it waits simply leaves the queue (the queue is "what still waits").
Cancelled after its forward went out, :func:`tell_supplier_of_cancellation` (called from
``stock_flow.release_line_units``) writes a ``dropship_cancellation`` message (target
``supplier``, subject = the forward's number) that the supplier handlers send the same way as
the forward: CSV by e-mail or signed JSON to the webhook.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.db.engine import Database
from connector.db.models import (
    DropshipForward,
    OrderLine,
    OutboxMessage,
    SalesOrder,
    Shop,
    Supplier,
    SupplierItem,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.allocation import LineKind
from connector.errors import NotFound, ValidationError
from connector.services import events
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.supplier_documents import forward_lines

FORWARD_KIND = "dropship_forward"
FULFIL_KIND = "fulfil_dropship"
CANCEL_KIND = "dropship_cancellation"
MAX_TRACKING_CHARS = 200


@dataclass(frozen=True, slots=True)
class DropshipCheckResult:
    forwards: list[str] = field(default_factory=list)  # numbers of the forwards created
    forwarded_lines: int = 0
    waiting_lines: int = 0  # still queued after the check
    waiting_without_supplier: int = 0


@dataclass(frozen=True, slots=True)
class Tracking:
    """What a supplier reports for a shipment. ``order_number`` limits it to one customer
    order of the forward (suppliers ship per order); None applies it to every order."""

    number: str
    company: str | None = None
    url: str | None = None
    order_number: str | None = None


@dataclass(frozen=True, slots=True)
class TrackingResult:
    forward: str
    status: str
    shipped_lines: int
    shipped_units: int
    messages: int


def forward_reason(
    *,
    units: int,
    value_cents: int,
    min_units: int,
    min_value_cents: int,
    oldest_waiting_since: datetime | None,
    max_wait_days: int | None,
    now: datetime,
) -> str | None:
    """Why a supplier's queue goes out now (``quota`` or ``max_wait``), or None to keep waiting.

    No quota at all (both minimums 0) forwards at once; either minimum reached is enough; a
    queue below quota still goes once its oldest line waited ``max_wait_days``.
    """
    if units <= 0:
        return None
    if min_units <= 0 and min_value_cents <= 0:
        return "quota"
    if (min_units > 0 and units >= min_units) or (min_value_cents > 0 and value_cents >= min_value_cents):
        return "quota"
    if max_wait_days is not None and oldest_waiting_since is not None:
        if now - oldest_waiting_since >= timedelta(days=max_wait_days):
            return "max_wait"
    return None


def _lock_shop(session: Session, shop_id: int) -> Shop:
    # Serializes checks of one shop (PostgreSQL row lock; SQLite writes are serialized anyway),
    # so two racing checks cannot forward the same line or take the same number.
    shop = session.scalars(
        select(Shop).where(Shop.id == shop_id).with_for_update().execution_options(populate_existing=True)
    ).first()
    if shop is None:
        raise NotFound(f"shop {shop_id} not found", id=shop_id)
    return shop


def _outbox(session: Session, shop_id: int, kind: str, target: str, subject: str, key: str,
            payload: dict[str, Any], now: datetime) -> None:
    # events.flush routes kinds through its TARGETS table; these two need their own targets.
    session.add(
        OutboxMessage(
            shop_id=shop_id, kind=kind, target=target, subject=subject, payload=payload,
            idempotency_key=key, state="pending", attempts=0, next_attempt_at=now, created_at=now,
        )
    )


@dataclass(frozen=True, slots=True)
class SupplierQueue:
    """The dropship lines of one supplier that wait for a forward, and what they add up to."""

    supplier: Supplier
    lines: list[OrderLine]
    units: int
    value_cents: int  # at the supplier's cost when known, else at the sale price of the line
    oldest_waiting_since: datetime | None

    def reason(self, now: datetime) -> str | None:
        return forward_reason(
            units=self.units,
            value_cents=self.value_cents,
            min_units=self.supplier.dropship_min_units,
            min_value_cents=self.supplier.dropship_min_value_cents,
            oldest_waiting_since=self.oldest_waiting_since,
            max_wait_days=self.supplier.dropship_max_wait_days,
            now=now,
        )


def waiting_queues(session: Session) -> tuple[dict[int, SupplierQueue], int]:
    """Supplier id → its queue, and the number of waiting lines whose variant has no supplier.

    A line leaves the queue when it is forwarded or has nothing left to wait for (cancelled or
    covered), so a cancellation before the forward needs no special handling.
    """
    rows = session.execute(
        select(OrderLine, Variant.supplier_id)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .join(Variant, Variant.id == OrderLine.variant_id)
        .where(
            OrderLine.kind == LineKind.DROPSHIP.value,
            OrderLine.backordered > 0,
            OrderLine.dropship_forward_id.is_(None),
            SalesOrder.state == "open",
        )
        .order_by(OrderLine.placed_at, OrderLine.id)
    ).tuples().all()
    by_supplier: dict[int, list[OrderLine]] = defaultdict(list)
    without_supplier = 0
    for line, supplier_id in rows:
        if supplier_id is None:
            without_supplier += 1
        else:
            by_supplier[supplier_id].append(line)
    if not by_supplier:
        return {}, without_supplier
    suppliers = {s.id: s for s in session.scalars(select(Supplier).where(Supplier.id.in_(list(by_supplier))))}
    costs: dict[tuple[int, str | None], int] = {
        (supplier_id, sku): cost
        for supplier_id, sku, cost in session.execute(
            select(SupplierItem.supplier_id, SupplierItem.sku, SupplierItem.unit_cost_cents).where(
                SupplierItem.supplier_id.in_(list(by_supplier))
            )
        ).tuples()
    }
    queues = {
        supplier_id: SupplierQueue(
            supplier=suppliers[supplier_id],
            lines=lines,
            units=sum(ln.backordered for ln in lines),
            value_cents=sum(ln.backordered * costs.get((supplier_id, ln.sku), ln.unit_price_cents) for ln in lines),
            oldest_waiting_since=min((ln.waiting_since or ln.placed_at) for ln in lines),
        )
        for supplier_id, lines in sorted(by_supplier.items())
    }
    return queues, without_supplier


def _create_forward(
    session: Session, shop: Shop, queue: SupplierQueue, reason: str, now: datetime
) -> DropshipForward:
    """One forward taking every line of the queue, and its outbox message, in this transaction."""
    shop.forward_sequence += 1
    supplier_id = queue.supplier.id
    forward = DropshipForward(
        shop_id=shop.id, supplier_id=supplier_id, number=f"F-{shop.forward_sequence:05d}",
        status="pending", reason=reason, created_at=now,
    )
    session.add(forward)
    session.flush()
    for line in queue.lines:
        line.dropship_forward_id = forward.id
    _outbox(
        session, shop.id, FORWARD_KIND, "supplier", forward.number, f"{FORWARD_KIND}:{forward.number}",
        {
            "number": forward.number,
            "dropship_forward_id": forward.id,
            "supplier_id": supplier_id,
            "reason": reason,
            "lines": len(queue.lines),
            "units": queue.units,
        },
        now,
    )
    return forward


def dropship_check(db: Database, shop_id: int, now: datetime) -> DropshipCheckResult:
    """Forward each supplier's queue of dropship lines whose quota or max wait is reached."""
    with UnitOfWork(db, shop_id) as uow:
        session = uow.session
        shop = _lock_shop(session, shop_id)
        queues, without_supplier = waiting_queues(session)
        if not queues:
            return DropshipCheckResult(waiting_without_supplier=without_supplier)
        created: list[str] = []
        forwarded = waiting = 0
        for queue in queues.values():
            reason = queue.reason(now)
            if reason is None:
                waiting += len(queue.lines)
                continue
            created.append(_create_forward(session, shop, queue, reason, now).number)
            forwarded += len(queue.lines)
        uow.commit()
        return DropshipCheckResult(created, forwarded, waiting, without_supplier)


def forward_now(db: Database, shop_id: int, supplier_id: int, now: datetime) -> tuple[int, str]:
    """The merchant forwards a supplier's queue below its quota; returns the forward's id and number."""
    with UnitOfWork(db, shop_id) as uow:
        session = uow.session
        shop = _lock_shop(session, shop_id)
        uow.get(Supplier, supplier_id)  # NotFound for another shop's supplier
        queues, _ = waiting_queues(session)
        queue = queues.get(supplier_id)
        if queue is None:
            raise ValidationError("no dropship order waits for this supplier", field="supplier")
        forward = _create_forward(session, shop, queue, "manual", now)
        uow.commit()
        return forward.id, forward.number


def tell_supplier_of_cancellation(session: Session, line: OrderLine, units: int, now: datetime) -> bool:
    """``units`` of a forwarded line were cancelled: queue a cancellation for the supplier.

    Called by :func:`connector.services.stock_flow.release_line_units` in the cancelling
    transaction. Nothing is sent while the forward's own message was never attempted: the
    forward document is built at delivery time from what still waits, so it leaves the units
    out. Once an attempt started (or the forward went out) the supplier may hold them, so a
    ``dropship_cancellation`` message goes through the outbox, keyed by the line's cumulative
    cancelled count so a replayed cancellation does not tell the supplier twice. True if queued.
    """
    if units <= 0 or line.dropship_forward_id is None:
        return False
    forward = session.get(DropshipForward, line.dropship_forward_id)
    if forward is None or forward.status in ("failed", "shipped"):
        return False
    if forward.status == "pending":
        # Locked so a delivery claiming the forward at this moment is either seen or waits.
        message = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.shop_id == forward.shop_id,
                   OutboxMessage.idempotency_key == f"{FORWARD_KIND}:{forward.number}")
            .with_for_update()
        ).first()
        if message is None or (message.state == "pending" and message.attempts == 0):
            return False
    order = line.order
    key = f"{CANCEL_KIND}:{forward.number}:{line.id}:{line.cancelled}"
    exists = session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.shop_id == forward.shop_id, OutboxMessage.idempotency_key == key)
    ).first()
    if exists is not None:
        return False
    _outbox(
        session, forward.shop_id, CANCEL_KIND, "supplier", forward.number, key,
        {
            "number": forward.number,
            "dropship_forward_id": forward.id,
            "order_id": order.external_id,
            "order_number": order.number,
            "line_id": line.id,
            "sku": line.sku,
            "quantity": units,
        },
        now,
    )
    return True


def _find_forward(session: Session, forward: int | str) -> DropshipForward:
    stmt = select(DropshipForward).where(
        DropshipForward.id == forward if isinstance(forward, int) else DropshipForward.number == forward
    )
    row = session.scalars(stmt.with_for_update()).first()
    if row is None:
        raise NotFound(f"dropship forward {forward} not found", field="forward")
    return row


def mark_forward_sent(db: Database, shop_id: int, forward_id: int, now: datetime) -> None:
    """The forward reached the supplier (called by the delivery after a successful send)."""
    with UnitOfWork(db, shop_id) as uow:
        forward = _find_forward(uow.session, forward_id)
        if forward.status == "pending":
            forward.status = "sent"
            forward.sent_at = now
            uow.commit()


def _clean_tracking(tracking: Tracking) -> Tracking:
    number = tracking.number.strip()
    if not number:
        raise ValidationError("enter the tracking number", field="tracking_number")
    if len(number) > MAX_TRACKING_CHARS:
        raise ValidationError("the tracking number is too long", field="tracking_number")
    url = (tracking.url or "").strip() or None
    if url is not None and (not url.lower().startswith(("https://", "http://")) or len(url) > 1000):
        raise ValidationError("the tracking link must start with https:// or http://", field="tracking_url")
    company = (tracking.company or "").strip()[:MAX_TRACKING_CHARS] or None
    order = (tracking.order_number or "").strip() or None
    return Tracking(number, company, url, order)


def record_tracking(
    db: Database, shop_id: int, forward: int | str, tracking: Tracking, now: datetime
) -> TrackingResult:
    """The supplier shipped (part of) a forward: mark its lines shipped and queue the store
    fulfilment. ``forward`` is the forward's id or number. Repeating a report changes nothing."""
    tracking = _clean_tracking(tracking)
    with UnitOfWork(db, shop_id) as uow:
        session = uow.session
        shop = uow.shop()
        fw = _find_forward(session, forward)
        if fw.status == "failed":
            raise ValidationError(f"{fw.number} failed and cannot be shipped", field="forward")
        rows = forward_lines(session, fw.id)
        if tracking.order_number is not None and not any(o.number == tracking.order_number for _, o in rows):
            raise ValidationError(f"order {tracking.order_number} is not part of {fw.number}", field="order_number")
        changes = Changes(now)
        by_order: dict[int, tuple[SalesOrder, list[tuple[OrderLine, int]]]] = {}
        for line, order in rows:
            if tracking.order_number is not None and order.number != tracking.order_number:
                continue
            if line.backordered <= 0 or order.state != "open":
                continue
            n = line.backordered
            line.allocated += n
            line.backordered = 0
            line.fulfilled += n
            line.last_covered_at = now
            line.waiting_since = None
            changes.touch(line.id)
            by_order.setdefault(order.id, (order, []))[1].append((line, n))
        info = {"number": tracking.number, "company": tracking.company, "url": tracking.url}
        for order, shipped in by_order.values():
            payload = {
                "forward": fw.number,
                "dropship_forward_id": fw.id,
                "order_id": order.external_id,
                "order_graphql_id": order.graphql_id,
                "order_number": order.number,
                "lines": [{"line_id": ln.external_id, "sku": ln.sku, "quantity": n} for ln, n in shipped],
                "tracking": info,
            }
            digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
            _outbox(session, shop.id, FULFIL_KIND, "storefront", order.external_id,
                    f"{FULFIL_KIND}:{order.external_id}:{digest}", payload, now)
        if by_order:
            parcel = {
                **info,
                "order_numbers": [o.number for o, _ in by_order.values()],
                "recorded_at": now.isoformat(),
                "lines": [{"id": ln.id, "quantity": n} for _, shipped in by_order.values() for ln, n in shipped],
            }
            previous = dict(fw.tracking or {})
            # A new dict, not an in-place append: the JSON column only notices assignment.
            fw.tracking = {**previous, "parcels": [*previous.get("parcels", []), parcel]}
        if all(line.backordered == 0 or order.state != "open" for line, order in rows):
            fw.status = "shipped"
        elif by_order and fw.status == "pending":
            fw.status = "sent"  # the supplier ships from it, so it reached them (however it went)
        if fw.status != "pending" and fw.sent_at is None:
            fw.sent_at = now
        recompute_etas(session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
        events.flush(session, shop.id, changes)
        uow.commit()
        return TrackingResult(
            forward=fw.number,
            status=fw.status,
            shipped_lines=sum(len(s) for _, s in by_order.values()),
            shipped_units=sum(n for _, s in by_order.values() for _, n in s),
            messages=len(by_order),
        )
