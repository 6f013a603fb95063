"""The thirty-day notice: one per order, only for lines still without a firm date."""

from __future__ import annotations

from datetime import date

from comms_support import (
    SETTINGS,
    T0,
    Clock,
    customer_mails,
    days,
    deliver,
    mail_dispatcher,
    mail_dispatcher_factory,
    messages,
    only_po,
    place_order,
    seed_catalogue,
    text_of,
)

from adapters.mail.sink import SmtpSink
from bootstrap.dispatch import thirty_day_notice_job
from connector.db.engine import Database
from connector.services.consolidation import consolidate_backorders
from connector.services.ftc_notice import queue_thirty_day_notices
from connector.services.purchasing import send_purchase_order, set_expected_date
from jobs.registry import JobContext


def test_orders_waiting_thirty_days_without_a_firm_date_get_one_notice_each(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1, "SHADE-9": 1})
    consolidate_backorders(db, shop_id, T0)
    po = only_po(db, shop_id)
    send_purchase_order(db, shop_id, po.id, T0)
    set_expected_date(db, shop_id, po.id, date(2026, 4, 20), T0 + days(1), source="supplier")  # a firm date
    place_order(db, shop_id, 1002, {"LAMP-1": 1}, now=T0 + days(1), email="noor@example.com", name="Noor")
    place_order(db, shop_id, 1003, {"SHADE-9": 1}, now=T0 + days(10), email="li@example.com", name="Li")
    later = T0 + days(31)
    # 1002 and 1003 get pegged to a new draft whose date is only the lead time: still not firm.
    consolidate_backorders(db, shop_id, later)

    assert queue_thirty_day_notices(db, shop_id, later) == 1  # 1002 only: 1001 is firm, 1003 is recent
    ctx = JobContext(db, SETTINGS, mail_dispatcher_factory(db, smtp_sink.url, clock), clock=clock)
    assert thirty_day_notice_job(ctx, shop_id, later + days(1)) == {"queued": 0}  # the daily rerun: no twin
    (notice,) = messages(db, shop_id, "thirty_day_notice")
    assert notice.subject == "1002" and notice.target == "customer"

    clock.now = later
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), later)
    (mail,) = [m for m in customer_mails(smtp_sink) if "keep waiting" in m["Subject"]]
    assert mail["Subject"] == "Your order #1002: keep waiting or cancel for a full refund?"
    assert str(mail["To"]) == "Noor <noor@example.com>"
    text = text_of(mail)
    assert "1 x Oak table lamp" in text and "https://app.example/orders/cancel/" in text
    assert messages(db, shop_id, "thirty_day_notice")[0].state == "sent"

    # Ten days on, 1003 has waited thirty days too; 1002 is not told twice.
    assert queue_thirty_day_notices(db, shop_id, later + days(10)) == 1
    assert [m.subject for m in messages(db, shop_id, "thirty_day_notice")] == ["1002", "1003"]


def test_the_notice_can_be_turned_off_like_any_email(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id, emails={"thirty_day_notice": False, "backorder_confirmation": False})
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    assert queue_thirty_day_notices(db, shop_id, T0 + days(30)) == 1
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), T0 + days(30))
    assert smtp_sink.messages == []
    assert messages(db, shop_id, "thirty_day_notice")[0].state == "sent"
