"""Supplier documents: purchase order CSV/PDF/JSON/e-mail and the dropship forward.

Pure functions of :mod:`adapters.suppliers.model`: no database, no clock, no network, so a
retried delivery produces the same document. Money is integer cents everywhere and printed
with two decimals. Text cells that a spreadsheet would execute as a formula are prefixed with
``'`` (see :func:`connector.domain.supplier_csv.csv_safe_text`); :func:`parse_po_csv` removes
the prefix again, so CSV → lines round-trips exactly.

Documents are in English: suppliers are businesses and the PO number, SKUs and quantities are
what matters to them.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from email.message import EmailMessage
from typing import Any

from adapters.suppliers.formatting import address_lines, money, parse_money
from adapters.suppliers.model import (
    DropshipForwardDoc,
    DropshipLineDoc,
    PurchaseOrderDoc,
    PurchaseOrderLineDoc,
)
from adapters.suppliers.pdf import render_purchase_order_pdf
from connector.domain.records import Address
from connector.domain.supplier_csv import csv_plain_text, csv_safe_text
from connector.errors import ValidationError

PO_CSV_COLUMNS = (
    "po_number",
    "line",
    "supplier_sku",
    "sku",
    "title",
    "quantity",
    "unit_cost",
    "line_total",
    "currency",
    "requested_date",
)
DROPSHIP_CSV_COLUMNS = (
    "forward_number",
    "order_number",
    "customer_name",
    "ship_to_name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "zip",
    "country_code",
    "phone",
    "email",
    "sku",
    "supplier_sku",
    "title",
    "quantity",
)
ADDRESS_FIELDS = (
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "zip",
    "country_code",
    "phone",
)


def _csv_text(rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


# -- purchase order --------------------------------------------------------------------------


def po_csv(doc: PurchaseOrderDoc) -> str:
    """Header plus one row per line; :func:`parse_po_csv` gives the lines back exactly."""
    requested = doc.requested.isoformat() if doc.requested else ""
    rows: list[list[object]] = [list(PO_CSV_COLUMNS)]
    for n, line in enumerate(doc.lines, start=1):
        rows.append(
            [
                csv_safe_text(doc.number),
                n,
                csv_safe_text(line.supplier_sku),
                csv_safe_text(line.sku),
                csv_safe_text(line.title),
                line.quantity,
                money(line.unit_cost_cents),
                money(line.total_cents),
                doc.currency,
                requested,
            ]
        )
    return _csv_text(rows)


def parse_po_csv(text: str) -> tuple[PurchaseOrderLineDoc, ...]:
    """Read a CSV written by :func:`po_csv` back into lines (for tests and supplier tooling)."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    return tuple(
        PurchaseOrderLineDoc(
            supplier_sku=csv_plain_text(r["supplier_sku"]),
            sku=csv_plain_text(r["sku"]),
            title=csv_plain_text(r["title"]),
            quantity=int(r["quantity"]),
            unit_cost_cents=parse_money(r["unit_cost"]),
        )
        for r in reader
    )


def _address_dict(address: Address | None) -> dict[str, str | None] | None:
    if address is None:
        return None
    return {name: getattr(address, name) for name in ADDRESS_FIELDS}


def po_json(doc: PurchaseOrderDoc) -> dict[str, Any]:
    """The webhook payload of a PO: stable keys, ISO dates, cents plus a decimal string."""
    return {
        "type": "purchase_order",
        "version": 1,
        "number": doc.number,
        "created": doc.created.isoformat(),
        "requested_date": doc.requested.isoformat() if doc.requested else None,
        "currency": doc.currency,
        "buyer": doc.buyer_name,
        "supplier": {
            "name": doc.supplier_name,
            "email": doc.supplier_email,
            "address": _address_dict(doc.supplier_address),
        },
        "ship_to": _address_dict(doc.ship_to),
        "notes": doc.notes,
        "lines": [
            {
                "line": n,
                "supplier_sku": line.supplier_sku,
                "sku": line.sku,
                "title": line.title,
                "quantity": line.quantity,
                "unit_cost_cents": line.unit_cost_cents,
                "unit_cost": money(line.unit_cost_cents),
                "total_cents": line.total_cents,
                "total": money(line.total_cents),
            }
            for n, line in enumerate(doc.lines, start=1)
        ],
        "total_units": doc.total_units,
        "total_cents": doc.total_cents,
        "total": money(doc.total_cents),
    }


