"""The outbox dispatcher of a shop: one handler per message kind, wired to the real adapters.

``build_dispatcher_factory(db, settings, storefront_for, mailer)`` is what the composition
roots give ``JobContext.dispatcher_factory``. Kinds and where they go:

- customer notices (``connector.services.notifications``): backordered, preorder, dropship,
  oversold, delayed, allocated, thirty_day_notice, shipped, auto_cancelled. A notice turned off in
  the shop's settings, or no longer true (line covered, order closed), is not sent and the
  message counts as delivered (no endless retries). ``notify_by[kind] == "store_note"`` sends it
  as the platform's own customer notification instead of our e-mail (WooCommerce customer note).
- storefront push (``connector.services.storefront_push``): eta_changed, and after a customer's
  cancellation. A shop without a storefront (manual) has nothing to push.
- store_cancellation: cancel and refund a customer's cancelled units on the store
  (``Storefront.cancel_lines``), retried; when the store keeps refusing, the message goes to the
  dead letters and a ``store_cancellation_failed`` task tells the merchant to refund by hand.
- fulfil_dropship: queues the customer's ``shipped`` notice, then fulfils the lines on the store.
- merchant_account_email: a merchant user's invitation or password-reset e-mail, with a link
  signed at send time (``connector.services.accounts``); nothing goes out when the user was
  removed meanwhile, or an invitation was already answered.
- merchant records (any message whose target is ``merchant``: po_ready, stock_short,
  customer_data_report, wait_consent, ...) are shown on the dashboard from the outbox itself;
  nothing leaves. ``cancellation_requested`` also pushes the order's new status to the store.
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
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from sqlalchemy import insert, select

from adapters.mail.smtp import message_id_for
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import MerchantUser, OutboxMessage
from connector.db.uow import UnitOfWork
from connector.errors import DeliveryError, PlatformError, ValidationError
from connector.messages import customer_email
from connector.ports import OutboxDispatcher, OutboxEnvelope, Storefront
from connector.services import accounts, notifications
from connector.services.cancellation import STORE_KIND, CancelLink, link_expiry, sign_cancel_link
from connector.services.ftc_notice import auto_cancel_unanswered, queue_thirty_day_notices, sign_keep_link
from connector.services.storefront_push import pushes_for_order

log = logging.getLogger(__name__)

Handler = Callable[[OutboxEnvelope], None]
SUPPLIER_MODULE = "bootstrap.dispatch_suppliers"
CANCEL_PATH = "/orders/cancel/"  # the routes of connector.web.cancellation.bp
KEEP_PATH = "/orders/keep-waiting/"
ACCOUNT_PATH = "/merchant/password/"  # connector.web.pages.auth's set_password route
# connector.services.outbox.deliver_due's default max_attempts: the last attempt of a store
# cancellation also leaves the merchant a task before the message goes to the dead letters.
STORE_CANCEL_ATTEMPTS = 8
STORE_CANCEL_FAILED = "store_cancellation_failed"


@runtime_checkable
class CustomerNotes(Protocol):
    """A store that can notify its customer itself (WooCommerce customer notes). Shopify has no
    such channel for an arbitrary message, so a "store_note" notice falls back to our e-mail."""

    def add_customer_note(self, order_external_id: str, note: str) -> None: ...


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
        links = _shop_links(settings, shop_id, CANCEL_PATH, sign_cancel_link)
        keeps = _shop_links(settings, shop_id, KEEP_PATH, sign_keep_link)

        def send_email(message: OutboxEnvelope) -> None:
            notice = notifications.customer_notice(db, shop_id, message, links, keeps)
            if notice.skipped or notice.context is None or notice.rendered is None:
                log.info("outbox message %s (%s) of shop %s: no e-mail: %s", message.id, message.kind, shop_id,
                         notice.skipped)
                return
            if notice.channel == "store_note":
                storefront = storefront_for(shop_id)
                if isinstance(storefront, CustomerNotes):
                    note = f"{notice.rendered.subject}\n\n{notice.rendered.text.strip()}"
                    try:
                        storefront.add_customer_note(notice_order(message), note)
                    except PlatformError as exc:
                        raise DeliveryError(exc.message, retryable=exc.retryable, status=exc.status) from exc
                    return
                # No store channel (Shopify, a manual shop): the customer still hears, by e-mail.
                log.info("shop %s has no store notes: %s goes out by e-mail", shop_id, notice.template)
            if not notice.context.customer_email:
                log.info("outbox message %s of shop %s: no customer e-mail address", message.id, shop_id)
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
            # The request stays in the outbox as the merchant's record (in "dashboard" mode, the
            # task to refund in the store); the store gets the lines' new status. In "storefront"
            # mode the refund itself is the separate store_cancellation message, retried alone.
            push_storefront(message)

        def store_cancellation(message: OutboxEnvelope) -> None:
            storefront = storefront_for(shop_id)
            payload = message.payload
            quantities = {str(c["line"]): int(c["units"]) for c in payload.get("lines") or [] if c.get("units")}
            if storefront is None or not quantities:
                _merchant_task(db, shop_id, message, "this shop has no store to refund on", clock())
                return
            try:
                storefront.cancel_lines(notice_order(message), quantities,
                                        str(payload.get("reason") or "Cancelled at the customer's request"),
                                        message.idempotency_key)
            except (PlatformError, ValidationError) as exc:
                retryable = isinstance(exc, PlatformError) and exc.retryable
                if retryable and message.attempts < STORE_CANCEL_ATTEMPTS:
                    raise DeliveryError(exc.message, retryable=True, status=getattr(exc, "status", None)) from exc
                _merchant_task(db, shop_id, message, exc.message, clock())
                raise DeliveryError(f"the store refused the cancellation: {exc.message}", retryable=False) from exc

        def fulfil_dropship(message: OutboxEnvelope) -> None:
            # The supplier shipped: the customer hears of it (with the tracking) whatever the store
            # says, then the lines are fulfilled on the store.
            payload = message.payload
            notifications.queue_shipped_notice(
                db, shop_id, str(payload.get("order_id") or message.subject),
                [{"line": str(ln["line_id"]), "sku": ln.get("sku"), "units": int(ln["quantity"])}
                 for ln in payload.get("lines", [])],
                payload.get("tracking") or {}, f"{notifications.SHIPPED_KIND}:{message.idempotency_key}", clock(),
            )
            storefront = storefront_for(shop_id)
            if storefront is None:
                return
            quantities = {str(line["line_id"]): int(line["quantity"]) for line in payload.get("lines", [])}
            try:
                storefront.fulfil_lines(str(payload["order_id"]), quantities, dict(payload.get("tracking") or {}))
            except PlatformError as exc:
                raise DeliveryError(exc.message, retryable=exc.retryable, status=exc.status) from exc

        def account_email(message: OutboxEnvelope) -> None:
            _send_account_email(db, settings, mailer, shop_id, message, clock(), domain)

        handlers: dict[str, Handler] = {kind: send_email for kind in notifications.TEMPLATE_FOR_EVENT}
        handlers[accounts.ACCOUNT_EMAIL_KIND] = account_email
        handlers["eta_changed"] = push_storefront
        handlers["fulfil_dropship"] = fulfil_dropship
        handlers["cancellation_requested"] = cancellation_requested
        handlers[STORE_KIND] = store_cancellation
        for kind, handler in extra.items():
            if kind in handlers:
                log.warning("outbox kind %r: %s's handler replaces the built-in one", kind, supplier_module)
            handlers[kind] = handler
        return ShopDispatcher(db, shop_id, handlers, clock)

    return factory


def _send_account_email(db: Database, settings: Settings, mailer: Mailer, shop_id: int, message: OutboxEnvelope,
                        now: datetime, domain: str) -> None:
    purpose = str(message.payload.get("purpose"))
    if purpose not in accounts.LINK_TTL:
        raise DeliveryError(f"unknown account e-mail purpose {purpose!r}", retryable=False)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        user = uow.find(MerchantUser, id=int(message.payload.get("user_id") or 0))
        if user is None or (purpose == accounts.INVITE and accounts.has_password(user.password_hash)):
            log.info("outbox message %s of shop %s: account e-mail no longer needed", message.id, shop_id)
            return
        shop_name, email = shop.name or shop.domain, user.email
        # Signed now, against the user's current hash: the link dies once a password is set.
        token = accounts.sign_account_link(settings.secret_key, accounts.AccountLink(
            shop_id, user.id, purpose, user.password_hash, now))
    link = f"{settings.app_url.rstrip('/')}{ACCOUNT_PATH}{token}"
    subject, body = accounts.account_email_text(shop_name, email, purpose, link)
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = email
    msg["Subject"] = subject
    msg.set_content(body)
    mailer.send(msg, message_id=message_id_for(message.idempotency_key, domain))


def _record_only(message: OutboxEnvelope) -> None:
    """Merchant records: the outbox row is what the dashboard shows; nothing leaves."""


def notice_order(message: OutboxEnvelope) -> str:
    return str(message.payload.get("order") or message.subject)


def _merchant_task(db: Database, shop_id: int, message: OutboxEnvelope, error: str, now: datetime) -> None:
    """Tell the merchant the store did not cancel and refund (once per store cancellation)."""
    key = f"{STORE_CANCEL_FAILED}:{message.idempotency_key}"
    with UnitOfWork(db, shop_id) as uow:
        if uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)):
            return
        uow.session.execute(insert(OutboxMessage).values(
            shop_id=shop_id, kind=STORE_CANCEL_FAILED, target="merchant", subject=message.subject,
            payload={**message.payload, "error": error, "todo": "cancel and refund these items in the store"},
            idempotency_key=key, state="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
        uow.commit()
    log.warning("shop %s: the store did not cancel order %s (%s); left as a dashboard task", shop_id,
                notice_order(message), error)


def _shop_links(
    settings: Settings, shop_id: int, path: str, sign: Callable[[str, CancelLink], str]
) -> notifications.CancelLinkMaker | None:
    if not settings.secret_key:
        log.warning("SECRET_KEY is not set: customer e-mails go out without signed links")
        return None
    base = settings.app_url.rstrip("/")

    def make(order_external_id: str, link_id: str, issued_at: datetime, shop_settings: Mapping[str, Any]) -> str:
        link = CancelLink(shop_id, order_external_id, link_id, link_expiry(issued_at, dict(shop_settings)))
        return f"{base}{path}{sign(settings.secret_key, link)}"

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
    """Job function (``jobs.registry`` signature) queueing the thirty-day notices of a shop and
    cancelling what was left unanswered past ``thirty_day_auto_cancel_days``.

    Meant for ``JobContext.hooks['thirty_day_notice']`` plus a daily ``JobSpec`` in
    ``jobs.registry.JOBS`` (that file is not part of this change).
    """
    result: dict[str, Any] = {"queued": queue_thirty_day_notices(ctx.db, shop_id, now)}
    cancelled = auto_cancel_unanswered(ctx.db, shop_id, now)
    if cancelled is not None:  # only shops that cancel unanswered notices report it
        result["auto_cancelled"] = cancelled
    return result


__all__ = ["Mailer", "ShopDispatcher", "build_dispatcher_factory", "thirty_day_notice_job"]
