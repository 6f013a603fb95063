"""The one-click cancellation link from a customer e-mail, through the Flask blueprint."""

from __future__ import annotations

import re
from datetime import date

import pytest
from comms_support import (
    SETTINGS,
    T0,
    Clock,
    customer_mails,
    days,
    deliver,
    line,
    mail_dispatcher,
    messages,
    only_po,
    place_order,
    seed_catalogue,
    set_shop_settings,
    text_of,
)
from flask import Flask
from flask.testing import FlaskClient

from adapters.mail.sink import SmtpSink
from connector.db.engine import Database
from connector.services.cancellation import CancelLink, sign_cancel_link
from connector.services.consolidation import consolidate_backorders
from connector.services.purchasing import receive_purchase_order, send_purchase_order
from connector.web import create_app

LINK = re.compile(r"https://app\.example(/orders/cancel/\S+)")


@pytest.fixture
def app(db: Database, clock: Clock) -> Flask:
    app = create_app(SETTINGS, db, clock=clock)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _first_and_next_customer(db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock) -> str:
    """Order 1001 waits on a sent PO; 1002 came later and waits behind it. Returns 1001's link."""
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 2, "SHADE-9": 1})
    consolidate_backorders(db, shop_id, T0)
    send_purchase_order(db, shop_id, only_po(db, shop_id).id, T0)
    place_order(db, shop_id, 1002, {"LAMP-1": 2}, now=T0 + days(1), email="noor@example.com", name="Noor")
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(1))
    (mail,) = [m for m in customer_mails(smtp_sink) if "camille@example.com" in str(m["To"])]
    found = LINK.search(text_of(mail))
    assert found is not None
    return found.group(1)


def test_the_link_cancels_only_waiting_units_and_they_go_to_the_next_order(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    path = _first_and_next_customer(db, shop_id, smtp_sink, clock)
    clock.now = T0 + days(2)

    page = client.get(path)
    assert page.status_code == 200
    assert "2 &times; Oak table lamp (LAMP-1)" in page.text and "1 &times; Linen shade" in page.text
    assert line(db, shop_id, "1001-LAMP-1").cancelled == 0  # looking is not cancelling

    done = client.post(path)
    assert done.status_code == 200 and "We cancelled 3 items of order #1001" in done.text
    cancelled = line(db, shop_id, "1001-LAMP-1")
    assert (cancelled.cancelled, cancelled.backordered, cancelled.pegged) == (2, 0, 0)
    (request,) = messages(db, shop_id, "cancellation_requested")
    assert request.target == "merchant" and request.payload["mode"] == "dashboard"
    assert request.payload["lines"] == [
        {"sku": "LAMP-1", "line": "1001-LAMP-1", "units": 2},
        {"sku": "SHADE-9", "line": "1001-SHADE-9", "units": 1},
    ]

    # The PO's lamps arrive: with 1001 cancelled they go to the next customer in the queue.
    receive_purchase_order(db, shop_id, only_po(db, shop_id).id, {"LAMP-1": 2}, T0 + days(3))
    nxt = line(db, shop_id, "1002-LAMP-1")
    assert (nxt.allocated, nxt.backordered) == (2, 0)
    before = len(customer_mails(smtp_sink))
    report = deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(3))
    assert report.dead == 0
    ready = customer_mails(smtp_sink)[before:]
    assert [str(m["To"]) for m in ready] == ["Noor <noor@example.com>"]
    assert messages(db, shop_id, "cancellation_requested")[0].state == "sent"  # left as the merchant's task


def test_a_link_works_once(db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient) -> None:
    path = _first_and_next_customer(db, shop_id, smtp_sink, clock)
    assert client.post(path).status_code == 200
    again = client.post(path)
    assert again.status_code == 409 and "already used" in again.text
    assert client.get(path).status_code == 409
    assert len(messages(db, shop_id, "cancellation_requested")) == 1


def test_a_tampered_link_is_refused_and_changes_nothing(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    path = _first_and_next_customer(db, shop_id, smtp_sink, clock)
    # Point the token at the other order while keeping its signature.
    forged = sign_cancel_link("not-our-secret", CancelLink(shop_id, "1002", "1", date(2027, 1, 1)))
    token = path.rsplit("/", 1)[1]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (f"/orders/cancel/{forged}", f"/orders/cancel/{flipped}", "/orders/cancel/garbage"):
        response = client.post(bad)
        assert response.status_code == 400 and "not valid" in response.text
    assert line(db, shop_id, "1001-LAMP-1").cancelled == 0
    assert line(db, shop_id, "1002-LAMP-1").cancelled == 0
    assert messages(db, shop_id, "cancellation_requested") == []


def test_an_expired_link_is_refused(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    path = _first_and_next_customer(db, shop_id, smtp_sink, clock)
    clock.now = T0 + days(40)  # links last 30 days from the e-mail
    response = client.post(path)
    assert response.status_code == 410 and "expired" in response.text
    assert line(db, shop_id, "1001-LAMP-1").cancelled == 0


def test_storefront_mode_without_a_store_cancel_leaves_the_task_for_the_merchant(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    path = _first_and_next_customer(db, shop_id, smtp_sink, clock)
    set_shop_settings(db, shop_id, cancellation_mode="storefront")
    assert client.post(path).status_code == 200
    (request,) = messages(db, shop_id, "cancellation_requested")
    assert request.payload["mode"] == "storefront"
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(2))
    assert messages(db, shop_id, "cancellation_requested")[0].state == "sent"


def test_nothing_left_to_cancel_is_said_plainly(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    path = _first_and_next_customer(db, shop_id, smtp_sink, clock)
    receive_purchase_order(db, shop_id, only_po(db, shop_id).id, {"LAMP-1": 2, "SHADE-9": 1}, T0 + days(2))
    response = client.post(path)
    assert response.status_code == 409 and "Nothing in this order is waiting" in response.text
    assert line(db, shop_id, "1001-LAMP-1").allocated == 2
