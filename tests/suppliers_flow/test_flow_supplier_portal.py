"""The supplier answers through the signed link in the PO e-mail: confirm, quantities, dates."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flow_support import SETTINGS, later, only_po, order_record, outbox, router, seed_supplier
from sqlalchemy import select

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from connector.db.engine import Database
from connector.db.models import DropshipForward, ExpectedDateChange, OrderLine, Peg
from connector.db.uow import UnitOfWork
from connector.services import supplier_confirmation
from connector.services.consolidation import consolidate_backorders
from connector.services.dropship import dropship_check
from connector.services.orders import record_order
from connector.services.outbox import deliver_due
from connector.services.purchasing import send_purchase_order
from connector.web import create_app

SKUS = {"LAMP-1": ("Oak lamp", 1999), "SHADE-3": ("Linen shade", 500)}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _app(db: Database, clock: Callable[[], datetime]) -> Flask:
    app = create_app(SETTINGS, db, clock=clock)
    app.config["TESTING"] = True
    return app


def _emailed_link(db: Database, shop_id: int, now: datetime, sink: SmtpSink, kind: str) -> str:
    deliver_due(db, shop_id, router(db, SmtpMailer(sink.url)), now)
    [mail] = sink.wait_for(1)
    match = re.search(rf"https://connector\.test(/supplier/{kind}/\S+)", mail.get_body(("plain",)).get_content())
    assert match is not None
    return match.group(1)


@pytest.fixture
def sent_po(db: Database, shop_id: int, now: datetime) -> int:
    seeded = seed_supplier(db, shop_id, skus=SKUS, lead_time_days=10)
    record_order(db, shop_id, order_record(1001, {"LAMP-1": 3, "SHADE-3": 1}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(1002, {"LAMP-1": 2}, now, seeded.variants), now)
    consolidate_backorders(db, shop_id, now)
    po = only_po(db, shop_id)
    send_purchase_order(db, shop_id, po.id, now)
    return po.id


def _pegged_lines(db: Database, shop_id: int) -> dict[str, OrderLine]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = uow.all(select(OrderLine).join(Peg, Peg.order_line_id == OrderLine.id))
        uow.session.expunge_all()
        return {ln.external_id: ln for ln in rows}


def test_the_link_in_the_po_mail_sets_a_later_date_and_pegged_etas_follow_with_delays_recorded(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink, sent_po: int
) -> None:
    path = _emailed_link(db, shop_id, now, smtp_sink, "po")
    clock = Clock(later(now, days=1))
    client: FlaskClient = _app(db, clock).test_client()
    before = only_po(db, shop_id)
    etas_before = {k: ln.current_eta for k, ln in _pegged_lines(db, shop_id).items()}
    assert len(etas_before) == 3

    page = client.get(path)
    assert page.status_code == 200 and before.number in page.text and "LAMP-1" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"

    new_date = before.expected_date + timedelta(days=21)
    answer = client.post(path, data={"expected_date": new_date.isoformat(), "reason": "Factory closed for repairs",
                                     "qty-LAMP-1": "5", "qty-SHADE-3": "1", "confirm": "1"})
    assert answer.status_code == 303

    po = only_po(db, shop_id)
    assert (po.status, po.expected_date, po.expected_date_source) == ("confirmed", new_date, "supplier")
    assert po.confirmed_at == clock.now
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        [change] = uow.all(select(ExpectedDateChange))
        assert (change.source, change.reason, change.old_date) == ("supplier", "Factory closed for repairs",
                                                                    before.expected_date)
    for key, line in _pegged_lines(db, shop_id).items():
        assert line.current_eta is not None and etas_before[key] is not None
        assert line.current_eta - etas_before[key] == timedelta(days=21)
    delayed = outbox(db, shop_id, "delayed")
    assert {m.subject for m in delayed} == {"o1001", "o1002"}
    assert all(m.target == "customer" for m in delayed)
    assert {ln["line"] for m in delayed for ln in m.payload["lines"]} == set(etas_before)
    assert "Thank you" in client.get(path + "?done=saved").text


def test_the_supplier_cuts_a_quantity_by_json_and_the_last_order_waits_for_the_next_po(
    db: Database, shop_id: int, now: datetime, sent_po: int
) -> None:
    po = only_po(db, shop_id)
    token = supplier_confirmation.make_token(
        SETTINGS.secret_key, supplier_confirmation.po_link(shop_id, po.id, po.number, now)
    )
    client = _app(db, Clock(now)).test_client()

    answer = client.post(f"/supplier/po/{token}", json={"quantities": {"AN-LAMP-1": 3}, "confirm": True})

    assert answer.status_code == 200, answer.text
    assert answer.json is not None and answer.json["confirmed"] is True
    assert answer.json["quantities_changed"] == ["LAMP-1"]
    lamp = next(pol for pol in only_po(db, shop_id).lines if pol.sku == "LAMP-1")
    assert lamp.ordered == 3
    pegged = _pegged_lines(db, shop_id)
    assert pegged["o1001-LAMP-1"].pegged == 3 and "o1002-LAMP-1" not in pegged  # newest order lost its peg

    bad = client.post(f"/supplier/po/{token}", json={"quantities": {"NOPE": 1}})
    assert bad.status_code == 400 and bad.json is not None and bad.json["error"]["field"] == "quantity[NOPE]"


def test_a_tampered_or_expired_link_is_refused_and_changes_nothing(
    db: Database, shop_id: int, now: datetime, sent_po: int
) -> None:
    po = only_po(db, shop_id)
    link = supplier_confirmation.po_link(shop_id, po.id, po.number, now)
    token = supplier_confirmation.make_token(SETTINGS.secret_key, link)
    clock = Clock(now)
    client = _app(db, clock).test_client()
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    forged = supplier_confirmation.make_token("another-secret", link)
    other_po = supplier_confirmation.make_token(
        SETTINGS.secret_key, supplier_confirmation.po_link(shop_id, po.id, "PO-99999", now)
    )
    as_forward = supplier_confirmation.make_token(
        SETTINGS.secret_key, supplier_confirmation.forward_link(shop_id, po.id, po.number, now)
    )

    for bad in (tampered, forged, other_po):
        assert client.get(f"/supplier/po/{bad}").status_code == 403
        assert client.post(f"/supplier/po/{bad}", data={"confirm": "1"}).status_code == 403
    assert client.get(f"/supplier/po/{as_forward}").status_code == 403
    assert client.get(f"/supplier/forward/{token}").status_code == 403

    clock.now = link.expires_at
    expired = client.post(f"/supplier/po/{token}", data={"confirm": "1"})
    assert expired.status_code == 410 and "expired" in expired.text
    assert client.get(f"/supplier/po/{token}", headers={"Accept": "application/json"}).json == {
        "error": {"code": "link_expired", "message": f"this link expired on {link.expires_at.date()}. "
                                                     "Please ask us for a new link."}
    }
    assert only_po(db, shop_id).status == "sent"

    clock.now = link.expires_at - timedelta(seconds=1)
    assert client.get(f"/supplier/po/{token}").status_code == 200


def test_a_bad_date_is_explained_on_the_page(db: Database, shop_id: int, now: datetime, sent_po: int) -> None:
    po = only_po(db, shop_id)
    token = supplier_confirmation.make_token(
        SETTINGS.secret_key, supplier_confirmation.po_link(shop_id, po.id, po.number, now)
    )
    client = _app(db, Clock(now)).test_client()
    answer = client.post(f"/supplier/po/{token}", data={"expected_date": "next week"})
    assert answer.status_code == 400 and "YYYY-MM-DD" in answer.text
    assert only_po(db, shop_id).expected_date == po.expected_date


def test_the_supplier_sends_tracking_through_the_forward_link(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True)
    record_order(db, shop_id, order_record(5001, {"LAMP-1": 1}, now, seeded.variants), now)
    record_order(db, shop_id, order_record(5002, {"SHADE-3": 2}, now, seeded.variants), now)
    dropship_check(db, shop_id, now)
    path = _emailed_link(db, shop_id, now, smtp_sink, "forward")
    client = _app(db, Clock(later(now, days=2))).test_client()

    page = client.get(path)
    assert page.status_code == 200 and "#5001" in page.text and "5002 Main Street" in page.text

    answer = client.post(path + "/tracking", data={"order_number": "#5001", "tracking_number": "1Z999",
                                                   "company": "UPS", "tracking_url": "https://ups.test/1Z999"})
    assert answer.status_code == 303
    rest = client.post(path + "/tracking", json={"tracking_number": "1Z1000"})
    assert rest.status_code == 200 and rest.json == {"forward": "F-00001", "status": "shipped",
                                                     "shipped_lines": 1, "shipped_units": 2}

    fulfil = outbox(db, shop_id, "fulfil_dropship")
    assert [(m.subject, m.payload["tracking"]["number"]) for m in fulfil] == [("o5001", "1Z999"), ("o5002", "1Z1000")]
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        [forward] = uow.all(select(DropshipForward))
        assert forward.status == "shipped"
    assert client.post(path + "/tracking", data={"tracking_number": " "}).status_code == 400
