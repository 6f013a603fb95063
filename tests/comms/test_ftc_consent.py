"""The thirty-day notice's two answers: a signed "keep waiting" link that records the customer's
consent, and the automatic cancellation of what stays unanswered."""

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
    mail_dispatcher_factory,
    messages,
    only_po,
    place_order,
    seed_catalogue,
    text_of,
)
from flask import Flask
from flask.testing import FlaskClient

from adapters.mail.sink import SmtpSink
from bootstrap.dispatch import thirty_day_notice_job
from connector.db.engine import Database
from connector.services.cancellation import CancelLink, sign_cancel_link
from connector.services.consolidation import consolidate_backorders
from connector.services.ftc_notice import AUTO_CANCEL_REASON, sign_keep_link
from connector.services.purchasing import receive_purchase_order, send_purchase_order
from connector.web import create_app
from jobs.registry import JobContext

KEEP = re.compile(r"https://app\.example(/orders/keep-waiting/\S+)")
NOTICE_DAY = T0 + days(30)


@pytest.fixture
def client(db: Database, clock: Clock) -> FlaskClient:
    app: Flask = create_app(SETTINGS, db, clock=clock)
    app.config["TESTING"] = True
    return app.test_client()


def _notices_out(db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, **settings: object) -> JobContext:
    """Orders 1001 (Camille) and 1002 (Noor) have waited 30 days without a date; both are told."""
    seed_catalogue(db, shop_id, **settings)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    place_order(db, shop_id, 1002, {"SHADE-9": 1}, email="noor@example.com", name="Noor")
    clock.now = NOTICE_DAY
    ctx = JobContext(db, SETTINGS, mail_dispatcher_factory(db, smtp_sink.url, clock), clock=clock)
    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY)["queued"] == 2
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), NOTICE_DAY)
    return ctx


def _keep_path(smtp_sink: SmtpSink, email: str) -> str:
    (mail,) = [m for m in customer_mails(smtp_sink) if email in str(m["To"]) and "keep waiting" in str(m["Subject"])]
    found = KEEP.search(text_of(mail))
    assert found is not None
    return found.group(1)


def test_the_keep_waiting_link_records_the_consent_once(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    _notices_out(db, shop_id, smtp_sink, clock)
    path = _keep_path(smtp_sink, "noor@example.com")

    page = client.get(path)
    assert page.status_code == 200 and "#1002" in page.text and "Yes, I will keep waiting" in page.text
    assert messages(db, shop_id, "wait_consent") == []  # opening the link (a mail scanner) is not consenting

    done = client.post(path)
    assert done.status_code == 200 and "Your order #1002 stays on order" in done.text
    again = client.post(path)
    assert again.status_code == 200
    (consent,) = messages(db, shop_id, "wait_consent")
    assert consent.target == "merchant" and consent.subject == "1002"
    assert consent.payload["consented_at"] == NOTICE_DAY.isoformat()
    assert line(db, shop_id, "1002-SHADE-9").backordered == 1  # nothing else changes


def test_a_tampered_expired_or_borrowed_token_is_refused_and_records_nothing(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    _notices_out(db, shop_id, smtp_sink, clock)
    path = _keep_path(smtp_sink, "noor@example.com")
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    assert client.post(tampered).status_code == 400

    expired = sign_keep_link(SETTINGS.secret_key, CancelLink(shop_id, "1002", "x", date(2026, 3, 31)))
    answer = client.post(f"/orders/keep-waiting/{expired}")
    assert answer.status_code == 410 and "expired" in answer.text

    # A cancellation token is signed for another purpose: it does not say "keep waiting".
    cancel_token = sign_cancel_link(SETTINGS.secret_key, CancelLink(shop_id, "1002", "x", date(2099, 1, 1)))
    assert client.post(f"/orders/keep-waiting/{cancel_token}").status_code == 400
    assert messages(db, shop_id, "wait_consent") == []


def test_unanswered_notices_are_cancelled_after_the_shops_delay_and_only_without_consent(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, client: FlaskClient
) -> None:
    ctx = _notices_out(db, shop_id, smtp_sink, clock, thirty_day_auto_cancel_days=7)
    text = text_of([m for m in customer_mails(smtp_sink) if "camille@example.com" in str(m["To"])][-1])
    assert "If we do not hear from you by April 8, 2026" in text  # the notice names the date
    assert client.post(_keep_path(smtp_sink, "noor@example.com")).status_code == 200  # Noor keeps waiting

    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY + days(6)) == {"queued": 0, "auto_cancelled": 0}
    assert line(db, shop_id, "1001-LAMP-1").cancelled == 0

    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY + days(7)) == {"queued": 0, "auto_cancelled": 1}
    cancelled = line(db, shop_id, "1001-LAMP-1")
    assert (cancelled.cancelled, cancelled.backordered) == (1, 0)
    assert line(db, shop_id, "1002-SHADE-9").backordered == 1  # consented: still waits
    (request,) = messages(db, shop_id, "cancellation_requested")
    assert request.subject == "1001" and request.payload["reason"] == AUTO_CANCEL_REASON
    assert request.target == "merchant"

    clock.now = NOTICE_DAY + days(7)
    before = len(customer_mails(smtp_sink))
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), clock.now)
    (told,) = customer_mails(smtp_sink)[before:]
    assert str(told["Subject"]) == "We cancelled the delayed item of your order #1001"
    assert "1 x Oak table lamp" in text_of(told) and "refunded in full" in text_of(told)

    # The next daily run finds nothing more to do.
    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY + days(8)) == {"queued": 0, "auto_cancelled": 0}
    assert len(messages(db, shop_id, "auto_cancelled")) == 1


