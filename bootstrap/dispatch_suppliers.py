"""Outbox handlers for supplier documents: purchase orders and dropship forwards.

``handlers(db, settings, mailer)`` returns one callable per outbox kind; the composition root's
dispatcher (``bootstrap/dispatch.py``) routes messages of those kinds to them. Each handler
reads the document from the database (``connector.services.supplier_documents``), builds the
supplier's document with ``adapters.suppliers`` and sends it by the supplier's method: e-mail
(CSV, plus PDF for a PO, and the signed portal link) or a signed JSON webhook.

The Message-ID and the ``Idempotency-Key`` derive from the outbox message's idempotency key
(prefixed with the shop, since keys are unique per shop only), so every retry of one message
carries the same identity and a receiver can drop the duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from adapters.suppliers.cancellation import CancelledLineDoc, DropshipCancellationDoc
from adapters.suppliers.gateway import MailSender, SupplierChannel, SupplierDelivery
from adapters.suppliers.model import (
    DropshipForwardDoc,
    DropshipLineDoc,
    PurchaseOrderDoc,
    PurchaseOrderLineDoc,
)
from connector.config import Settings
from connector.db.engine import Database
from connector.errors import DeliveryError, NotFound, ValidationError
from connector.ports import OutboxEnvelope
from connector.services.dropship import (
    CANCEL_KIND,
    FORWARD_KIND,
    DropshipCheckResult,
    dropship_check,
    mark_forward_sent,
)
from connector.services.supplier_confirmation import forward_url, po_url
from connector.services.supplier_documents import (
    DropshipForwardData,
    PurchaseOrderData,
    SupplierContact,
    dropship_forward_data,
    purchase_order_data,
)

Handler = Callable[[OutboxEnvelope], None]
PO_KIND = "purchase_order"
_SENDABLE_PO = ("sent", "confirmed", "partially_received", "received")


def po_doc(po: PurchaseOrderData) -> PurchaseOrderDoc:
    return PurchaseOrderDoc(
        number=po.number,
        created=(po.sent_at or po.created_at).date(),
        requested=po.expected_date,
        currency=po.currency,
        supplier_name=po.supplier.name,
        supplier_email=po.supplier.email,
        supplier_address=po.supplier.address,
        ship_to=po.ship_to,
        lines=tuple(
            PurchaseOrderLineDoc(
                supplier_sku=line.supplier_sku,
                sku=line.sku,
                title=line.title,
                quantity=line.quantity,
                unit_cost_cents=line.unit_cost_cents,
            )
            for line in po.lines
            if line.quantity > 0
        ),
        buyer_name=po.buyer_name,
        notes=po.notes,
    )


def forward_doc(forward: DropshipForwardData) -> DropshipForwardDoc:
    return DropshipForwardDoc(
        number=forward.number,
        created=forward.created_at.date(),
        supplier_name=forward.supplier.name,
        supplier_email=forward.supplier.email,
        lines=tuple(
            DropshipLineDoc(
                order_number=line.order_number,
                customer_name=line.customer_name,
                ship_to=line.ship_to,
                sku=line.sku,
                supplier_sku=line.supplier_sku,
                quantity=line.quantity,
                title=line.title,
            )
            for line in forward.lines
            if line.quantity > 0
        ),
        buyer_name=forward.buyer_name,
    )


def _channel(supplier: SupplierContact) -> SupplierChannel:
    return SupplierChannel(supplier.delivery_method, supplier.webhook_url, supplier.webhook_secret)


def delivery_key(message: OutboxEnvelope) -> str:
    """The identity of one outbox message towards the supplier, the same on every retry."""
    return f"shop-{message.shop_id}:{message.idempotency_key}"


def _object_id(message: OutboxEnvelope, field: str) -> int:
    value = message.payload.get(field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeliveryError(f"outbox message {message.id} has no {field}", retryable=False)
    return value


def handlers(
    db: Database,
    settings: Settings,
    mailer: MailSender,
    *,
    http: requests.Session | None = None,
    reply_to: str | None = None,
    timeout: float = 10,
    clock: Callable[[], datetime] | None = None,
) -> dict[str, Handler]:
    """Handlers for the outbox kinds ``purchase_order``, ``dropship_forward`` and
    ``dropship_cancellation``.

    ``mailer`` is an ``SmtpMailer`` (anything with ``send(msg, message_id=...)``); ``http`` a
    ``requests.Session`` for supplier webhooks (one per call when None). Errors become
    ``DeliveryError``: network trouble, SMTP 4xx and webhook 5xx are retried; a missing
    document, a cancelled PO or incomplete supplier settings are not (they go to the dead
    letters, where the merchant sees why).
    """
    delivery = SupplierDelivery(mailer, settings.mail_from, reply_to=reply_to, session=http, timeout=timeout)
    now = clock or (lambda: datetime.now(UTC))

    def send_purchase_order(message: OutboxEnvelope) -> None:
        po_id = _object_id(message, "purchase_order_id")
        try:
            po = purchase_order_data(db, message.shop_id, po_id)
        except NotFound as exc:
            raise DeliveryError(f"purchase order {po_id} no longer exists", retryable=False) from exc
        if po.status not in _SENDABLE_PO:
            raise DeliveryError(f"{po.number} is {po.status}: not sent to the supplier", retryable=False)
        try:
            delivery.send_purchase_order(
                po_doc(po), _channel(po.supplier), idempotency_key=delivery_key(message),
                confirm_url=po_url(settings.app_url, settings.secret_key, po),
            )
        except ValidationError as exc:  # e.g. the supplier has no e-mail address
            raise DeliveryError(exc.message, retryable=False) from exc

    def forward_dropship(message: OutboxEnvelope) -> None:
        forward_id = _object_id(message, "dropship_forward_id")
        try:
            forward = dropship_forward_data(db, message.shop_id, forward_id)
        except NotFound as exc:
            raise DeliveryError(f"dropship forward {forward_id} no longer exists", retryable=False) from exc
        doc = forward_doc(forward)
        if not doc.lines:
            raise DeliveryError(f"{forward.number} has nothing left to ship (orders cancelled?)", retryable=False)
        try:
            delivery.forward_dropship(
                doc, _channel(forward.supplier), idempotency_key=delivery_key(message),
                confirm_url=forward_url(settings.app_url, settings.secret_key, forward),
            )
        except ValidationError as exc:
            raise DeliveryError(exc.message, retryable=False) from exc
        mark_forward_sent(db, message.shop_id, forward.id, now())

    def cancel_dropship(message: OutboxEnvelope) -> None:
        forward_id = _object_id(message, "dropship_forward_id")
        try:
            forward = dropship_forward_data(db, message.shop_id, forward_id)
        except NotFound as exc:
            raise DeliveryError(f"dropship forward {forward_id} no longer exists", retryable=False) from exc
        try:
            delivery.cancel_dropship(cancellation_doc(forward, message.payload, message.created_at),
                                     _channel(forward.supplier), idempotency_key=delivery_key(message))
        except ValidationError as exc:
            raise DeliveryError(exc.message, retryable=False) from exc

    return {PO_KIND: send_purchase_order, FORWARD_KIND: forward_dropship, CANCEL_KIND: cancel_dropship}


def cancellation_doc(forward: DropshipForwardData, payload: dict[str, Any], created: datetime) -> DropshipCancellationDoc:
    """The cancellation of one line's units (outbox payload of ``dropship_cancellation``)."""
    line_id = payload.get("line_id")
    line = next((ln for ln in forward.lines if ln.id == line_id), None)
    sku = str(payload.get("sku") or (line.sku if line else ""))
    quantity = payload.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise DeliveryError(f"cancellation for {forward.number} has no quantity", retryable=False)
    return DropshipCancellationDoc(
        forward_number=forward.number,
        created=created.date(),
        supplier_name=forward.supplier.name,
        supplier_email=forward.supplier.email,
        lines=(CancelledLineDoc(
            order_number=str(payload.get("order_number") or (line.order_number if line else "")),
            customer_name=line.customer_name if line else "",
            sku=sku,
            supplier_sku=line.supplier_sku if line else sku,
            quantity=quantity,
            title=line.title if line else "",
        ),),
        buyer_name=forward.buyer_name,
    )


def dropship_check_job(ctx: Any, shop_id: int, now: datetime) -> DropshipCheckResult:
    """The ``dropship_check`` job hook (``JobContext.hooks["dropship_check"]``)."""
    return dropship_check(ctx.db, shop_id, now)
