"""The thirty-day notice (FTC Mail Order Rule): customers who have waited 30 days without a
firm date are offered the choice to keep waiting or cancel.

A line has no firm date when some of its waiting units are not pegged to any purchase order,
or are pegged to one whose expected date is still only the supplier's lead time
(``expected_date_source == 'lead_time'``: nobody confirmed it). Preorders wait for a release
date the customer knew when buying, so they are left out.

One notice per order, ever: the outbox idempotency key is ``thirty_day_notice:<order>``, so the
daily run (and any rerun) finds it already written. The e-mail goes out through the outbox like
every other, built from the lines as they are when it is delivered.

The notice offers two answers. *Keep waiting* is a signed link (same signing as the cancellation
link, its own salt) whose POST records the customer's consent as a ``wait_consent`` message to
the merchant, key ``wait_consent:<order>``: recorded once, no table. *Cancel* is the ordinary
cancellation link. When ``Shop.settings['thirty_day_auto_cancel_days']`` is a number N, the daily
run cancels (like a customer's cancellation: released to the next order, refunded on the store
in "storefront" mode) what still waits without a firm date N days after the notice went out
with no consent, and tells the customer (``auto_cancelled`` -> the cancellation notice).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, Peg, PurchaseOrder, PurchaseOrderLine, SalesOrder
from connector.db.uow import UnitOfWork
from connector.domain.allocation import LineKind
from connector.errors import NotFound, SignatureError, ValidationError
from connector.services.cancellation import CancelLink, LinkExpired, cancel_waiting_units
from connector.services.notifications import channel_for

KIND = "thirty_day_notice"
CONSENT_KIND = "wait_consent"
AUTO_CANCEL_KIND = "auto_cancelled"
KEEP_SALT = "backorder-keep-waiting-link"
AUTO_CANCEL_REASON = "Cancelled: no answer to the 30-day notice (FTC mail order rule)"
WAIT = timedelta(days=30)
NOTICE_KINDS = (LineKind.BACKORDER.value, LineKind.OVERSOLD.value, LineKind.DROPSHIP.value)


def _key(order_external_id: str) -> str:
    return f"{KIND}:{order_external_id}"


def _consent_key(order_external_id: str) -> str:
    return f"{CONSENT_KIND}:{order_external_id}"


@dataclass(frozen=True, slots=True)
class ConsentResult:
    order_number: str
    already: bool  # the consent was recorded before (a second click changes nothing)


def auto_cancel_days(settings: Mapping[str, Any] | None) -> int | None:
    """``thirty_day_auto_cancel_days`` when it is a whole number of days >= 1, else None (never)."""
    days = (settings or {}).get("thirty_day_auto_cancel_days")
    return days if isinstance(days, int) and not isinstance(days, bool) and days >= 1 else None


def _keep_serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValidationError("a secret key is needed to sign keep-waiting links", field="secret_key")
    return URLSafeSerializer(secret, salt=KEEP_SALT)


def sign_keep_link(secret: str, link: CancelLink) -> str:
    """The token of a keep-waiting link (deterministic, like the cancellation link's)."""
    payload = [link.shop_id, link.order_external_id, link.link_id, link.expires.isoformat()]
    return str(_keep_serializer(secret).dumps(payload))


def read_keep_link(secret: str, token: str, now: datetime) -> CancelLink:
    """Verify ``token``; SignatureError if tampered with (or a cancellation token), LinkExpired if too old."""
    try:
        shop_id, order, link_id, expires = _keep_serializer(secret).loads(token)
        link = CancelLink(int(shop_id), str(order), str(link_id), date.fromisoformat(expires))
    except (BadSignature, ValueError, TypeError) as exc:
        raise SignatureError("this link is not valid") from exc
    if now.date() > link.expires:
        raise LinkExpired(f"this link expired on {link.expires.isoformat()}", field="token")
    return link


def preview_wait_consent(db: Database, secret: str, token: str, now: datetime) -> str:
    """The order number a keep-waiting link is about (for its page); same checks as the consent."""
    link = read_keep_link(secret, token, now)
    with UnitOfWork(db, link.shop_id, readonly=True) as uow:
        order = uow.find(SalesOrder, external_id=link.order_external_id)
        if order is None:
            raise NotFound("this order no longer exists", field="order")
        return order.number


def record_wait_consent(db: Database, secret: str, token: str, now: datetime) -> ConsentResult:
    """Record that the customer agrees to keep waiting (once per order; a repeat is a no-op)."""
    link = read_keep_link(secret, token, now)
    with UnitOfWork(db, link.shop_id) as uow:
        order = uow.find(SalesOrder, external_id=link.order_external_id)
        if order is None:
            raise NotFound("this order no longer exists", field="order")
        number = order.number
        key = _consent_key(order.external_id)
        if uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
            return ConsentResult(number, already=True)
        uow.add(OutboxMessage(
            kind=CONSENT_KIND, target="merchant", subject=order.external_id,
            payload={"order": order.external_id, "number": number, "link": link.link_id,
                     "consented_at": now.isoformat()},
            idempotency_key=key, state="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
        try:
            uow.commit()
        except IntegrityError:  # a concurrent click recorded it first
            return ConsentResult(number, already=True)
        return ConsentResult(number, already=False)


def _firm_units(uow: UnitOfWork, line_ids: list[int]) -> dict[int, int]:
    """Line id -> units pegged to a purchase order whose date a supplier or merchant confirmed."""
    firm: dict[int, int] = defaultdict(int)
    for line_id, units in uow.session.execute(
        select(Peg.order_line_id, Peg.units)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(Peg.order_line_id.in_(line_ids), PurchaseOrder.expected_date_source != "lead_time")
    ).tuples():
        firm[line_id] += units
    return firm


def auto_cancel_unanswered(db: Database, shop_id: int, now: datetime) -> int | None:
    """Cancel what still waits without a firm date N days after an unanswered thirty-day notice
    (N = ``thirty_day_auto_cancel_days``). Returns how many orders, None when the shop never
    cancels automatically."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        settings = uow.shop().settings
        days = auto_cancel_days(settings)
        if days is None:
            return None
        if channel_for(settings, KIND) == "off":
            # Nobody was asked: cancelling without the notice would break the rule it serves.
            return 0
        notices = uow.session.execute(
            select(OutboxMessage.subject, OutboxMessage.sent_at)
            .where(OutboxMessage.kind == KIND, OutboxMessage.sent_at.is_not(None),
                   OutboxMessage.sent_at <= now - timedelta(days=days))
        ).all()
        done = set(uow.session.scalars(
            select(OutboxMessage.subject).where(OutboxMessage.kind.in_((CONSENT_KIND, AUTO_CANCEL_KIND)))
        ))
    cancelled = 0
    for order_ext, _sent in notices:
        if order_ext is None or order_ext in done:
            continue
        cancelled += _auto_cancel_order(db, shop_id, str(order_ext), now)
    return cancelled


def _auto_cancel_order(db: Database, shop_id: int, order_ext: str, now: datetime) -> int:
    with UnitOfWork(db, shop_id) as uow:
        order = uow.find(SalesOrder, external_id=order_ext)
        if order is None or order.state != "open":
            return 0
        waiting = [ln for ln in order.lines if ln.backordered > 0 and ln.kind in NOTICE_KINDS]
        firm = _firm_units(uow, [ln.id for ln in waiting])
        # Units with a confirmed date are not "without a firm date" any more: they keep waiting.
        lines = [ln for ln in waiting if firm[ln.id] < ln.backordered]
        if not lines:
            return 0
        result = cancel_waiting_units(uow, order, now, key=f"cancellation_requested:{AUTO_CANCEL_KIND}:{order_ext}",
                                      reason=AUTO_CANCEL_REASON, lines=lines)
        uow.add(OutboxMessage(
            kind=AUTO_CANCEL_KIND, target="customer", subject=order_ext,
            payload={"order": order_ext, "lines": [{"line": ln.external_id, "sku": ln.sku} for ln in lines],
                     "units": result.cancelled_units},
            idempotency_key=f"{AUTO_CANCEL_KIND}:{order_ext}", state="pending", attempts=0, next_attempt_at=now,
            created_at=now,
        ))
        uow.commit()
        return 1


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
        firm = _firm_units(uow, [r[0] for r in rows])
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


__all__ = [
    "ConsentResult",
    "auto_cancel_days",
    "auto_cancel_unanswered",
    "preview_wait_consent",
    "queue_thirty_day_notices",
    "read_keep_link",
    "record_wait_consent",
    "sign_keep_link",
]
