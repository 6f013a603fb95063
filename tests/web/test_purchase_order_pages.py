"""Purchase-order pages: edit a draft, approve and send, dates, receipts, cancel, dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from flask.testing import FlaskClient
from sqlalchemy import select
from web_helpers import Seeded, post

from connector.db.engine import Database
from connector.db.models import ExpectedDateChange, OrderLine, OutboxMessage, PurchaseOrder
from connector.db.uow import UnitOfWork


@dataclass
class PoState:
    status: str
    expected_date: date
    lines: dict[str, tuple[int, int]]  # sku: (line id, ordered)


def _po(db: Database, seeded: Seeded) -> PoState:
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        po = uow.get(PurchaseOrder, seeded.po_id)
        return PoState(po.status, po.expected_date, {pol.sku: (pol.id, pol.ordered) for pol in po.lines})


def _line_id(db: Database, seeded: Seeded, sku: str) -> int:
    return _po(db, seeded).lines[sku][0]


def test_list_and_detail_show_the_draft_and_its_waiting_orders(client: FlaskClient, seeded: Seeded) -> None:
    listing = client.get("/merchant/purchase-orders")
    assert "PO-00001" in listing.text
    detail = client.get(f"/merchant/purchase-orders/{seeded.po_id}").text
    assert "#1001" in detail and "#1002" in detail and "Approve and send" in detail
    assert client.get("/merchant/purchase-orders?status=sent").text.count("PO-00001") == 0


def test_draft_quantities_are_validated_then_saved(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    chair = _line_id(db, seeded, "CHAIR")
    table = _line_id(db, seeded, "TABLE")
    url = f"/merchant/purchase-orders/{seeded.po_id}/quantities"
    bad = post(client, url, {f"qty_{chair}": "-1", f"qty_{table}": "many"})
    assert bad.status_code == 400
    assert f'id="qty_{chair}-error"' in bad.text and f'id="qty_{table}-error"' in bad.text
    ok = post(client, url, {f"qty_{chair}": "12", f"qty_{table}": "1"})
    assert ok.status_code == 302
    assert _po(db, seeded).lines["CHAIR"][1] == 12


def test_approve_and_send_then_a_second_send_is_refused(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    assert post(client, f"/merchant/purchase-orders/{seeded.po_id}/send").status_code == 302
    assert _po(db, seeded).status == "sent"
    again = post(client, f"/merchant/purchase-orders/{seeded.po_id}/send")
    assert again.status_code == 400 and 'id="send-error"' in again.text
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        assert uow.all(select(OutboxMessage).where(OutboxMessage.kind == "purchase_order"))


def test_expected_date_is_validated_and_recorded(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    url = f"/merchant/purchase-orders/{seeded.po_id}/expected-date"
    bad = post(client, url, {"expected_date": "31/12/2026"})
    assert bad.status_code == 400 and 'id="expected_date-error"' in bad.text
    assert post(client, url, {"expected_date": "2026-04-20", "reason": "port strike"}).status_code == 302
    assert _po(db, seeded).expected_date.isoformat() == "2026-04-20"
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        change = uow.all(select(ExpectedDateChange))[0]
        assert change.reason == "port strike" and change.source == "merchant"
        etas = {line.current_eta for line in uow.all(select(OrderLine).where(OrderLine.backordered > 0))}
    assert all(eta is not None and eta.isoformat() >= "2026-04-20" for eta in etas)


def test_receipts_partial_then_full(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    chair = _line_id(db, seeded, "CHAIR")
    url = f"/merchant/purchase-orders/{seeded.po_id}/receive"
    not_sent = post(client, url, {f"recv_{chair}": "1"})
    assert not_sent.status_code == 400 and "send it before receiving" in not_sent.text
    post(client, f"/merchant/purchase-orders/{seeded.po_id}/send")
    nothing = post(client, url, {f"recv_{chair}": ""})
    assert nothing.status_code == 400 and 'id="receive-error"' in nothing.text
    letters = post(client, url, {f"recv_{chair}": "three"})
    assert letters.status_code == 400 and f'id="recv_{chair}-error"' in letters.text
    assert post(client, url, {f"recv_{chair}": "3"}).status_code == 302
    assert _po(db, seeded).status == "partially_received"
    assert "2 line(s) waiting" in client.get("/merchant/worklist").text
    assert post(client, url, {"all": "1"}).status_code == 302
    assert _po(db, seeded).status == "received"
    assert "0 line(s) waiting" in client.get("/merchant/worklist").text


def test_cancel_releases_the_pegs_and_cannot_repeat(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    assert post(client, f"/merchant/purchase-orders/{seeded.po_id}/cancel").status_code == 302
    assert _po(db, seeded).status == "cancelled"
    assert "not ordered yet" in client.get("/merchant/worklist").text
    again = post(client, f"/merchant/purchase-orders/{seeded.po_id}/cancel")
    assert again.status_code == 400 and 'id="cancel-error"' in again.text


def test_dead_letters_can_be_retried_once(client: FlaskClient, db: Database, seeded: Seeded, now: datetime) -> None:
    with UnitOfWork(db, seeded.shop_id) as uow:
        message = uow.add(OutboxMessage(kind="delayed", target="customer", subject="1001", payload={},
                                        idempotency_key="dead-1", state="dead", attempts=8, last_error="SMTP 550",
                                        next_attempt_at=now, created_at=now))
        uow.commit()
        message_id = message.id
    page = client.get("/merchant/outbox/dead").text
    assert "SMTP 550" in page
    assert post(client, f"/merchant/outbox/{message_id}/retry").status_code == 302
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        retried = uow.get(OutboxMessage, message_id)
        assert retried.state == "pending" and retried.next_attempt_at == now
    assert post(client, f"/merchant/outbox/{message_id}/retry").status_code == 400
