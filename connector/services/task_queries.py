"""The dashboard's "Needs you" list: the merchant records the services leave in the outbox.

Messages whose target is ``merchant`` never leave the system (``bootstrap.dispatch`` delivers
them to nobody): the outbox row *is* the record. This module reads them as tasks and lets the
merchant tick one off.

Where "done" lives: in the same row's payload (``payload["done_at"]`` and ``"done_by"``), not in
``state``. ``state`` belongs to the outbox delivery: a task may still be ``pending`` when the
merchant sees it (``cancellation_requested`` also pushes the order's status to the store when
delivered), and a state the outbox does not know would stop that delivery. The outbox writes
only its own columns (``state``, ``attempts``, ``sent_at``, ...) with conditional UPDATEs, so a
payload written here is never overwritten by a delivery running at the same time. The payload's
idempotency key was computed once, at insert, and is not affected either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from connector.db.engine import Database
from connector.db.models import OutboxMessage, PurchaseOrder
from connector.db.uow import UnitOfWork
from connector.errors import NotFound

# Kinds shown as tasks. ``customer_data_report`` (a privacy request) is on the privacy pages'
# side of things but still needs the merchant, so it is a task as well.
TASK_KINDS = ("cancellation_requested", "store_cancellation_failed", "wait_consent", "oversold", "po_ready",
              "stock_short", "customer_data_report")
# PO statuses in which a po_ready task still asks for something (approve and send).
AWAITING_APPROVAL = ("draft", "ready")
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    kind: str
    title: str  # what happened, for the merchant
    todo: str  # what to do about it
    order_number: str | None
    po_id: int | None
    po_number: str | None
    sku: str | None
    created_at: datetime
    detail: str | None  # the customer-facing words (a reason, an error) when there are some


def _not_done() -> ColumnElement[bool]:
    return OutboxMessage.payload["done_at"].as_string().is_(None)


def _is_task() -> ColumnElement[bool]:
    # A cancellation recorded in "storefront" mode was cancelled and refunded on the store by its
    # own message; only "dashboard" mode leaves the refund to the merchant (failures of the store
    # come back as store_cancellation_failed).
    mode = OutboxMessage.payload["mode"].as_string()
    return (
        (OutboxMessage.target == "merchant")
        & OutboxMessage.kind.in_(TASK_KINDS)
        & or_(OutboxMessage.kind != "cancellation_requested", mode.is_(None), mode != "storefront")
    )


def _units(lines: Any) -> int:
    return sum(int(ln.get("units") or 0) for ln in lines or [] if isinstance(ln, dict))


def _skus(lines: Any) -> str:
    return ", ".join(sorted({str(ln.get("sku")) for ln in lines or [] if isinstance(ln, dict) and ln.get("sku")}))


def _describe(m: OutboxMessage, po_ids: dict[str, tuple[int, str]]) -> Task | None:
    p: dict[str, Any] = dict(m.payload or {})
    number = p.get("number") or p.get("order") or m.subject
    order = str(number) if number else None
    po_id = po_number = sku = detail = None
    if m.kind == "cancellation_requested":
        what = f"{_units(p.get('lines'))} waiting unit(s) of order {order} ({_skus(p.get('lines'))})"
        # A customer's link names itself; without one the system cancelled (the 30-day notice
        # left unanswered), and the reason says why.
        title = f"The customer cancelled {what}" if p.get("link") else f"Cancelled {what}"
        todo = "Cancel and refund these items in your store."
        detail = p.get("reason")
    elif m.kind == "store_cancellation_failed":
        title = f"The store did not cancel and refund order {order} ({_skus(p.get('lines'))})"
        todo = str(p.get("todo") or "Cancel and refund these items in your store.").rstrip(".").capitalize() + "."
        detail = p.get("error")
    elif m.kind == "wait_consent":
        title = f"The customer of order {order} agreed to keep waiting after the 30-day notice"
        todo = "Nothing to cancel; keep the order and its new date."
    elif m.kind == "oversold":
        sku = _skus(p.get("lines")) or None
        title = f"Order {order} sold {_units(p.get('lines'))} unit(s) of {sku} past stock that allows no backorders"
        todo = "Order more, or cancel the units the store cannot deliver."
    elif m.kind == "po_ready":
        found = po_ids.get(str(m.subject))
        if found is None:  # sent between the two queries: the task answered itself
            return None
        po_id, po_number = found
        order = None
        title = f"Purchase order {po_number} to {p.get('supplier') or 'the supplier'} is ready"
        todo = "Review, approve and send it."
    elif m.kind == "stock_short":
        sku = str(p.get("sku") or m.subject)
        order = None
        title = f"{sku}: {p.get('on_hand')} on hand, {p.get('held')} held for orders"
        todo = "Count the stock: orders hold more units than the store has."
    else:  # customer_data_report
        order = None
        raw_customer = p.get("customer")
        customer: dict[str, Any] = raw_customer if isinstance(raw_customer, dict) else {}
        title = f"A customer asked for the data kept on them ({customer.get('email') or 'no e-mail'})"
        todo = "Send them the report (see the API's outbox, payload included)."
    return Task(m.id, m.kind, title, todo, order, po_id, po_number, sku, m.created_at,
                str(detail) if detail else None)


def _still_asks() -> ColumnElement[bool]:
    # po_ready's subject is the PO number (consolidation); once the PO is sent, cancelled or
    # gone, the task answered itself and is not counted or shown.
    awaiting = (select(PurchaseOrder.id).where(PurchaseOrder.number == OutboxMessage.subject,
                                               PurchaseOrder.shop_id == OutboxMessage.shop_id,
                                               PurchaseOrder.status.in_(AWAITING_APPROVAL)).exists())
    return or_(OutboxMessage.kind != "po_ready", awaiting)


def open_tasks(db: Database, shop_id: int, limit: int = DEFAULT_LIMIT) -> tuple[list[Task], int]:
    """The shop's open tasks, newest first (at most ``limit``), and how many are open in all."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        s = uow.session
        where = _is_task() & _not_done() & _still_asks()
        total = int(s.scalar(select(func.count()).select_from(OutboxMessage).where(where)) or 0)
        rows = list(s.scalars(select(OutboxMessage).where(where)
                              .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()).limit(limit)))
        numbers = {str(m.subject) for m in rows if m.kind == "po_ready"}
        po_ids = {
            number: (po_id, number)
            for po_id, number in s.execute(select(PurchaseOrder.id, PurchaseOrder.number).where(
                PurchaseOrder.number.in_(numbers), PurchaseOrder.status.in_(AWAITING_APPROVAL)))
        } if numbers else {}
        tasks = [t for t in (_describe(m, po_ids) for m in rows) if t is not None]
        return tasks, total


def mark_task_done(db: Database, shop_id: int, task_id: int, who: str, now: datetime) -> None:
    """Hide a task for the shop (a second click changes nothing). Another shop's id, or a row
    that is not a task, is NotFound."""
    with UnitOfWork(db, shop_id) as uow:
        message = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.id == task_id, _is_task())).first()
        if message is None:
            raise NotFound(f"task {task_id} does not exist", field="task")
        if (message.payload or {}).get("done_at"):
            return
        # A new dict: the JSON column does not track changes made inside the old one.
        message.payload = {**(message.payload or {}), "done_at": now.isoformat(), "done_by": who[:255]}
        uow.commit()


__all__ = ["TASK_KINDS", "Task", "mark_task_done", "open_tasks"]
