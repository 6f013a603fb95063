"""The dashboard's "Needs you" list: the merchant records the services write to the outbox,
newest first, each with a "done" button that hides it for the shop and for nobody else."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_helpers import Seeded, post, seed_shop

from connector.db.engine import Database
from connector.db.models import OutboxMessage, PurchaseOrder, SalesOrder, Shop
from connector.db.uow import UnitOfWork
from connector.services.cancellation import (
    CancelLink,
    cancel_from_link,
    cancel_waiting_units,
    sign_cancel_link,
)
from connector.services.ftc_notice import AUTO_CANCEL_REASON, record_wait_consent, sign_keep_link
from connector.services.outbox import deliver_due

SECRET = "test-secret-key"


def _cancel(db: Database, shop_id: int, order: str, now: datetime) -> None:
    link = CancelLink(shop_id, order, f"link-{order}", date(2030, 1, 1))
    cancel_from_link(db, SECRET, sign_cancel_link(SECRET, link), now)


def _consent(db: Database, shop_id: int, order: str, now: datetime) -> None:
    link = CancelLink(shop_id, order, f"keep-{order}", date(2030, 1, 1))
    record_wait_consent(db, SECRET, sign_keep_link(SECRET, link), now)


def _task_ids(db: Database, shop_id: int, kind: str) -> list[int]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return list(uow.session.scalars(select(OutboxMessage.id).where(OutboxMessage.kind == kind)))


def _rows(html: str, *kinds: str) -> list[str]:
    """The task rows of the dashboard, of ``kinds`` only when given (the seeded shop's draft PO
    is ready, so a po_ready task is always there too)."""
    rows = [chunk.split("</tr>")[0] for chunk in html.split('<tr class="task"')[1:]]
    return [r for r in rows if not kinds or any(f'data-kind="{k}"' in r for k in kinds)]


def test_a_customers_cancellation_and_consent_show_newest_first_with_what_to_do(
        client: FlaskClient, db: Database, seeded: Seeded, now: datetime) -> None:
    _cancel(db, seeded.shop_id, "1001", now + timedelta(minutes=1))
    _consent(db, seeded.shop_id, "1002", now + timedelta(minutes=2))
    page = client.get("/merchant/").text
    rows = _rows(page, "wait_consent", "cancellation_requested")
    assert len(rows) == 2, page
    assert 'Needs you <span class="badge">3</span>' in page  # and the seeded ready PO
    assert 'data-kind="wait_consent"' in rows[0] and "#1002" in rows[0] and "agreed to keep waiting" in rows[0]
    assert 'data-kind="cancellation_requested"' in rows[1]
    assert "cancelled 3 waiting unit(s) of order #1001 (CHAIR)" in rows[1]
    assert "Cancel and refund these items in your store." in rows[1]
    assert "Cancelled at the customer&#39;s request" in rows[1]


def test_a_cancellation_nobody_clicked_says_why_it_happened(client: FlaskClient, db: Database, seeded: Seeded,
                                                            now: datetime) -> None:
    # what the 30-day notice's auto-cancel does when the customer never answered
    with UnitOfWork(db, seeded.shop_id) as uow:
        order = uow.find(SalesOrder, external_id="1002")
        assert order is not None
        cancel_waiting_units(uow, order, now, key="cancellation_requested:auto_cancelled:1002",
                             reason=AUTO_CANCEL_REASON)
        uow.commit()
    [row] = _rows(client.get("/merchant/").text, "cancellation_requested")
    assert "Cancelled 3 waiting unit(s) of order #1002 (CHAIR, TABLE)" in row and "The customer" not in row
    assert "no answer to the 30-day notice" in row


def test_tasks_stay_on_the_dashboard_after_the_outbox_delivered_them(
        client: FlaskClient, db: Database, seeded: Seeded, now: datetime) -> None:
    _consent(db, seeded.shop_id, "1002", now)
    report = deliver_due(db, seeded.shop_id, lambda message: None, now)
    assert report.sent >= 1
    [task_id] = _task_ids(db, seeded.shop_id, "wait_consent")
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        assert uow.get(OutboxMessage, task_id).state == "sent"
    assert len(_rows(client.get("/merchant/").text, "wait_consent")) == 1


def test_done_hides_a_task_and_keeps_the_outbox_row(client: FlaskClient, db: Database, seeded: Seeded,
                                                     now: datetime) -> None:
    _cancel(db, seeded.shop_id, "1001", now)
    [task_id] = _task_ids(db, seeded.shop_id, "cancellation_requested")
    r = post(client, f"/merchant/tasks/{task_id}/done")
    assert r.status_code == 302 and r.headers["Location"].endswith("/merchant/#tasks")
    page = client.get("/merchant/").text
    assert _rows(page, "cancellation_requested") == [] and _rows(page, "po_ready") and "task done" in page
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        row = uow.get(OutboxMessage, task_id)
        assert row.state == "pending" and row.payload["done_at"] == now.isoformat()
        assert row.payload["done_by"] == "owner@example.com" and row.payload["lines"][0]["units"] == 3
    # a second click (another tab) changes nothing
    assert post(client, f"/merchant/tasks/{task_id}/done").status_code == 302


def test_a_cancellation_the_store_refunds_itself_is_not_a_task(client: FlaskClient, db: Database, seeded: Seeded,
                                                               now: datetime) -> None:
    with UnitOfWork(db, seeded.shop_id) as uow:
        uow.get(Shop, seeded.shop_id).settings = {"cancellation_mode": "storefront"}
        uow.commit()
    _cancel(db, seeded.shop_id, "1001", now)
    assert _task_ids(db, seeded.shop_id, "cancellation_requested")
    assert _rows(client.get("/merchant/").text, "cancellation_requested") == []


def test_a_ready_purchase_order_links_to_it_until_it_is_sent(client: FlaskClient, db: Database, seeded: Seeded,
                                                             now: datetime) -> None:
    # consolidation made the seeded draft ready and wrote po_ready
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        po = uow.get(PurchaseOrder, seeded.po_id)
        assert po.status == "ready"
        number = po.number
    [row] = _rows(client.get("/merchant/").text, "po_ready")
    assert f'href="/merchant/purchase-orders/{seeded.po_id}">{number}</a>' in row
    assert f"Purchase order {number} to Acme test-shop is ready" in row and "approve and send" in row
    with UnitOfWork(db, seeded.shop_id) as uow:
        uow.get(PurchaseOrder, seeded.po_id).status = "sent"
        uow.commit()
    assert "Nothing needs you." in client.get("/merchant/").text


def test_text_from_the_store_in_a_task_is_escaped(client: FlaskClient, db: Database, seeded: Seeded,
                                                  now: datetime) -> None:
    with UnitOfWork(db, seeded.shop_id) as uow:
        uow.add(OutboxMessage(kind="stock_short", target="merchant", subject="<script>x</script>",
                              payload={"sku": "<script>alert(1)</script>", "on_hand": 1, "held": 3},
                              idempotency_key="stock_short:xss", next_attempt_at=now, created_at=now))
        uow.commit()
    [row] = _rows(client.get("/merchant/").text, "stock_short")
    assert "<script>" not in row and "&lt;script&gt;alert(1)&lt;/script&gt;: 1 on hand, 3 held" in row


@pytest.fixture
def other(db: Database, now: datetime) -> Seeded:
    return seed_shop(db, now, domain="other-shop")


def test_another_shops_task_is_not_found_and_stays_open(client: FlaskClient, db: Database, other: Seeded,
                                                        now: datetime) -> None:
    _cancel(db, other.shop_id, "1001", now)
    [task_id] = _task_ids(db, other.shop_id, "cancellation_requested")
    assert "#1001" not in client.get("/merchant/").text.split('id="tasks"')[1].split("</section>")[0]
    assert post(client, f"/merchant/tasks/{task_id}/done").status_code == 404
    with UnitOfWork(db, other.shop_id, readonly=True) as uow:
        assert "done_at" not in uow.get(OutboxMessage, task_id).payload


def test_a_customer_message_is_not_a_task_to_tick_off(client: FlaskClient, db: Database, seeded: Seeded,
                                                      now: datetime) -> None:
    [customer_id] = _task_ids(db, seeded.shop_id, "backordered")[:1]
    assert post(client, f"/merchant/tasks/{customer_id}/done").status_code == 404


def test_done_without_the_csrf_token_is_refused(client: FlaskClient, db: Database, seeded: Seeded,
                                                now: datetime) -> None:
    _cancel(db, seeded.shop_id, "1001", now)
    [task_id] = _task_ids(db, seeded.shop_id, "cancellation_requested")
    assert client.post(f"/merchant/tasks/{task_id}/done").status_code == 400
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        assert "done_at" not in uow.get(OutboxMessage, task_id).payload
