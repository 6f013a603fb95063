"""Read model of the merchant's dropship pages: forwards, one forward, the waiting queues.

Every read goes through the unit of work, so it is scoped to the signed-in shop: another
shop's forward id reads as not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from connector.db.engine import Database
from connector.db.models import DropshipForward, OrderLine, OutboxMessage, Supplier
from connector.db.uow import UnitOfWork
from connector.errors import NotFound
from connector.services.dropship import CANCEL_KIND, FORWARD_KIND, waiting_queues
from connector.services.supplier_documents import DropshipForwardData, dropship_forward_data

FORWARD_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class ForwardSummary:
    id: int
    number: str
    supplier: str
    status: str
    reason: str
    created_at: datetime
    sent_at: datetime | None
    lines: int
    units: int  # still to ship (cancelled units left the forward)
    ship_tos: int  # customer orders, each with its own ship-to address
    parcels: int  # tracking reports received
    cancellations: int  # cancellation documents written for the supplier


@dataclass(frozen=True, slots=True)
class DocumentState:
    """One outbox message that carries (part of) the forward to the supplier."""

    id: int
    kind: str  # dropship_forward | dropship_cancellation
    state: str  # pending | sending | sent | dead | skipped
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime
    order_number: str | None
    sku: str | None
    quantity: int | None


@dataclass(frozen=True, slots=True)
class ForwardView:
    forward: DropshipForwardData
    orders: list[tuple[str, list[int]]]  # order number → indexes into forward.lines, in order
    cancelled: dict[int, int]  # line id → units cancelled
    documents: list[DocumentState]


@dataclass(frozen=True, slots=True)
class QueueView:
    supplier_id: int
    supplier: str
    lines: int
    orders: int
    units: int
    value_cents: int
    min_units: int
    min_value_cents: int
    oldest_waiting_since: datetime | None
    waited_days: float | None
    max_wait_days: int | None
    due: str | None  # quota | max_wait when the next check forwards it


def list_forwards(db: Database, shop_id: int) -> list[ForwardSummary]:
    """The shop's forwards, newest first."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        session = uow.session
        per_forward = {
            fid: (lines, units, orders)
            for fid, lines, units, orders in session.execute(
                select(OrderLine.dropship_forward_id, func.count(OrderLine.id), func.sum(OrderLine.backordered),
                       func.count(func.distinct(OrderLine.order_id)))
                .where(OrderLine.dropship_forward_id.is_not(None))
                .group_by(OrderLine.dropship_forward_id)
            ).tuples()
        }
        cancellations = dict(
            session.execute(
                select(OutboxMessage.subject, func.count(OutboxMessage.id))
                .where(OutboxMessage.kind == CANCEL_KIND)
                .group_by(OutboxMessage.subject)
            ).tuples().all()
        )
        rows = session.execute(
            select(DropshipForward, Supplier.name)
            .join(Supplier, Supplier.id == DropshipForward.supplier_id)
            .order_by(DropshipForward.created_at.desc(), DropshipForward.id.desc())
            .limit(FORWARD_PAGE_SIZE)
        ).tuples().all()
        out = []
        for fw, supplier in rows:
            lines, units, orders = per_forward.get(fw.id, (0, 0, 0))
            out.append(ForwardSummary(
                id=fw.id, number=fw.number, supplier=supplier, status=fw.status, reason=fw.reason,
                created_at=fw.created_at, sent_at=fw.sent_at, lines=int(lines), units=int(units or 0),
                ship_tos=int(orders), parcels=len((fw.tracking or {}).get("parcels", [])),
                cancellations=int(cancellations.get(fw.number, 0)),
            ))
        return out


def forward_view(db: Database, shop_id: int, forward_id: int) -> ForwardView:
    """One forward: its orders with lines and ship-to, and its documents' outbox states."""
    forward = dropship_forward_data(db, shop_id, forward_id)  # NotFound for another shop's id
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        session = uow.session
        cancelled = dict(
            session.execute(
                select(OrderLine.id, OrderLine.cancelled).where(OrderLine.dropship_forward_id == forward.id)
            ).tuples().all()
        )
        messages = uow.all(
            select(OutboxMessage)
            .where(OutboxMessage.kind.in_((FORWARD_KIND, CANCEL_KIND)), OutboxMessage.subject == forward.number)
            .order_by(OutboxMessage.id)
        )
        documents = [
            DocumentState(
                id=m.id, kind=m.kind, state=m.state, attempts=m.attempts, last_error=m.last_error,
                created_at=m.created_at, sent_at=m.sent_at, next_attempt_at=m.next_attempt_at,
                order_number=(m.payload or {}).get("order_number"), sku=(m.payload or {}).get("sku"),
                quantity=(m.payload or {}).get("quantity") if m.kind == CANCEL_KIND else None,
            )
            for m in messages
        ]
    orders: dict[str, list[int]] = {}
    for index, line in enumerate(forward.lines):
        orders.setdefault(line.order_number, []).append(index)
    return ForwardView(forward, list(orders.items()), {k: v for k, v in cancelled.items() if v}, documents)


def forward_document(db: Database, shop_id: int, forward_id: int, message_id: int) -> DocumentState:
    """One document of the forward (NotFound when the message belongs to another forward)."""
    for document in forward_view(db, shop_id, forward_id).documents:
        if document.id == message_id:
            return document
    raise NotFound(f"message {message_id} is not a document of this forward", id=message_id)


def dropship_queues(db: Database, shop_id: int, now: datetime) -> list[QueueView]:
    """Each supplier's waiting dropship lines against its quota and maximum wait."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        queues, _ = waiting_queues(uow.session)
        out = []
        for supplier_id, q in queues.items():
            waited = (now - q.oldest_waiting_since).total_seconds() / 86400 if q.oldest_waiting_since else None
            out.append(QueueView(
                supplier_id=supplier_id, supplier=q.supplier.name, lines=len(q.lines),
                orders=len({ln.order_id for ln in q.lines}), units=q.units, value_cents=q.value_cents,
                min_units=q.supplier.dropship_min_units, min_value_cents=q.supplier.dropship_min_value_cents,
                oldest_waiting_since=q.oldest_waiting_since, waited_days=waited,
                max_wait_days=q.supplier.dropship_max_wait_days, due=q.reason(now),
            ))
        return sorted(out, key=lambda v: v.supplier.casefold())
