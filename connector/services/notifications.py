"""Customer e-mails from outbox messages: what to say, to whom, and whether to say it at all.

An outbox message names an order and the lines an event touched; the e-mail is built from
the database *as it is when the message is delivered*, so a customer is never told something
already overtaken (a line covered since, an order cancelled, a delay superseded by a newer
one). One message is one e-mail covering all its lines.

Shop settings read here (``Shop.settings``): ``notify_by`` ({template kind: "email" |
"store_note" | "off"}, missing means "email"), the older ``emails`` ({template kind: bool}, False
still means off), ``templates`` ({kind: {language: {part: source}}}), ``language`` ("en", "fr",
"fr-CA"), ``branding`` ({logo_url, reply_to, from_addr}), ``thirty_day_auto_cancel_days`` (the
"we cancel after" date in the thirty-day notice).

The ``shipped`` notice covers the lines one shipment event fulfilled (``queue_shipped_notice``
writes it when dropship tracking comes back; the order sync raises it when the store reports the
order fulfilled) and is sent even once the order is no longer open: that is when it is true.

Delivery receipts (used by ``bootstrap.dispatch`` for every kind): as soon as a handler has
delivered (the mail server said 250), :func:`record_delivery` commits ``sent_at`` on the outbox
row while it is still ``sending``. If the worker dies before the outbox marks the message sent,
the redelivery finds the receipt (:func:`already_delivered`) and does not send again. The window
left (between the server's 250 and that commit) is covered by the Message-ID, which derives from
the idempotency key so mail systems can drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, SalesOrder, Shop, Variant
from connector.db.uow import UnitOfWork
from connector.messages import (
    MessageContext,
    MessageLine,
    RenderedEmail,
    ShopBranding,
    render,
    resolve_language,
)
from connector.ports import OutboxEnvelope

# Outbox event kind -> customer e-mail template. The engine raises one "backordered" event per
# order for backordered, dropship and oversold lines alike (each line says what it waits for), so
# the customer gets one confirmation; "oversold" is a separate, merchant-only event.
TEMPLATE_FOR_EVENT: dict[str, str] = {
    "backordered": "backorder_confirmation",
    "preorder": "preorder_confirmation",
    "delayed": "delay_notice",
    "allocated": "ready_notice",
    "thirty_day_notice": "thirty_day_notice",
    "shipped": "shipped_notice",
    "auto_cancelled": "cancellation_notice",
}
# E-mails that offer the one-click cancellation of what still waits.
WITH_CANCEL_LINK = ("backorder_confirmation", "preorder_confirmation", "delay_notice", "thirty_day_notice")
# Order states in which a notice is still true (every other notice needs an open order). The
# cancellation notice survives the store closing the order after its refund (a webhook may well
# arrive before the e-mail leaves).
TOLD_IN_STATES: dict[str, tuple[str, ...]] = {
    "shipped_notice": ("open", "fulfilled"),
    "cancellation_notice": ("open", "fulfilled", "closed"),
}
CHANNELS = ("email", "store_note", "off")
SHIPPED_KIND = "shipped"

# (order external id, link id, issued at, shop settings) -> absolute URL of a signed link
# (cancellation, or "keep waiting" on the thirty-day notice).
CancelLinkMaker = Callable[[str, str, datetime, Mapping[str, Any]], str]


@dataclass(frozen=True, slots=True)
class CustomerNotice:
    """An e-mail ready to wrap (``context`` + ``rendered``), or the reason it is not sent."""

    template: str
    context: MessageContext | None = None
    rendered: RenderedEmail | None = None
    skipped: str | None = None
    channel: str = "email"  # or "store_note": the platform tells the customer (see channel_for)


def _iso(value: Any) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _text(raw: Any, key: str) -> str | None:
    value = raw.get(key) if isinstance(raw, Mapping) else None
    return value if isinstance(value, str) and value else None


def shop_language(settings: Mapping[str, Any] | None) -> str:
    """The shop's e-mail language ("en", "fr"; a region like "fr-CA" is ignored)."""
    return resolve_language(_text(settings, "language"))