def test_without_the_setting_nothing_is_ever_cancelled(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    ctx = _notices_out(db, shop_id, smtp_sink, clock)
    assert "If we do not hear from you" not in text_of(customer_mails(smtp_sink)[-1])
    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY + days(365)) == {"queued": 0}
    assert line(db, shop_id, "1001-LAMP-1").backordered == 1


def test_auto_cancelled_units_go_to_the_next_waiting_order(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id, thirty_day_auto_cancel_days=7)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    consolidate_backorders(db, shop_id, T0)
    po = only_po(db, shop_id)
    send_purchase_order(db, shop_id, po.id, T0)  # dated by the lead time only: not a firm date
    place_order(db, shop_id, 1003, {"LAMP-1": 1}, now=T0 + days(20), email="li@example.com", name="Li")
    clock.now = NOTICE_DAY
    ctx = JobContext(db, SETTINGS, mail_dispatcher_factory(db, smtp_sink.url, clock), clock=clock)
    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY)["queued"] == 1  # 1001 only: 1003 is recent
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), NOTICE_DAY)

    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY + days(7))["auto_cancelled"] == 1
    assert line(db, shop_id, "1001-LAMP-1").pegged == 0
    receive_purchase_order(db, shop_id, po.id, {"LAMP-1": 1}, NOTICE_DAY + days(8))
    nxt = line(db, shop_id, "1003-LAMP-1")
    assert (nxt.allocated, nxt.backordered) == (1, 0)
    assert line(db, shop_id, "1001-LAMP-1").allocated == 0


def test_no_automatic_cancellation_when_the_notice_itself_is_turned_off(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    ctx = _notices_out(db, shop_id, smtp_sink, clock, thirty_day_auto_cancel_days=7,
                       notify_by={"thirty_day_notice": "off"})
    assert [m for m in customer_mails(smtp_sink) if "keep waiting" in str(m["Subject"])] == []
    assert thirty_day_notice_job(ctx, shop_id, NOTICE_DAY + days(30)) == {"queued": 0, "auto_cancelled": 0}
    assert line(db, shop_id, "1001-LAMP-1").cancelled == 0
