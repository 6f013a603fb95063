"""A dropship line cancelled before its forward leaves the queue; after it, the supplier is told."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace
from datetime import datetime

from flow_support import (
    SUPPLIER_EMAIL,
    WEBHOOK_SECRET,
    SupplierApi,
    later,
    order_record,
    outbox,
    router,
    seed_supplier,
)
from sqlalchemy import select
from test_flow_dropship_pages import Clock, merchant_client, row_text

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from adapters.suppliers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from connector.db.engine import Database
from connector.db.models import DropshipForward, OrderLine
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderState
from connector.services.dropship import dropship_check
from connector.services.dropship_queries import dropship_queues
from connector.services.orders import cancel_order_units, record_order
from connector.services.outbox import deliver_due

SKUS = {"PLANT-1": ("Olive tree", 3000), "POT-2": ("Terracotta pot", 800)}


def _forward_line_ids(db: Database, shop_id: int) -> dict[str, int | None]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return {ln.external_id: ln.dropship_forward_id for ln in uow.all(select(OrderLine).order_by(OrderLine.id))}


def _only_forward(db: Database, shop_id: int) -> DropshipForward:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        [fw] = uow.all(select(DropshipForward))
        uow.session.expunge_all()
        return fw


def _csv_rows(mail: object) -> list[dict[str, str]]:
    [attachment] = list(mail.iter_attachments())  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8-sig"))))


def test_a_line_cancelled_while_waiting_leaves_the_queue_and_the_supplier_never_hears_of_it(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=3)
    for n in (1, 2):
        record_order(db, shop_id, order_record(1000 + n, {"PLANT-1": 1}, later(now, hours=n), seeded.variants),
                     later(now, hours=n))
    assert cancel_order_units(db, shop_id, "o1001", later(now, hours=3)) == 1

    [queue] = dropship_queues(db, shop_id, later(now, hours=3))
    assert (queue.orders, queue.units) == (1, 1)
    record_order(db, shop_id, order_record(1003, {"PLANT-1": 1}, later(now, hours=4), seeded.variants),
                 later(now, hours=4))
    assert dropship_check(db, shop_id, later(now, hours=4)).forwards == []  # 2 units of 3: the cancelled one is gone
    record_order(db, shop_id, order_record(1004, {"PLANT-1": 1}, later(now, hours=5), seeded.variants),
                 later(now, hours=5))
    assert dropship_check(db, shop_id, later(now, hours=5)).forwards == ["F-00001"]

    assert _forward_line_ids(db, shop_id)["o1001-PLANT-1"] is None
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=6))
    [mail] = smtp_sink.wait_for(1)
    assert {r["order_number"] for r in _csv_rows(mail)} == {"#1002", "#1003", "#1004"}
    assert outbox(db, shop_id, "dropship_cancellation") == []


def test_a_cancellation_after_the_forward_went_out_by_email_reaches_the_supplier_once_as_csv(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True)
    record_order(db, shop_id, order_record(2001, {"PLANT-1": 1}, now, seeded.variants), now)
    closing = order_record(2002, {"PLANT-1": 1, "POT-2": 3}, now, seeded.variants)
    record_order(db, shop_id, closing, now)
    dropship_check(db, shop_id, now)
    mailer = SmtpMailer(smtp_sink.url)
    deliver_due(db, shop_id, router(db, mailer), later(now, minutes=1))
    smtp_sink.wait_for(1)
    assert _only_forward(db, shop_id).status == "sent"

    # The customer lowers POT-2 from 3 to 1 (an order edit), then the store cancels the order.
    edited = replace(closing, updated_at=later(now, hours=1),
                     lines=(closing.lines[0], replace(closing.lines[1], quantity=1)))
    record_order(db, shop_id, edited, later(now, hours=1))
    cancelled = replace(edited, state=OrderState.CLOSED, updated_at=later(now, hours=2))
    record_order(db, shop_id, cancelled, later(now, hours=2))
    record_order(db, shop_id, cancelled, later(now, hours=3))  # the same webhook delivered twice

    messages = outbox(db, shop_id, "dropship_cancellation")
    assert [(m.payload["order_number"], m.payload["sku"], m.payload["quantity"]) for m in messages] == [
        ("#2002", "POT-2", 2), ("#2002", "PLANT-1", 1), ("#2002", "POT-2", 1)
    ]
    assert {m.target for m in messages} == {"supplier"} and {m.subject for m in messages} == {"F-00001"}

    deliver_due(db, shop_id, router(db, mailer), later(now, hours=3))
    deliver_due(db, shop_id, router(db, mailer), later(now, hours=4))  # nothing left to send

    mails = smtp_sink.wait_for(4)
    assert len(mails) == 4
    cancellations = mails[1:]
    assert all(m["To"] == SUPPLIER_EMAIL and "Cancelled" in m["Subject"] and "#2002" in m["Subject"]
               and "F-00001" in m["Subject"] for m in cancellations)
    rows = [row for m in cancellations for row in _csv_rows(m)]
    assert [(r["forward_number"], r["order_number"], r["supplier_sku"], r["quantity_cancelled"]) for r in rows] == [
        ("F-00001", "#2002", "AN-POT-2", "2"), ("F-00001", "#2002", "AN-PLANT-1", "1"),
        ("F-00001", "#2002", "AN-POT-2", "1"),
    ]
    assert {m.state for m in outbox(db, shop_id, "dropship_cancellation")} == {"sent"}
    assert cancel_order_units(db, shop_id, "o2002", later(now, hours=5)) == 0
    assert len(outbox(db, shop_id, "dropship_cancellation")) == 3

    page = merchant_client(db, shop_id, Clock(later(now, hours=5))).get(
        f"/merchant/dropship/forwards/{_only_forward(db, shop_id).id}").text
    assert "cancellation: order #2002, 2 × POT-2 sent" in row_text(page, "kind", "dropship_cancellation")
    # POT-2: nothing left to ship, 3 units cancelled on the line.
    assert row_text(page, "sku", "POT-2").endswith("POT-2 AN-POT-2 Terracotta pot 0 3 no")
    listing = merchant_client(db, shop_id, Clock(later(now, hours=5))).get("/merchant/dropship").text
    assert row_text(listing, "number", "F-00001").endswith(" 3")


def test_a_webhook_supplier_gets_a_signed_cancellation_retried_after_a_500(
    db: Database, shop_id: int, now: datetime, supplier_api: SupplierApi, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, delivery_method="webhook",
                           webhook_url=supplier_api.url)
    record_order(db, shop_id, order_record(3001, {"PLANT-1": 1}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(3002, {"POT-2": 2}, now, seeded.variants), now)
    dropship_check(db, shop_id, now)
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), now)
    assert len(supplier_api.requests) == 1

    assert cancel_order_units(db, shop_id, "o3002", later(now, hours=1), sku="POT-2", qty=1) == 1
    supplier_api.statuses = [500]
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=1))
    [failed] = outbox(db, shop_id, "dropship_cancellation")
    assert failed.state == "pending" and failed.attempts == 1 and "500" in (failed.last_error or "")
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=2))

    assert outbox(db, shop_id, "dropship_cancellation")[0].state == "sent"
    _, (h1, first), (h2, second) = supplier_api.requests
    assert first == second and h1["Idempotency-Key"] == h2["Idempotency-Key"]  # the same document, retried
    verify(second, WEBHOOK_SECRET, h2[TIMESTAMP_HEADER], h2[SIGNATURE_HEADER], now=time.time())
    payload = json.loads(second)
    assert payload["type"] == "dropship_cancellation" and payload["forward"] == "F-00001"
    assert payload["lines"] == [{"order_number": "#3002", "sku": "POT-2", "supplier_sku": "AN-POT-2",
                                 "title": "Terracotta pot", "quantity_cancelled": 1}]
    assert smtp_sink.messages == []


def test_a_cancellation_before_the_forward_was_attempted_is_left_out_of_the_forward_instead(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True)
    for n in (1, 2, 3):
        record_order(db, shop_id, order_record(4000 + n, {"PLANT-1": 1}, now, seeded.variants), now)
    dropship_check(db, shop_id, now)
    assert cancel_order_units(db, shop_id, "o4002", later(now, minutes=1)) == 1

    assert outbox(db, shop_id, "dropship_cancellation") == []
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, minutes=2))
    [mail] = smtp_sink.wait_for(1)
    assert [r["order_number"] for r in _csv_rows(mail)] == ["#4001", "#4003"]