def _branding(shop: Shop) -> ShopBranding:
    brand = (shop.settings or {}).get("branding")
    return ShopBranding(shop.name or shop.domain, _text(brand, "logo_url"), _text(brand, "reply_to"),
                        shop_language(shop.settings), _text(brand, "from_addr"))


def email_enabled(settings: Mapping[str, Any] | None, template: str) -> bool:
    return channel_for(settings, template) != "off"


def channel_for(settings: Mapping[str, Any] | None, template: str) -> str:
    """How the customer hears of ``template``: "email", "store_note" or "off".

    ``notify_by[template]`` decides; an unknown value counts as "email" (telling the customer
    is the safe side). The older ``emails[template] == False`` still turns a notice off.
    """
    emails = (settings or {}).get("emails") or {}
    if isinstance(emails, dict) and emails.get(template, True) is False:
        return "off"
    notify_by = (settings or {}).get("notify_by") or {}
    chosen = notify_by.get(template) if isinstance(notify_by, dict) else None
    return chosen if chosen in CHANNELS else "email"


def _overrides(settings: Mapping[str, Any] | None, template: str, language: str) -> dict[str, str] | None:
    templates = (settings or {}).get("templates") or {}
    parts = templates.get(template, {}).get(language, {}) if isinstance(templates, dict) else {}
    return {k: v for k, v in parts.items() if isinstance(v, str)} or None


def _message_line(kind: str, line: OrderLine, data: Mapping[str, Any], variant: Variant | None) -> MessageLine | None:
    """The line as the e-mail shows it, or None when the event no longer holds for it."""
    waiting = line.backordered
    if kind == SHIPPED_KIND:
        units = min(_units(data.get("units")), line.fulfilled)
        return MessageLine(line.title, line.sku, units) if units > 0 else None
    if kind == "auto_cancelled":
        return MessageLine(line.title, line.sku, line.cancelled) if line.cancelled > 0 else None
    if kind == "allocated":
        wanted = line.ordered - line.cancelled
        return MessageLine(line.title, line.sku, wanted) if waiting == 0 and wanted > 0 else None
    if waiting <= 0:
        return None  # covered or cancelled since: nothing to confirm or apologise for
    if kind == "delayed":
        if line.notified_eta is None or line.notified_eta != _iso(data.get("to")):
            return None  # a newer delay superseded this one; its own message tells the customer
        return MessageLine(line.title, line.sku, waiting, eta=line.notified_eta, previous_eta=_iso(data.get("from")))
    if kind == "thirty_day_notice":
        return MessageLine(line.title, line.sku, waiting, eta=line.current_eta, previous_eta=line.promised_eta)
    release = variant.release_date if variant is not None and kind == "preorder" else None
    return MessageLine(line.title, line.sku, waiting, eta=line.notified_eta, release_date=release)