def po_pdf(doc: PurchaseOrderDoc) -> bytes:
    """A printable PO (A4); the table repeats its header on every page."""
    return render_purchase_order_pdf(doc)


def po_filename(doc: PurchaseOrderDoc, extension: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in doc.number)
    return f"PO-{safe}.{extension}" if not safe.upper().startswith("PO") else f"{safe}.{extension}"


def _fmt_date(d: date | None) -> str:
    return d.isoformat() if d else "as soon as possible"


def po_email(doc: PurchaseOrderDoc, from_addr: str, reply_to: str | None, confirm_url: str) -> EmailMessage:
    """The PO e-mail: text and HTML bodies with the confirmation link, CSV and PDF attached."""
    if not doc.supplier_email:
        raise ValidationError(f"supplier {doc.supplier_name} has no e-mail address", field="supplier_email")
    if not doc.lines:
        raise ValidationError(f"purchase order {doc.number} has no lines", field="lines")
    buyer = doc.buyer_name or "us"
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = doc.supplier_email
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = (
        f"Purchase order {doc.number} from {doc.buyer_name}"
        if doc.buyer_name
        else (f"Purchase order {doc.number}")
    )

    summary = [
        f"Purchase order {doc.number} ({doc.created.isoformat()})",
        f"Requested delivery: {_fmt_date(doc.requested)}",
        "",
    ]
    for line in doc.lines:
        summary.append(
            f"- {line.quantity} x {line.supplier_sku} ({line.title}) @ {money(line.unit_cost_cents)} {doc.currency}"
            f" = {money(line.total_cents)}"
        )
    summary += ["", f"Total: {money(doc.total_cents)} {doc.currency} ({doc.total_units} units)"]
    ship_to = address_lines(doc.ship_to)
    text = "\n".join(
        [
            f"Hello {doc.supplier_name},",
            "",
            f"Please find attached a purchase order from {buyer} (CSV and PDF).",
            "",
            *summary,
            "",
            "Ship to:",
            *(f"  {s}" for s in ship_to),
            "",
            *([f"Notes: {doc.notes}", ""] if doc.notes else []),
            "Please confirm the order and your expected delivery date here:",
            confirm_url,
            "",
            "Thank you!",
            doc.buyer_name,
        ]
    )
    msg.set_content(text)

    e = html.escape
    rows = "".join(
        f"<tr><td>{e(line.supplier_sku)}</td><td>{e(line.title)}</td>"
        f'<td style="text-align:right">{line.quantity}</td>'
        f'<td style="text-align:right">{money(line.unit_cost_cents)}</td>'
        f'<td style="text-align:right">{money(line.total_cents)}</td></tr>'
        for line in doc.lines
    )
    notes_html = f"<p><strong>Notes:</strong> {e(doc.notes)}</p>" if doc.notes else ""
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>Purchase order {e(doc.number)}</title></head><body>"
        f"<p>Hello {e(doc.supplier_name)},</p>"
        f"<p>Please find attached purchase order <strong>{e(doc.number)}</strong> from {e(buyer)} "
        f"(dated {doc.created.isoformat()}; requested delivery: {e(_fmt_date(doc.requested))}).</p>"
        '<table border="1" cellpadding="4" cellspacing="0">'
        "<thead><tr><th>Supplier SKU</th><th>Item</th><th>Qty</th>"
        f"<th>Unit cost ({e(doc.currency)})</th><th>Total</th></tr></thead>"
        f"<tbody>{rows}</tbody>"
        f'<tfoot><tr><td colspan="4"><strong>Total</strong></td>'
        f'<td style="text-align:right"><strong>{money(doc.total_cents)} {e(doc.currency)}</strong></td></tr></tfoot>'
        "</table>"
        f"<p><strong>Ship to:</strong><br>{'<br>'.join(e(s) for s in ship_to)}</p>"
        f"{notes_html}"
        f'<p><a href="{e(confirm_url, quote=True)}">Confirm this order and your delivery date</a></p>'
        f"<p>Thank you!<br>{e(doc.buyer_name)}</p>"
        "</body></html>"
    )
    msg.add_alternative(body, subtype="html")
    _attach_csv(msg, po_csv(doc), po_filename(doc, "csv"))
    msg.add_attachment(po_pdf(doc), maintype="application", subtype="pdf", filename=po_filename(doc, "pdf"))
    return msg


