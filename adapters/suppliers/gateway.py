"""Deliver supplier documents by the supplier's chosen method (e-mail or signed webhook).

This is what the outbox's deliver job calls: it builds the document, sends it once per
attempt with a stable identity (Message-ID / Idempotency-Key derived from the outbox key), and
lets :class:`DeliveryError` tell the job whether to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Protocol

import requests

from adapters.mail.smtp import message_id_for
from adapters.suppliers.cancellation import DropshipCancellationDoc, cancellation_email, cancellation_json
from adapters.suppliers.documents import dropship_email, dropship_json, po_email, po_json
from adapters.suppliers.model import DropshipForwardDoc, PurchaseOrderDoc
from adapters.suppliers.webhook import post_signed_json
from connector.errors import DeliveryError


class MailSender(Protocol):
    def send(self, msg: EmailMessage, message_id: str | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class SupplierChannel:
    """How one supplier receives documents (from the supplier settings)."""

    delivery_method: str  # email | webhook
    webhook_url: str | None = None
    webhook_secret: str | None = None


class SupplierDelivery:
    def __init__(
        self,
        mailer: MailSender,
        from_addr: str,
        *,
        reply_to: str | None = None,
        session: requests.Session | None = None,
        timeout: float = 10,
    ) -> None:
        self.mailer = mailer
        self.from_addr = from_addr
        self.reply_to = reply_to
        self.session = session
        self.timeout = timeout
        self._domain = parseaddr(from_addr)[1].rpartition("@")[2] or "backorder-connector.invalid"

    def send_purchase_order(
        self, doc: PurchaseOrderDoc, channel: SupplierChannel, *, idempotency_key: str, confirm_url: str
    ) -> str:
        """Send the PO; return the Message-ID (e-mail) or the idempotency key (webhook)."""
        if channel.delivery_method == "webhook":
            payload = {**po_json(doc), "confirm_url": confirm_url}
            return self._post(channel, payload, idempotency_key)
        msg = po_email(doc, self.from_addr, self.reply_to, confirm_url)
        return self.mailer.send(msg, message_id=message_id_for(idempotency_key, self._domain))

    def forward_dropship(
        self,
        doc: DropshipForwardDoc,
        channel: SupplierChannel,
        *,
        idempotency_key: str,
        confirm_url: str | None = None,
    ) -> str:
        if channel.delivery_method == "webhook":
            payload = {**dropship_json(doc), "confirm_url": confirm_url}
            return self._post(channel, payload, idempotency_key)
        msg = dropship_email(doc, self.from_addr, self.reply_to, confirm_url)
        return self.mailer.send(msg, message_id=message_id_for(idempotency_key, self._domain))

    def cancel_dropship(
        self, doc: DropshipCancellationDoc, channel: SupplierChannel, *, idempotency_key: str
    ) -> str:
        """Tell the supplier not to ship cancelled units of a forward, by the forward's method."""
        if channel.delivery_method == "webhook":
            return self._post(channel, cancellation_json(doc), idempotency_key)
        msg = cancellation_email(doc, self.from_addr, self.reply_to)
        return self.mailer.send(msg, message_id=message_id_for(idempotency_key, self._domain))

    def _post(self, channel: SupplierChannel, payload: dict[str, object], idempotency_key: str) -> str:
        if not channel.webhook_url or not channel.webhook_secret:
            # Settings problem: retrying will not help until the merchant fixes the supplier.
            raise DeliveryError("supplier webhook URL or secret is missing", retryable=False)
        post_signed_json(
            channel.webhook_url,
            payload,
            channel.webhook_secret,
            idempotency_key,
            session=self.session,
            timeout=self.timeout,
        )
        return idempotency_key
