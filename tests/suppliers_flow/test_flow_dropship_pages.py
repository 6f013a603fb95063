"""The merchant's dropship pages: forwards, one forward's documents, the queues, forward now."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flow_support import SETTINGS, dead_port, later, order_record, outbox, router, seed_supplier
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from connector.db.engine import Database
from connector.db.models import DropshipForward, MerchantUser, Shop, Supplier
from connector.db.uow import UnitOfWork
from connector.services.dropship import dropship_check
from connector.services.orders import record_order
from connector.services.outbox import deliver_due
from connector.web import create_app

SKUS = {"PLANT-1": ("Olive tree", 3000), "POT-2": ("Terracotta pot", 800)}
CSRF = "flow-csrf-token"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def merchant_client(db: Database, shop_id: int, clock: Callable[[], datetime]) -> FlaskClient:
    """A client signed in to ``shop_id`` (session set directly; signing in is tested elsewhere)."""
    app: Flask = create_app(SETTINGS, db, clock=clock)
    app.config["TESTING"] = True
    email = f"owner{shop_id}@example.com"
    with UnitOfWork(db, shop_id) as uow:
        user = uow.find(MerchantUser, email=email) or uow.add(
            MerchantUser(email=email, password_hash=generate_password_hash("pw-123456", "pbkdf2:sha256:1000"),
                         created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        uow.commit()
        user_id = user.id
    client = app.test_client()
    with client.session_transaction() as session:
        session.update(user_id=user_id, shop_id=shop_id, csrf_token=CSRF)
    return client


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(url, data={"csrf_token": CSRF, **(data or {})})


def row_text(page: str, attr: str, value: str) -> str:
    """The visible text of the table row carrying ``data-<attr>="<value>"``, spaces collapsed."""
    match = re.search(rf'<tr[^>]*\bdata-{attr}="{re.escape(value)}"[^>]*>(.*?)</tr>', page, re.S)
    assert match is not None, f"no row with data-{attr}={value}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def other_shop(db: Database, now: datetime) -> int:
    with UnitOfWork(db) as uow:
        shop = uow.add(Shop(platform="manual", domain="other-shop", name="Other", created_at=now, settings={}))
        uow.commit()
        return int(shop.id)


def forwards(db: Database, shop_id: int) -> list[DropshipForward]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = list(uow.all(select(DropshipForward).order_by(DropshipForward.id)))
        uow.session.expunge_all()
        return rows


def _five_forwarded_and_two_waiting(db: Database, shop_id: int, now: datetime) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=5, dropship_max_wait_days=3)
    for n in range(1, 6):
        record_order(db, shop_id, order_record(1000 + n, {"PLANT-1": 1}, later(now, hours=n), seeded.variants,
                                               city=f"City {n}"), later(now, hours=n))
    assert dropship_check(db, shop_id, later(now, hours=6)).forwards == ["F-00001"]
    record_order(db, shop_id, order_record(1006, {"POT-2": 2}, later(now, days=1), seeded.variants),
                 later(now, days=1))


def test_the_dropship_page_lists_forwards_and_each_suppliers_queue_against_its_quota(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    _five_forwarded_and_two_waiting(db, shop_id, now)
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, days=1))
    client = merchant_client(db, shop_id, Clock(later(now, days=2, hours=12)))

    page = client.get("/merchant/dropship")

    assert page.status_code == 200
    assert 'href="/merchant/dropship"' in page.text  # linked from the nav
    forward = row_text(page.text, "number", "F-00001")
    assert "Atelier Nord" in forward and "sent" in forward and "quota" in forward
    assert "none yet" in forward  # no tracking received
    assert re.search(r"\b5 5 none yet 0$", forward), forward  # lines, ship-to addresses, tracking, cancellations
    queue = row_text(page.text, "supplier", "Atelier Nord")
    # 2 units of 5; 2 × 8.00 at cost; the oldest waits 1.5 of 3 days, not due yet.
    assert "2 / 5" in queue and "16.00" in queue and "1.5 days / 3 days" in queue and "due" not in queue


def test_a_forward_page_shows_each_orders_lines_and_ship_to_and_its_document_state(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    _five_forwarded_and_two_waiting(db, shop_id, now)
    [fw] = forwards(db, shop_id)
    client = merchant_client(db, shop_id, Clock(later(now, days=1)))

    pending = client.get(f"/merchant/dropship/forwards/{fw.id}")
    assert pending.status_code == 200
    assert row_text(pending.text, "kind", "dropship_forward").startswith("forward pending 0")

    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, days=1))
    page = client.get(f"/merchant/dropship/forwards/{fw.id}").text

    assert '<span class="badge" id="forward-status">sent</span>' in page
    for n in range(1, 6):
        line = row_text(page, "order", f"#{1000 + n}")
        assert f"Customer {1000 + n}" in line and f"{1000 + n} Main Street" in line and f"City {n}" in line
        assert "PLANT-1 AN-PLANT-1 Olive tree 1 0 no" in line
    assert "#1006" not in page  # still waiting, not part of this forward
    assert row_text(page, "kind", "dropship_forward").startswith("forward sent 1")
    assert "/supplier/forward/" in page  # the supplier's current link


def test_a_dead_forward_is_shown_and_retried_from_its_page(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    _five_forwarded_and_two_waiting(db, shop_id, now)
    [fw] = forwards(db, shop_id)
    down = router(db, SmtpMailer(f"smtp://127.0.0.1:{dead_port()}"))
    deliver_due(db, shop_id, down, later(now, days=1), max_attempts=1)
    [message] = outbox(db, shop_id, "dropship_forward")
    assert message.state == "dead"
    client = merchant_client(db, shop_id, Clock(later(now, days=1)))

    page = client.get(f"/merchant/dropship/forwards/{fw.id}").text
    dead = row_text(page, "kind", "dropship_forward")
    assert "dead" in dead and "Retry" in page
    assert smtp_sink.messages == []

    missing_token = client.post(f"/merchant/dropship/forwards/{fw.id}/documents/{message.id}/retry")
    assert missing_token.status_code == 400 and outbox(db, shop_id, "dropship_forward")[0].state == "dead"
    retried = post(client, f"/merchant/dropship/forwards/{fw.id}/documents/{message.id}/retry")
    assert retried.status_code == 302
    assert outbox(db, shop_id, "dropship_forward")[0].state == "pending"
    again = post(client, f"/merchant/dropship/forwards/{fw.id}/documents/{message.id}/retry")
    assert again.status_code == 400  # only a dead message can be retried

    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), later(now, days=1, minutes=1))
    assert len(smtp_sink.wait_for(1)) == 1
    page = client.get(f"/merchant/dropship/forwards/{fw.id}").text
    assert row_text(page, "kind", "dropship_forward").startswith("forward sent 1")


def test_forward_now_sends_a_queue_below_its_quota_once_and_needs_the_csrf_token(
    db: Database, shop_id: int, now: datetime
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=5)
    for n in (1, 2):
        record_order(db, shop_id, order_record(2000 + n, {"PLANT-1": 1}, now, seeded.variants), now)
    client = merchant_client(db, shop_id, Clock(later(now, hours=1)))
    assert "Forward now" in client.get("/merchant/dropship").text

    refused = client.post(f"/merchant/dropship/suppliers/{seeded.supplier_id}/forward")
    assert refused.status_code == 400 and forwards(db, shop_id) == []

    done = post(client, f"/merchant/dropship/suppliers/{seeded.supplier_id}/forward")
    [fw] = forwards(db, shop_id)
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/merchant/dropship/forwards/{fw.id}")
    assert fw.reason == "manual" and fw.number == "F-00001"
    [message] = outbox(db, shop_id, "dropship_forward")
    assert message.payload["units"] == 2 and message.payload["reason"] == "manual"
    assert "No dropship order is waiting." in client.get("/merchant/dropship").text

    nothing = post(client, f"/merchant/dropship/suppliers/{seeded.supplier_id}/forward")
    assert nothing.status_code == 400 and "no dropship order waits" in nothing.text
    assert len(forwards(db, shop_id)) == 1


def test_another_shops_forward_ids_answer_404_and_change_nothing(
    db: Database, shop_id: int, now: datetime
) -> None:
    other = other_shop(db, now)
    seeded = seed_supplier(db, other, skus=SKUS, dropship=True)
    record_order(db, other, order_record(3001, {"PLANT-1": 1}, now, seeded.variants), now)
    record_order(db, other, order_record(3002, {"PLANT-1": 1}, now, seeded.variants), now)
    dropship_check(db, other, now)
    [fw] = forwards(db, other)
    [message] = outbox(db, other, "dropship_forward")
    record_order(db, other, order_record(3003, {"PLANT-1": 1}, now, seeded.variants), now)  # waits in its queue
    client = merchant_client(db, shop_id, Clock(now))

    assert client.get(f"/merchant/dropship/forwards/{fw.id}").status_code == 404
    assert post(client, f"/merchant/dropship/forwards/{fw.id}/documents/{message.id}/retry").status_code == 404
    assert post(client, f"/merchant/dropship/suppliers/{seeded.supplier_id}/forward").status_code == 404
    assert post(client, f"/merchant/supplier-links/forward/{fw.id}/revoke").status_code == 404
    assert post(client, f"/merchant/supplier-links/forward/{fw.id}/new").status_code == 404
    listing = client.get("/merchant/dropship").text
    assert "F-00001" not in listing and "Atelier Nord" not in listing
    [unchanged] = forwards(db, other)
    assert unchanged.link_generation == 1 and unchanged.link_revoked_at is None
    assert len(forwards(db, other)) == 1


def test_the_supplier_form_saves_the_dropship_max_wait_and_explains_a_bad_one(
    db: Database, shop_id: int, now: datetime
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True, dropship_min_units=5)
    client = merchant_client(db, shop_id, Clock(now))
    form = {"name": "Atelier Nord", "email": "orders@atelier-nord.test", "delivery_method": "email",
            "currency": "EUR", "lead_time_days": "10", "dropship": "1", "dropship_min_units": "5"}

    bad = post(client, f"/merchant/suppliers/{seeded.supplier_id}", {**form, "dropship_max_wait_days": "-1"})
    assert bad.status_code == 400
    assert re.search(r'id="dropship_max_wait_days-error"[^>]*>[^<]+<', bad.text)
    saved = post(client, f"/merchant/suppliers/{seeded.supplier_id}", {**form, "dropship_max_wait_days": "4"})
    assert saved.status_code == 302
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        assert uow.get(Supplier, seeded.supplier_id).dropship_max_wait_days == 4
    page = client.get(f"/merchant/suppliers/{seeded.supplier_id}").text
    assert re.search(r'name="dropship_max_wait_days" type="number" value="4"', page)
