"""Customer e-mails from the outbox, through a real SMTP conversation (SmtpSink)."""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage

import pytest
from comms_support import (
    SETTINGS,
    T0,
    Clock,
    customer_mails,
    days,
    dead_smtp_url,
    deliver,
    line,
    mail_dispatcher,
    messages,
    only_po,
    place_order,
    seed_catalogue,
    text_of,
)

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer, message_id_for
from bootstrap.dispatch import build_dispatcher_factory
from connector.db.engine import Database
from connector.ports import OutboxEnvelope
from connector.services.consolidation import consolidate_backorders
from connector.services.outbox import DEFAULT_LEASE
from connector.services.purchasing import receive_purchase_order, send_purchase_order, set_expected_date


def test_a_backordered_order_gets_one_confirmation_with_the_promised_date_covering_all_lines(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1, "SHADE-9": 2})
    (confirmation,) = messages(db, shop_id, "backordered")
    assert len(confirmation.payload["lines"]) == 2  # one message for the order, not one per line

    report = deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0)

    assert report.sent == 2 and report.retried == report.dead == 0  # the confirmation and the storefront push
    (received,) = smtp_sink.received
    mail = received.message
    assert received.rcpt_tos == ("camille@example.com",)
    assert mail["Subject"] == "Your order #1001: estimated shipping dates"
    assert mail["From"] == "Bois & Lumière <hello@shop.example>" and mail["Reply-To"] == "hello@shop.example"
    # today + 14 days lead time + 1 handling day, + 2 days tolerance = the promise.
    assert line(db, shop_id, "1001-LAMP-1").promised_eta == date(2026, 3, 19)
    text = text_of(mail)
    assert "1 x Oak table lamp (LAMP-1): ships by March 19, 2026" in text
    assert "2 x Linen shade (SHADE-9): ships by March 19, 2026" in text
    assert "https://app.example/orders/cancel/" in text
    assert mail["Message-ID"] == message_id_for(confirmation.idempotency_key, "app.example")
    assert {m.state for m in messages(db, shop_id)} == {"sent"}


def test_a_delay_past_the_promise_sends_one_apology_and_a_slip_inside_the_tolerance_sends_none(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1, "SHADE-9": 1})
    consolidate_backorders(db, shop_id, T0)
    po = only_po(db, shop_id)
    send_purchase_order(db, shop_id, po.id, T0)
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, clock)
    deliver(db, shop_id, dispatcher, T0)
    assert len(customer_mails(smtp_sink)) == 1  # the confirmation
    promised = line(db, shop_id, "1001-LAMP-1").promised_eta
    assert promised == date(2026, 3, 19)

    # Expected two days later: ETA 19 March, still within the promise (tolerance 2 days).
    set_expected_date(db, shop_id, po.id, date(2026, 3, 18), T0 + days(1), source="supplier")
    deliver(db, shop_id, dispatcher, T0 + days(1))
    assert messages(db, shop_id, "delayed") == []
    assert len(customer_mails(smtp_sink)) == 1

    # Then the supplier slips a week: past the promise, one apology covering both lines.
    set_expected_date(db, shop_id, po.id, date(2026, 3, 25), T0 + days(2), source="supplier",
                      reason="workshop closed")
    deliver(db, shop_id, dispatcher, T0 + days(2))
    assert len(customer_mails(smtp_sink)) == 2
    apology = customer_mails(smtp_sink)[1]
    assert apology["Subject"] == "We're sorry: your order #1001 is delayed until March 28, 2026"
    text = text_of(apology)
    assert "1 x Oak table lamp: now ships by March 28, 2026 (instead of March 19, 2026)" in text
    assert "1 x Linen shade: now ships by March 28, 2026 (instead of March 19, 2026)" in text
    assert "https://app.example/orders/cancel/" in text
    assert "workshop closed" in text  # the supplier's reason reaches the customer
    (delayed,) = messages(db, shop_id, "delayed")
    assert delayed.state == "sent"