def _units(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def customer_notice(
    db: Database, shop_id: int, message: OutboxEnvelope, cancel_link: CancelLinkMaker | None = None,
    keep_link: CancelLinkMaker | None = None,
) -> CustomerNotice:
    """Decide and render the customer notice for ``message`` (read-only)."""
    template = TEMPLATE_FOR_EVENT.get(message.kind)
    if template is None:
        return CustomerNotice("", skipped=f"no customer e-mail for {message.kind!r}")
    order_ext = message.payload.get("order") or message.subject
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        settings = shop.settings or {}
        channel = channel_for(settings, template)
        if channel == "off":
            return CustomerNotice(template, skipped=f"{template} e-mails are turned off in the shop's settings",
                                  channel=channel)
        order = uow.find(SalesOrder, external_id=str(order_ext))
        if order is None:
            return CustomerNotice(template, skipped=f"order {order_ext} not found")
        if order.state not in TOLD_IN_STATES.get(template, ("open",)):
            return CustomerNotice(template, skipped=f"order {order.number} is {order.state}")
        if not order.customer_email and channel == "email":
            return CustomerNotice(template, skipped=f"order {order.number} has no customer e-mail")
        by_ext = {ln.external_id: ln for ln in order.lines}
        variant_ids = {ln.variant_id for ln in order.lines if ln.variant_id}
        variants = {v.id: v for v in uow.session.scalars(select(Variant).where(Variant.id.in_(variant_ids)))}
        wanted = message.payload.get("lines") or [{"line": ext} for ext in by_ext]
        lines: list[MessageLine] = []
        seen: set[str] = set()
        for data in wanted:
            line = by_ext.get(str(data.get("line")))
            if line is None or line.external_id in seen:
                continue
            seen.add(line.external_id)
            shown = _message_line(message.kind, line, data, variants.get(line.variant_id or 0))
            if shown is not None:
                lines.append(shown)
        if not lines:
            return CustomerNotice(template, skipped=f"nothing in order {order.number} still matches {message.kind!r}")
        branding = _branding(shop)
        language = branding.language
        cancel_url = None
        if cancel_link is not None and template in WITH_CANCEL_LINK:
            cancel_url = cancel_link(order.external_id, str(message.id), message.created_at, settings)
        keep_url = respond_by = None
        if template == "thirty_day_notice":
            if keep_link is not None:
                keep_url = keep_link(order.external_id, str(message.id), message.created_at, settings)
            after = settings.get("thirty_day_auto_cancel_days")
            if isinstance(after, int) and not isinstance(after, bool) and after >= 1:
                respond_by = message.created_at.date() + timedelta(days=after)
        tracking = message.payload.get("tracking") if template == "shipped_notice" else None
        tracking = tracking if isinstance(tracking, Mapping) else {}
        reason = next((str(d["reason"]) for d in wanted if d.get("reason")), None)
        context = MessageContext(
            kind=template, shop=branding, order_number=order.number, customer_name=order.customer_name,
            customer_email=order.customer_email or "", lines=tuple(lines), cancel_url=cancel_url, language=language,
            reason=reason if template == "delay_notice" else None, keep_url=keep_url, respond_by=respond_by,
            tracking_number=_text(tracking, "number"), tracking_url=_text(tracking, "url"),
            carrier=_text(tracking, "company"),
        )
        overrides = _overrides(settings, template, language)
    return CustomerNotice(template, context, render(context, overrides), channel=channel)


def queue_shipped_notice(
    db: Database, shop_id: int, order_external_id: str, lines: list[dict[str, Any]],
    tracking: Mapping[str, Any] | None, key: str, now: datetime,
) -> bool:
    """Write the ``shipped`` customer message of one shipment event (idempotent on ``key``).

    ``lines``: ``[{"line": external id, "sku": ..., "units": n}]``. Returns whether it was new.
    """
    with UnitOfWork(db, shop_id) as uow:
        if uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
            return False
        uow.session.execute(insert(OutboxMessage).values(
            shop_id=shop_id, kind=SHIPPED_KIND, target="customer", subject=order_external_id,
            payload={"order": order_external_id, "lines": lines, "tracking": dict(tracking or {})},
            idempotency_key=key, state="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
        uow.commit()
        return True


def already_delivered(db: Database, shop_id: int, message_id: int) -> bool:
    """Whether a receipt says this message already reached the mail server."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        sent_at = uow.session.scalar(select(OutboxMessage.sent_at).where(OutboxMessage.id == message_id))
    return sent_at is not None


def record_delivery(db: Database, shop_id: int, message_id: int, now: datetime) -> None:
    """Commit the receipt as soon as the server accepted the message (see module docstring)."""
    with UnitOfWork(db, shop_id) as uow:
        uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.state == "sending")
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )
        uow.commit()


__all__ = [
    "TEMPLATE_FOR_EVENT",
    "CustomerNotice",
    "already_delivered",
    "channel_for",
    "customer_notice",
    "email_enabled",
    "queue_shipped_notice",
    "record_delivery",
]