def _attach_csv(msg: EmailMessage, text: str, filename: str) -> None:
    # Bytes + base64 keep the CSV byte-exact (a text part would have its line endings rewritten);
    # the BOM makes Excel read UTF-8 instead of guessing a legacy code page.
    msg.add_attachment(
        text.encode("utf-8-sig"),
        maintype="text",
        subtype="csv",
        filename=filename,
        params={"charset": "utf-8"},
    )


# -- dropship forward ------------------------------------------------------------------------


def _dropship_row(doc: DropshipForwardDoc, line: DropshipLineDoc) -> list[object]:
    a = line.ship_to
    texts = [
        doc.number,
        line.order_number,
        line.customer_name,
        a.name,
        a.company,
        a.address1,
        a.address2,
        a.city,
        a.province,
        a.zip,
        a.country_code,
        a.phone,
        line.customer_email,
        line.sku,
        line.supplier_sku,
        line.title,
    ]
    return [csv_safe_text(t or "") for t in texts] + [line.quantity]


def dropship_csv(doc: DropshipForwardDoc) -> str:
    """One row per order line, ship-to address spelled out in columns."""
    return _csv_text([list(DROPSHIP_CSV_COLUMNS), *(_dropship_row(doc, line) for line in doc.lines)])


def dropship_json(doc: DropshipForwardDoc) -> dict[str, Any]:
    """Lines grouped by customer order (a supplier ships per order), in first-seen order."""
    orders: dict[str, dict[str, Any]] = {}
    for line in doc.lines:
        order = orders.setdefault(
            line.order_number,
            {
                "order_number": line.order_number,
                "customer_name": line.customer_name,
                "customer_email": line.customer_email,
                "ship_to": _address_dict(line.ship_to),
                "lines": [],
            },
        )
        order["lines"].append(
            {
                "sku": line.sku,
                "supplier_sku": line.supplier_sku,
                "title": line.title,
                "quantity": line.quantity,
            }
        )
    return {
        "type": "dropship_forward",
        "version": 1,
        "number": doc.number,
        "created": doc.created.isoformat(),
        "buyer": doc.buyer_name,
        "supplier": {"name": doc.supplier_name, "email": doc.supplier_email},
        "orders": list(orders.values()),
        "total_units": sum(line.quantity for line in doc.lines),
    }


def dropship_email(
    doc: DropshipForwardDoc, from_addr: str, reply_to: str | None, confirm_url: str | None = None
) -> EmailMessage:
    """The dropship forward e-mail, CSV attached; one block per customer order in the body."""
    if not doc.supplier_email:
        raise ValidationError(f"supplier {doc.supplier_name} has no e-mail address", field="supplier_email")
    if not doc.lines:
        raise ValidationError(f"dropship forward {doc.number} has no lines", field="lines")
    msg = EmailMessage()
    msg["From"] = from_addr
    msg["To"] = doc.supplier_email
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = f"Dropship orders {doc.number}" + (f" from {doc.buyer_name}" if doc.buyer_name else "")
    orders: dict[str, list[DropshipLineDoc]] = {}
    for line in doc.lines:
        orders.setdefault(line.order_number, []).append(line)
    blocks: list[str] = []
    for number, lines in orders.items():
        first = lines[0]
        ship_to = first.ship_to if first.ship_to.name else replace(first.ship_to, name=first.customer_name)
        blocks.append(
            "\n".join(
                [
                    f"Order {number}:",
                    *(
                        f"  - {line.quantity} x {line.supplier_sku} ({line.title or line.sku})"
                        for line in lines
                    ),
                    "  Ship to:",
                    *(f"    {s}" for s in address_lines(ship_to)),
                ]
            )
        )
    text = "\n\n".join(
        [
            f"Hello {doc.supplier_name},",
            f"Please ship the following orders directly to our customers (details in the attached CSV, "
            f"forward {doc.number}):",
            *blocks,
            *(["Please confirm and send tracking numbers here:\n" + confirm_url] if confirm_url else []),
            "Thank you!\n" + doc.buyer_name,
        ]
    )
    msg.set_content(text)
    _attach_csv(msg, dropship_csv(doc), f"dropship-{_safe(doc.number)}.csv")
    return msg


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
