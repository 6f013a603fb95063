"""Dropship lines wait per supplier until the quota, then leave as one forward."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime
from types import SimpleNamespace

import pytest
from flow_support import (
    SUPPLIER_EMAIL,
    WEBHOOK_SECRET,
    SupplierApi,
    later,
    order_record,
    outbox,
    router,
    seed_supplier,
    shop_row,
)
from sqlalchemy import select

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from adapters.suppliers.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from bootstrap.dispatch_suppliers import dropship_check_job
from connector.db.engine import Database
from connector.db.models import DropshipForward, OrderLine
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from connector.services.dropship import Tracking, dropship_check, record_tracking
from connector.services.orders import record_order
from connector.services.outbox import deliver_due

SKUS = {"PLANT-1": ("Olive tree", 3000), "POT-2": ("Terracotta pot", 800)}


def _forwards(db: Database, shop_id: int) -> list[DropshipForward]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = list(uow.all(select(DropshipForward).order_by(DropshipForward.id)))
        uow.session.expunge_all()
        return rows


def _lines(db: Database, shop_id: int) -> list[OrderLine]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = list(uow.all(select(OrderLine).order_by(OrderLine.id)))
        uow.session.expunge_all()
        return rows


def test_four_orders_wait_and_the_fifth_unit_sends_one_forward_with_five_addresses(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=5)
    for n in range(1, 5):
        record_order(db, shop_id, order_record(1000 + n, {"PLANT-1": 1}, later(now, hours=n), seeded.variants,
                                               city=f"City {n}"), later(now, hours=n))
    assert {ln.kind for ln in _lines(db, shop_id)} == {"dropship"}

    waiting = dropship_check(db, shop_id, later(now, hours=5))
    assert waiting.forwards == [] and waiting.waiting_lines == 4
    assert outbox(db, shop_id, "dropship_forward") == []

    record_order(db, shop_id, order_record(1005, {"PLANT-1": 1}, later(now, hours=6), seeded.variants,
                                           city="City 5"), later(now, hours=6))
    result = dropship_check(db, shop_id, later(now, hours=7))

    assert result.forwards == ["F-00001"] and result.forwarded_lines == 5 and result.waiting_lines == 0
    [forward] = _forwards(db, shop_id)
    assert forward.reason == "quota" and forward.status == "pending"
    assert all(ln.dropship_forward_id == forward.id for ln in _lines(db, shop_id))
    assert shop_row(db, shop_id).forward_sequence == 1
    [message] = outbox(db, shop_id, "dropship_forward")
    assert message.target == "supplier" and message.payload["dropship_forward_id"] == forward.id
    assert dropship_check(db, shop_id, later(now, hours=8)).forwards == []  # nothing waits twice

    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, hours=8))

    [mail] = smtp_sink.wait_for(1)
    assert mail["To"] == SUPPLIER_EMAIL and "F-00001" in mail["Subject"]
    [attachment] = list(mail.iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8-sig"))))
    assert len(rows) == 5
    assert {r["forward_number"] for r in rows} == {"F-00001"}
    assert {(r["ship_to_name"], r["address1"], r["city"]) for r in rows} == {
        (f"Customer {1000 + n}", f"{1000 + n} Main Street", f"City {n}") for n in range(1, 6)
    }
    assert {(r["sku"], r["supplier_sku"], r["quantity"]) for r in rows} == {("PLANT-1", "AN-PLANT-1", "1")}
    assert "https://connector.test/supplier/forward/" in mail.get_body(("plain",)).get_content()
    [forward] = _forwards(db, shop_id)
    assert forward.status == "sent" and outbox(db, shop_id, "dropship_forward")[0].state == "sent"


def test_the_max_wait_sends_a_forward_below_the_quota(db: Database, shop_id: int, now: datetime) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=5, dropship_max_wait_days=3)
    record_order(db, shop_id, order_record(2001, {"PLANT-1": 1}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(2002, {"POT-2": 2}, later(now, days=1), seeded.variants),
                 later(now, days=1))

    assert dropship_check(db, shop_id, later(now, days=2, hours=23)).forwards == []
    result = dropship_check(db, shop_id, later(now, days=3))

    assert result.forwards == ["F-00001"] and result.forwarded_lines == 2
    [forward] = _forwards(db, shop_id)
    assert forward.reason == "max_wait"
    [message] = outbox(db, shop_id, "dropship_forward")
    assert message.payload["units"] == 3


def test_a_value_quota_is_enough_on_its_own(db: Database, shop_id: int, now: datetime) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=50,
                           dropship_min_value_cents=6000)
    record_order(db, shop_id, order_record(3001, {"PLANT-1": 1}, now, seeded.variants), now)
    assert dropship_check(db, shop_id, now).forwards == []  # 30.00 at cost
    record_order(db, shop_id, order_record(3002, {"PLANT-1": 1}, now, seeded.variants), now)
    assert dropship_check(db, shop_id, now).forwards == ["F-00001"]  # 60.00 at cost


def test_tracking_ships_the_lines_and_queues_one_store_fulfilment_per_order(
    db: Database, shop_id: int, now: datetime
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True)  # no quota: forwards at once
    record_order(db, shop_id, order_record(4001, {"PLANT-1": 1, "POT-2": 2}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(4002, {"PLANT-1": 3}, now, seeded.variants), now)
    assert dropship_check(db, shop_id, now).forwards == ["F-00001"]
    shipped_at = later(now, days=2)

    one = record_tracking(db, shop_id, "F-00001", Tracking("1Z999", "UPS", "https://ups.test/1Z999", "#4001"),
                          shipped_at)

    assert (one.shipped_lines, one.shipped_units, one.messages, one.status) == (2, 3, 1, "sent")
    [message] = outbox(db, shop_id, "fulfil_dropship")
    assert message.target == "storefront" and message.subject == "o4001"
    assert message.payload == {
        "forward": "F-00001",
        "dropship_forward_id": _forwards(db, shop_id)[0].id,
        "order_id": "o4001",
        "order_graphql_id": None,
        "order_number": "#4001",
        "lines": [{"line_id": "o4001-PLANT-1", "sku": "PLANT-1", "quantity": 1},
                  {"line_id": "o4001-POT-2", "sku": "POT-2", "quantity": 2}],
        "tracking": {"number": "1Z999", "company": "UPS", "url": "https://ups.test/1Z999"},
    }
    lines = {ln.external_id: ln for ln in _lines(db, shop_id)}
    assert (lines["o4001-POT-2"].backordered, lines["o4001-POT-2"].allocated, lines["o4001-POT-2"].fulfilled) == (0, 2, 2)
    assert lines["o4002-PLANT-1"].backordered == 3

    rest = record_tracking(db, shop_id, _forwards(db, shop_id)[0].id, Tracking("1Z1000", "UPS"), shipped_at)
    assert (rest.shipped_lines, rest.messages, rest.status) == (1, 1, "shipped")
    again = record_tracking(db, shop_id, "F-00001", Tracking("1Z1000", "UPS"), shipped_at)
    assert (again.shipped_lines, again.messages) == (0, 0)
    assert len(outbox(db, shop_id, "fulfil_dropship")) == 2
    [forward] = _forwards(db, shop_id)
    assert forward.tracking is not None and len(forward.tracking["parcels"]) == 2

    with pytest.raises(ValidationError):
        record_tracking(db, shop_id, "F-00001", Tracking("X", order_number="#9999"), shipped_at)
    with pytest.raises(ValidationError):
        record_tracking(db, shop_id, "F-00001", Tracking("X", url="javascript:alert(1)"), shipped_at)


def test_a_webhook_supplier_gets_the_forward_as_signed_json_grouped_by_order(
    db: Database, shop_id: int, now: datetime, supplier_api: SupplierApi, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, delivery_method="webhook",
                           webhook_url=supplier_api.url)
    record_order(db, shop_id, order_record(6001, {"PLANT-1": 1, "POT-2": 1}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(6002, {"POT-2": 4}, now, seeded.variants), now)
    job = dropship_check_job(SimpleNamespace(db=db), shop_id, now)
    assert job.forwards == ["F-00001"]

    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), now)

    [(headers, body)] = supplier_api.requests
    verify(body, WEBHOOK_SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=time.time())
    payload = json.loads(body)
    assert payload["type"] == "dropship_forward" and payload["number"] == "F-00001" and payload["total_units"] == 6
    assert [(o["order_number"], o["ship_to"]["address1"], len(o["lines"])) for o in payload["orders"]] == [
        ("#6001", "6001 Main Street", 2), ("#6002", "6002 Main Street", 1)
    ]
    assert payload["confirm_url"].startswith("https://connector.test/supplier/forward/")
    assert smtp_sink.messages == [] and _forwards(db, shop_id)[0].status == "sent"