def test_delivering_the_same_message_again_after_a_crash_sends_one_email(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, clock)

    def dies_after_delivering(message: OutboxEnvelope) -> None:
        dispatcher(message)
        raise SystemExit("worker killed before the outbox marked the message sent")

    with pytest.raises(SystemExit):
        deliver(db, shop_id, dies_after_delivering, T0)
    assert len(smtp_sink.messages) == 1
    assert {m.state for m in messages(db, shop_id, "backordered")} == {"sending"}

    # The lease runs out; another worker claims the message and delivers it again.
    deliver(db, shop_id, dispatcher, T0 + 2 * DEFAULT_LEASE)
    deliver(db, shop_id, dispatcher, T0 + 4 * DEFAULT_LEASE)  # and once more: nothing is due

    assert len(smtp_sink.messages) == 1
    (backordered,) = messages(db, shop_id, "backordered")
    assert backordered.state == "sent" and backordered.attempts == 2


def test_a_crash_before_the_receipt_resends_with_the_same_message_id(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    """The one window no receipt can close (the server said 250, we died before writing it
    down): the duplicate carries the same Message-ID, so mail systems can drop it."""
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    sends: list[str] = []

    class DyingMailer(SmtpMailer):
        def send(self, msg: EmailMessage, message_id: str | None = None) -> str:
            sends.append(super().send(msg, message_id=message_id))
            if len(sends) == 1:
                raise SystemExit("killed right after the server accepted")
            return sends[-1]

    factory = build_dispatcher_factory(db, SETTINGS, lambda _: None, DyingMailer(smtp_sink.url),
                                       clock=clock)
    with pytest.raises(SystemExit):
        deliver(db, shop_id, factory(shop_id), T0)
    deliver(db, shop_id, factory(shop_id), T0 + 2 * DEFAULT_LEASE)
    first, second = smtp_sink.messages
    assert first["Message-ID"] == second["Message-ID"] == sends[0] == sends[1]


def test_an_email_kind_turned_off_is_not_sent_and_not_retried(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id, emails={"backorder_confirmation": False})
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    report = deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0)
    assert report.sent == 2 and report.retried == 0
    assert smtp_sink.messages == []
    (backordered,) = messages(db, shop_id, "backordered")
    assert backordered.state == "sent" and backordered.attempts == 1
    assert deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(1)).sent == 0


def test_smtp_down_retries_later_and_loses_nothing(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    place_order(db, shop_id, 1002, {"SHADE-9": 1}, email="noor@example.com", name="Noor")
    report = deliver(db, shop_id, mail_dispatcher(db, shop_id, dead_smtp_url(), clock), T0)
    assert report.retried == 2
    waiting = messages(db, shop_id, "backordered")
    assert {m.state for m in waiting} == {"pending"}
    assert all(m.last_error and "cannot talk to" in m.last_error for m in waiting)
    assert all(m.next_attempt_at > T0 for m in waiting)

    # The server is back, but answers 451 (try later) to the first message once more.
    smtp_sink.refuse_next(1)
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(1))
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(2))

    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == ["camille@example.com", "noor@example.com"]
    assert {m.state for m in messages(db, shop_id, "backordered")} == {"sent"}


def test_units_arriving_send_a_ready_notice_and_no_stale_confirmation(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id, language="fr")
    place_order(db, shop_id, 1001, {"LAMP-1": 2})
    consolidate_backorders(db, shop_id, T0)
    po = only_po(db, shop_id)
    send_purchase_order(db, shop_id, po.id, T0)
    # Goods arrive before the confirmation went out: the customer hears only that they are ready.
    receive_purchase_order(db, shop_id, po.id, {"LAMP-1": 2}, T0 + days(1))
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(1))

    (ready,) = customer_mails(smtp_sink)
    assert ready["Subject"] == "Bonne nouvelle : votre article est arrivé (#1001)"
    assert "2 x Oak table lamp" in text_of(ready)
    assert {m.state for m in messages(db, shop_id, "backordered")} == {"sent"}  # skipped, not retried
