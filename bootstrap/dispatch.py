"""The outbox dispatcher of a shop: one handler per message kind, wired to the real adapters.

``build_dispatcher_factory(db, settings, storefront_for, mailer)`` is what the composition
roots give ``JobContext.dispatcher_factory``. Kinds and where they go:

- customer e-mails (``connector.services.notifications``): backordered, preorder, dropship,
  oversold, delayed, allocated, thirty_day_notice. An e-mail turned off in the shop's settings,
  or no longer true (line covered, order closed), is not sent and the message counts as
  delivered (no endless retries).
- storefront push (``connector.services.storefront_push``): eta_changed, and after a customer's
  cancellation. A shop without a storefront (manual) has nothing to push.
- merchant records (any message whose target is ``merchant``: po_ready, stock_short,
  customer_data_report, ...) are shown on the dashboard from the outbox itself; nothing leaves.
  ``cancellation_requested`` also pushes the order's new status to the store.
- supplier kinds (purchase_order, dropship forwards) come from the optional module
  ``bootstrap.dispatch_suppliers`` (``handlers(db, settings, mailer) -> {kind: handler}``).

Any other kind (a storefront or supplier kind nobody handles) goes to the dead letters at once (``DeliveryError(retryable=False)``) so a
missing handler is visible instead of retried for hours.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Protocol
from urllib.parse import urlsplit

from adapters.mail.smtp import message_id_for
from connector.config import Settings
from connector.db.engine import Database
from connector.errors import DeliveryError, PlatformError, ValidationError
from connector.messages import customer_email
from connector.ports import OutboxDispatcher, OutboxEnvelope, Storefront
from connector.services import notifications
from connector.services.cancellation import CancelLink, link_expiry, sign_cancel_link
from connector.services.ftc_notice import queue_thirty_day_notices
from connector.services.storefront_push import pushes_for_order

log = logging.getLogger(__name__)

Handler = Callable[[OutboxEnvelope], None]
SUPPLIER_MODULE = "bootstrap.dispatch_suppliers"
CANCEL_PATH = "/orders/cancel/"  # the route of connector.web.cancellation.bp


class Mailer(Protocol):
    def send(self, msg: EmailMessage, message_id: str | None = None) -> str: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _mail_domain(settings: Settings) -> str:
    addr = parseaddr(settings.mail_from)[1]
    return addr.rpartition("@")[2] or urlsplit(settings.app_url).hostname or "localhost"


class ShopDispatcher:
    """The dispatcher of one shop: looks the kind up and runs its handler.

    A handler that returned leaves a delivery receipt on the outbox row at once (see
    ``connector.services.notifications``): if the worker dies before the outbox marks the
    message sent, the redelivery is skipped instead of sending the e-mail (or the store
    note, or the supplier's PO) a second time.
    """

    def __init__(self, db: Database, shop_id: int, handlers: Mapping[str, Handler],
                 clock: Callable[[], datetime]) -> None:
        self.db = db
        self.shop_id = shop_id
        self.handlers = handlers
        self.clock = clock

    def __call__(self, message: OutboxEnvelope) -> None:
        handler = self.handlers.get(message.kind)
        if handler is None and message.target == "merchant":
            handler = _record_only
        if handler is None:
            raise DeliveryError(f"no handler for outbox kind {message.kind!r}", retryable=False, kind=message.kind)
        if message.attempts > 1 and notifications.already_delivered(self.db, self.shop_id, message.id):
            log.info("outbox message %s (%s) of shop %s was delivered before a crash: not again",
                     message.id, message.kind, self.shop_id)
            return
        handler(message)
        notifications.record_delivery(self.db, self.shop_id, message.id, self.clock())


def build_dispatcher_factory(
    db: Database,
    settings: Settings,
    storefront_for: Callable[[int], Storefront | None],
    mailer: Mailer,
    *,
    clock: Callable[[], datetime] = _utcnow,
    supplier_module: str = SUPPLIER_MODULE,
) -> Callable[[int], OutboxDispatcher]:
    """``shop_id -> OutboxDispatcher`` for ``JobContext.dispatcher_factory``.

    ``storefront_for(shop_id)`` opens the shop's store client (None for a shop without one);
    ``mailer`` is an ``adapters.mail.smtp.SmtpMailer`` (anything with its ``send``).
    """
    domain = _mail_domain(settings)
    extra = _supplier_handlers(db, settings, mailer, supplier_module)

    def factory(shop_id: int) -> OutboxDispatcher:
        links = _shop_links(settings, shop_id)

        def send_email(message: OutboxEnvelope) -> None:
            notice = notifications.customer_notice(db, shop_id, message, links)
            if notice.skipped or notice.context is None or notice.rendered is None:
                log.info("outbox message %s (%s) of shop %s: no e-mail: %s", message.id, message.kind, shop_id,
                         notice.skipped)
                return
            message_id = message_id_for(message.idempotency_key, domain)
            try:
                msg = customer_email(notice.context, notice.rendered, from_addr=notice.context.shop.from_addr
                                     or settings.mail_from, message_id=message_id)
            except ValidationError as exc:
                raise DeliveryError(exc.message, retryable=False) from exc
            mailer.send(msg, message_id=message_id)

        def push_storefront(message: OutboxEnvelope) -> None:
            storefront = storefront_for(shop_id)
            order_ext = message.payload.get("order") or message.subject
            if storefront is None or not order_ext:
                return
            order, variants = pushes_for_order(db, shop_id, str(order_ext), clock().date())
            try:
                if order is not None:
                    storefront.push_orders([order])
                if variants:
                    storefront.push_variants(variants)
            except PlatformError as exc:
                raise DeliveryError(exc.message, retryable=exc.retryable, status=exc.status) from exc

        def cancellation_requested(message: OutboxEnvelope) -> None:
            # The request stays in the outbox as the merchant's task (refund in the store), and
            # the store gets the lines' new status. "storefront" mode would also cancel the lines
            # in the store, but the Storefront port has no such method yet: until it has, that
            # mode too leaves the task on the dashboard.
            if message.payload.get("mode") == "storefront":
                log.info("shop %s: the storefront cannot cancel order lines yet; cancellation of order %s left "
                         "as a dashboard task", shop_id, message.payload.get("order"))
            push_storefront(message)

        def fulfil_dropship(message: OutboxEnvelope) -> None:
            # The supplier shipped: fulfil those lines on the store with its tracking.
            storefront = storefront_for(shop_id)
            if storefront is None:
                return
            payload = message.payload
            quantities = {str(line["line_id"]): int(line["quantity"]) for line in payload.get("lines", [])}
            try:
                storefront.fulfil_lines(str(payload["order_id"]), quantities, dict(payload.get("tracking") or {}))
            except PlatformError as exc:
                raise DeliveryError(exc.message, retryable=exc.retryable, status=exc.status) from exc

        handlers: dict[str, Handler] = {kind: send_email for kind in notifications.TEMPLATE_FOR_EVENT}
        handlers["eta_changed"] = push_storefront
        handlers["fulfil_dropship"] = fulfil_dropship
        handlers["cancellation_requested"] = cancellation_requested
        for kind, handler in extra.items():
            if kind in handlers:
                log.warning("outbox kind %r: %s's handler replaces the built-in one", kind, supplier_module)
            handlers[kind] = handler
        return ShopDispatcher(db, shop_id, handlers, clock)

    return factory


def _record_only(message: OutboxEnvelope) -> None:
    """Merchant records: the outbox row is what the dashboard shows; nothing leaves."""


def _shop_links(settings: Settings, shop_id: int) -> notifications.CancelLinkMaker | None:
    if not settings.secret_key:
        log.warning("SECRET_KEY is not set: customer e-mails go out without a cancellation link")
        return None
    base = settings.app_url.rstrip("/")

    def make(order_external_id: str, link_id: str, issued_at: datetime, shop_settings: Mapping[str, Any]) -> str:
        link = CancelLink(shop_id, order_external_id, link_id, link_expiry(issued_at, dict(shop_settings)))
        return f"{base}{CANCEL_PATH}{sign_cancel_link(settings.secret_key, link)}"

    return make


def _supplier_handlers(db: Database, settings: Settings, mailer: Mailer, module_name: str) -> dict[str, Handler]:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists but something it imports does not: a real error
        log.info("%s not found: supplier documents are not dispatched", module_name)
        return {}
    return dict(module.handlers(db, settings, mailer))


def thirty_day_notice_job(ctx: Any, shop_id: int, now: datetime) -> dict[str, Any]:
    """Job function (``jobs.registry`` signature) queueing the thirty-day notices of a shop.

    Meant for ``JobContext.hooks['thirty_day_notice']`` plus a daily ``JobSpec`` in
    ``jobs.registry.JOBS`` (that file is not part of this change).
    """
    return {"queued": queue_thirty_day_notices(ctx.db, shop_id, now)}


__all__ = ["Mailer", "ShopDispatcher", "build_dispatcher_factory", "thirty_day_notice_job"]
