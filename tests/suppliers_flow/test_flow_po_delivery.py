"""A purchase order leaves through the outbox and arrives at the supplier exactly once."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime

import pypdf
from flow_support import (
    SUPPLIER_EMAIL,
    WEBHOOK_SECRET,
    SupplierApi,
    dead_port,
    later,
    only_po,
    order_record,
    outbox,
    router,
    seed_supplier,
)

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer, message_id_for
from adapters.suppliers.documents import parse_po_csv
from adapters.suppliers.model import PurchaseOrderLineDoc
from adapters.suppliers.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from bootstrap.dispatch_suppliers import delivery_key
from connector.db.engine import Database
from connector.ports import OutboxEnvelope
from connector.services.consolidation import consolidate_backorders
from connector.services.orders import record_order
from connector.services.outbox import deliver_due
from connector.services.purchasing import cancel_purchase_order, send_purchase_order

SKUS = {"LAMP-1": ('Oak lamp, "large"', 1999), "=SUM(A1)": ("Formula-looking SKU", 2250), "SHADE-3": ("Shade", 500)}


def _sent_po(db: Database, shop_id: int, now: datetime, **supplier: object) -> int:
    seeded = seed_supplier(db, shop_id, skus=SKUS, **supplier)  # type: ignore[arg-type]
    record_order(db, shop_id, order_record(1001, {"LAMP-1": 3, "=SUM(A1)": 2}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(1002, {"LAMP-1": 1, "SHADE-3": 4}, now, seeded.variants), now)
    consolidate_backorders(db, shop_id, now)
    po = only_po(db, shop_id)
    send_purchase_order(db, shop_id, po.id, now)
    return po.id


def test_a_sent_po_arrives_by_smtp_with_a_csv_of_exactly_its_lines_and_a_pdf_that_opens(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    _sent_po(db, shop_id, now)
    po = only_po(db, shop_id)

    report = deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), now)

    assert report.sent >= 1 and report.retried == 0 and report.dead == 0
    [mail] = smtp_sink.wait_for(1)
    [message] = outbox(db, shop_id, "purchase_order")
    assert message.state == "sent"
    assert mail["To"] == SUPPLIER_EMAIL
    assert po.number in mail["Subject"]
    assert mail["Message-ID"] == message_id_for(f"shop-{shop_id}:{message.idempotency_key}", "bois.test")
    attachments = {a.get_filename(): a for a in mail.iter_attachments()}
    csv_part = attachments[f"{po.number}.csv"]
    lines = parse_po_csv(csv_part.get_payload(decode=True).decode("utf-8-sig"))
    expected = {(pol.sku, pol.supplier_sku, pol.ordered, pol.unit_cost_cents) for pol in po.lines}
    assert {(ln.sku, ln.supplier_sku, ln.quantity, ln.unit_cost_cents) for ln in lines} == expected
    assert len(lines) == len(po.lines) == 3
    assert PurchaseOrderLineDoc("AN-LAMP-1", "LAMP-1", 'Oak lamp, "large"', 4, 1999) in lines

    pdf = pypdf.PdfReader(io.BytesIO(attachments[f"{po.number}.pdf"].get_payload(decode=True)))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert po.number in text
    for pol in po.lines:
        assert pol.sku in text
    body = mail.get_body(("plain",)).get_content()
    assert "https://connector.test/supplier/po/" in body

    # Delivered is delivered: a second run sends nothing again.
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=1))
    assert len(smtp_sink.messages) == 1


def test_a_webhook_supplier_gets_signed_json_and_a_500_answer_is_retried_with_the_same_key(
    db: Database, shop_id: int, now: datetime, supplier_api: SupplierApi, smtp_sink: SmtpSink
) -> None:
    _sent_po(db, shop_id, now, delivery_method="webhook", webhook_url=supplier_api.url)
    po = only_po(db, shop_id)
    supplier_api.statuses = [500]
    dispatch = router(db, SmtpMailer(smtp_sink.url))

    first = deliver_due(db, shop_id, dispatch, now)
    [message] = outbox(db, shop_id, "purchase_order")
    assert first.retried == 1
    assert message.state == "pending" and message.attempts == 1 and "500" in (message.last_error or "")

    second = deliver_due(db, shop_id, dispatch, later(now, hours=1))
    [message] = outbox(db, shop_id, "purchase_order")
    assert second.sent >= 1 and message.state == "sent" and message.attempts == 2

    assert len(supplier_api.requests) == 2
    keys = set()
    for headers, body in supplier_api.requests:
        verify(body, WEBHOOK_SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=time.time())
        keys.add(headers[IDEMPOTENCY_HEADER])
        payload = json.loads(body)
        assert payload["type"] == "purchase_order" and payload["number"] == po.number
        assert {(ln["sku"], ln["quantity"]) for ln in payload["lines"]} == {(p.sku, p.ordered) for p in po.lines}
        assert payload["confirm_url"].startswith("https://connector.test/supplier/po/")
    assert keys == {f"shop-{shop_id}:{message.idempotency_key}"}
    assert smtp_sink.messages == []  # a webhook supplier gets no e-mail


def test_smtp_down_is_retried_and_the_po_arrives_once(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    _sent_po(db, shop_id, now)

    down = deliver_due(db, shop_id, router(db, SmtpMailer(f"smtp://127.0.0.1:{dead_port()}", timeout=2)), now)
    assert down.retried == 1 and smtp_sink.messages == []
    smtp_sink.refuse_next(1)  # back up, but answers 451 "try again later" once
    busy = deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=1))
    assert busy.retried == 1 and smtp_sink.messages == []
    up = deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=2))
    assert up.sent >= 1

    [message] = outbox(db, shop_id, "purchase_order")
    assert message.state == "sent" and message.attempts == 3
    smtp_sink.wait_for(1)
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=3))
    assert len(smtp_sink.messages) == 1

    # A worker that dies after sending redelivers: same Message-ID, so the receiver can dedupe.
    envelope = OutboxEnvelope(message.id, shop_id, message.kind, message.target, message.subject,
                              dict(message.payload), message.idempotency_key, message.attempts, message.created_at)
    router(db, SmtpMailer(smtp_sink.url))(envelope)
    first, again = smtp_sink.wait_for(2)
    assert first["Message-ID"] == again["Message-ID"] == message_id_for(delivery_key(envelope), "bois.test")


def test_a_po_cancelled_before_delivery_is_not_sent_and_says_why(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    po_id = _sent_po(db, shop_id, now)
    cancel_purchase_order(db, shop_id, po_id, now)

    report = deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), now)

    [message] = outbox(db, shop_id, "purchase_order")
    assert report.dead == 1 and message.state == "dead" and "cancelled" in (message.last_error or "")
    assert smtp_sink.messages == []
