"""The document that tells a dropship supplier not to ship units of a forward it received.

Sent the same way as the forward (CSV by e-mail, or signed JSON to the supplier's webhook) so
the supplier's people or system read it where the forward arrived. Pure functions of
:class:`DropshipCancellationDoc`, like the other supplier documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from typing import Any

from adapters.suppliers.documents import _attach_csv, _csv_text, _safe
from connector.domain.supplier_csv import csv_safe_text
from connector.errors import ValidationError

CANCELLATION_CSV_COLUMNS = (
    "forward_number", "order_number", "customer_name", "sku", "supplier_sku", "title", "quantity_cancelled",
)


@dataclass(frozen=True, slots=True)
class CancelledLineDoc:
    order_number: str
    customer_name: str
    sku: str
    supplier_sku: str
    quantity: int  # units the supplier must no longer ship
    title: str = ""


@dataclass(frozen=True, slots=True)
class DropshipCancellationDoc:
    forward_number: str
    created: date
    supplier_name: str
    supplier_email: str | None
    lines: tuple[CancelledLineDoc, ...]
    buyer_name: str = ""


def cancellation_csv(doc: DropshipCancellationDoc) -> str:
    rows = [
        [*(csv_safe_text(t) for t in (doc.forward_number, ln.order_number, ln.customer_name, ln.sku,
                                      ln.supplier_sku, ln.title)), ln.quantity]
        for ln in doc.lines
    ]
    return _csv_text([list(CANCELLATION_CSV_COLUMNS), *rows])


def cancellation_json(doc: DropshipCancellationDoc) -> dict[str, Any]:
    return {
        "type": "dropship_cancellation",
        "version": 1,
        "forward": doc.forward_number,
        "created": doc.created.isoformat(),
        "buyer": doc.buyer_name,
        "supplier": {"name": doc.supplier_name, "email": doc.supplier_email},
        "lines": [
            {"order_number": ln.order_number, "sku": ln.sku, "supplier_sku": ln.supplier_sku, "title": ln.title,
             "quantity_cancelled": ln.quantity}
            for ln in doc.lines
        ],
    }


def cancellation_email(doc: DropshipCancellationDoc, from_addr: str, reply_to: str | None) -> EmailMessage:
    if not doc.supplier_email:
        raise ValidationError(f"supplier {doc.supplier_name} has no e-mail address", field="supplier_email")
    if not doc.lines:
        raise ValidationError(f"the cancellation for {doc.forward_number} has no lines", field="lines")
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = doc.supplier_email
    if reply_to:
        msg["Reply-To"] = reply_to
    orders = ", ".join(dict.fromkeys(ln.order_number for ln in doc.lines))
    msg["Subject"] = f"Cancelled: do not ship order {orders} of {doc.forward_number}"
    msg.set_content("\n\n".join([
        f"Hello {doc.supplier_name},",
        f"The customer cancelled the following units of dropship forward {doc.forward_number}. "
        "Please do not ship them (details in the attached CSV):",
        "\n".join(f"  - order {ln.order_number}: {ln.quantity} x {ln.supplier_sku} ({ln.title or ln.sku})"
                  for ln in doc.lines),
        "If they already left, please tell us the tracking number.",
        "Thank you!\n" + doc.buyer_name,
    ]))
    _attach_csv(msg, cancellation_csv(doc), f"cancellation-{_safe(doc.forward_number)}.csv")
    return msg
