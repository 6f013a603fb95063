"""One-click cancellation of the still-waiting units of an order, from a signed customer link.

The link carries a token signed with the app's secret (itsdangerous, HMAC-SHA1 over a compact
JSON payload): the shop, the order, a link id (the outbox message whose e-mail carried it) and
an expiry date. Nothing in it is secret, but nothing in it can be changed without the key.

Single use is enforced by the outbox: the request is recorded as a ``cancellation_requested``
message (target merchant) whose idempotency key is derived from the link id, written in the
same transaction as the cancellation. The unique ``(shop_id, idempotency_key)`` constraint then
refuses a second use even when two clicks race. No table, no migration.

Only units that still wait are cancelled (never units already allocated or shipped); freed PO
pegs become surplus that the next consolidation or receipt hands to the next waiting customer
(:func:`connector.services.stock_flow.release_line_units`, the mechanism behind
``cancel_order_units``). ``Shop.settings['cancellation_mode']`` says what happens next:
``"dashboard"`` (default) leaves the request as a task for the merchant (refund in the store),
``"storefront"`` also writes a ``store_cancellation`` message: the dispatcher cancels and
refunds those units on the store (Storefront.cancel_lines), retried through the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, SalesOrder
from connector.db.uow import UnitOfWork
from connector.domain.allocation import LineKind
from connector.errors import NotFound, SignatureError, ValidationError
from connector.services import events
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.stock_flow import release_line_units

SALT = "backorder-cancel-link"
KIND = "cancellation_requested"
STORE_KIND = "store_cancellation"  # cancel and refund on the store (``cancellation_mode`` "storefront")
CUSTOMER_REASON = "Cancelled at the customer's request: backordered items not shipped yet"
MODES = ("dashboard", "storefront")
DEFAULT_LINK_DAYS = 30
# Kinds whose waiting units a customer may cancel.
CANCELLABLE_KINDS = (LineKind.BACKORDER.value, LineKind.PREORDER.value, LineKind.OVERSOLD.value,
                     LineKind.DROPSHIP.value)


@dataclass(frozen=True, slots=True)
class CancelLink:
    shop_id: int
    order_external_id: str
    link_id: str
    expires: date  # the last day the link works


@dataclass(frozen=True, slots=True)
class CancelPreview:
    order_number: str
    lines: tuple[tuple[str, str | None, int], ...]  # (title, sku, waiting units)


@dataclass(frozen=True, slots=True)
class CancelResult:
    order_number: str
    cancelled_units: int
    mode: str


class LinkUsed(ValidationError):
    code = "link_used"


class LinkExpired(ValidationError):
    code = "link_expired"


def _serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValidationError("a secret key is needed to sign cancellation links", field="secret_key")
    return URLSafeSerializer(secret, salt=SALT)


def sign_cancel_link(secret: str, link: CancelLink) -> str:
    """The token for ``link`` (deterministic: the same link always gives the same token, so a
    re-rendered e-mail is byte-identical)."""
    payload = [link.shop_id, link.order_external_id, link.link_id, link.expires.isoformat()]
    return str(_serializer(secret).dumps(payload))


def link_expiry(issued_at: datetime, settings: dict[str, Any] | None) -> date:
    days = (settings or {}).get("cancellation_link_days", DEFAULT_LINK_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        days = DEFAULT_LINK_DAYS
    return issued_at.date() + timedelta(days=days)


def read_cancel_link(secret: str, token: str, now: datetime) -> CancelLink:
    """Verify ``token``; raises SignatureError if it was tampered with, LinkExpired if too old."""
    try:
        raw = _serializer(secret).loads(token)
        shop_id, order, link_id, expires = raw
        link = CancelLink(int(shop_id), str(order), str(link_id), date.fromisoformat(expires))
    except (BadSignature, ValueError, TypeError) as exc:
        raise SignatureError("this cancellation link is not valid") from exc
    if now.date() > link.expires:
        raise LinkExpired(f"this cancellation link expired on {link.expires.isoformat()}", field="token")
    return link


def _idempotency_key(link: CancelLink) -> str:
    return f"{KIND}:{link.order_external_id}:{link.link_id}"


def _waiting_lines(order: SalesOrder) -> list[OrderLine]:
    return [ln for ln in order.lines if ln.backordered > 0 and ln.kind in CANCELLABLE_KINDS]


def _load(uow: UnitOfWork, link: CancelLink) -> SalesOrder:
    order = uow.find(SalesOrder, external_id=link.order_external_id)
    if order is None:
        raise NotFound("this order no longer exists", field="order")
    if uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == _idempotency_key(link))):
        raise LinkUsed("this cancellation link was already used", field="token")
    return order


def preview_cancellation(db: Database, secret: str, token: str, now: datetime) -> CancelPreview:
    """What the link would cancel (for the confirmation page); same checks as the cancel."""
    link = read_cancel_link(secret, token, now)
    with UnitOfWork(db, link.shop_id, readonly=True) as uow:
        order = _load(uow, link)
        return CancelPreview(order.number, tuple((ln.title, ln.sku, ln.backordered) for ln in _waiting_lines(order)))


def cancel_from_link(db: Database, secret: str, token: str, now: datetime) -> CancelResult:
    """Cancel the order's waiting units and record the request, in one transaction.

    Refused (nothing changes) when the token is tampered with (SignatureError), expired
    (LinkExpired), already used (LinkUsed), or when nothing waits any more (ValidationError).
    """
    link = read_cancel_link(secret, token, now)
    with UnitOfWork(db, link.shop_id) as uow:
        order = _load(uow, link)
        if order.state != "open":
            raise ValidationError(f"order {order.number} is {order.state}; nothing to cancel", field="order")
        if not _waiting_lines(order):
            raise ValidationError(f"nothing in order {order.number} is waiting any more", field="order")
        result = cancel_waiting_units(uow, order, now, key=_idempotency_key(link), link_id=link.link_id,
                                      reason=CUSTOMER_REASON)
        try:
            uow.commit()
        except IntegrityError:  # a concurrent click won the race
            raise LinkUsed("this cancellation link was already used", field="token") from None
        return result


def cancel_waiting_units(
    uow: UnitOfWork, order: SalesOrder, now: datetime, *, key: str, reason: str, link_id: str | None = None,
    lines: list[OrderLine] | None = None,
) -> CancelResult:
    """Cancel the waiting units of ``order`` (or of ``lines``) inside ``uow``, release them to the
    next waiting orders and write the outbox messages that follow (not committed).

    ``key`` is the merchant record's idempotency key (``cancellation_requested``): the unique
    constraint refuses a second cancellation under the same key. In ``storefront`` mode a
    ``store_cancellation`` message (key derived from ``key``) asks the dispatcher to cancel and
    refund the same units on the store, retried until the store says yes.
    """
    shop = uow.shop()
    mode = (shop.settings or {}).get("cancellation_mode", "dashboard")
    mode = mode if mode in MODES else "dashboard"
    changes = Changes(now)
    cancelled: list[dict[str, Any]] = []
    for line in lines if lines is not None else _waiting_lines(order):
        units = line.backordered
        if units <= 0:
            continue
        # Waiting units go first (take_back), so exactly the backordered units are cancelled.
        release_line_units(uow.session, line, units, changes)
        cancelled.append({"sku": line.sku, "line": line.external_id, "units": units})
    recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
    events.flush(uow.session, shop.id, changes)
    payload = {"order": order.external_id, "number": order.number, "lines": cancelled, "mode": mode,
               "link": link_id, "reason": reason, "requested_at": now.isoformat()}
    _outbox(uow, KIND, "merchant", order.external_id, key, payload, now)
    if mode == "storefront" and cancelled:
        _outbox(uow, STORE_KIND, "storefront", order.external_id, f"{STORE_KIND}:{key}",
                {**payload, "task": key}, now)
    return CancelResult(order.number, sum(c["units"] for c in cancelled), mode)


def _outbox(uow: UnitOfWork, kind: str, target: str, subject: str, key: str, payload: dict[str, Any],
            now: datetime) -> None:
    uow.add(OutboxMessage(kind=kind, target=target, subject=subject, payload=payload, idempotency_key=key,
                          state="pending", attempts=0, next_attempt_at=now, created_at=now))


__all__ = [
    "CancelLink",
    "CancelPreview",
    "CancelResult",
    "LinkExpired",
    "LinkUsed",
    "cancel_from_link",
    "cancel_waiting_units",
    "link_expiry",
    "preview_cancellation",
    "read_cancel_link",
    "sign_cancel_link",
]
