"""The outbox through the API: what waits, what died and why, and the retry of a dead message."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api_helpers import Clock, SeededShop, add_outbox_message
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import OutboxMessage
from connector.db.uow import UnitOfWork
from connector.services.accounts import create_api_token
from connector.services.outbox import deliver_due
from connector.web.openapi import check, openapi_document

FIELDS = {"id", "kind", "target", "subject", "state", "attempts", "next_attempt_at", "last_error", "created_at",
          "sent_at"}


def _get(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    return response.json


def _mine(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(subject, state, attempts) of the messages these tests added (subjects start with "t-")."""
    return [(r["subject"], r["state"], r["attempts"]) for r in rows if (r["subject"] or "").startswith("t-")]


def test_the_outbox_lists_messages_newest_first_with_state_attempts_and_error(
    client: FlaskClient, db: Database, shop: SeededShop, now: datetime
) -> None:
    add_outbox_message(db, shop.shop_id, "t-sent", now, state="sent", attempts=1)
    add_outbox_message(db, shop.shop_id, "t-waiting", now, attempts=3, last_error="platform: store answered 503")
    dead = add_outbox_message(db, shop.shop_id, "t-dead", now, state="dead", attempts=8,
                              last_error="platform: store answered 429")

    page = _get(client, "/api/v1/outbox?limit=200")

    assert _mine(page["data"]) == [("t-dead", "dead", 8), ("t-waiting", "pending", 3), ("t-sent", "sent", 1)]
    assert [r["id"] for r in page["data"]] == sorted((r["id"] for r in page["data"]), reverse=True)
    first = page["data"][0]
    assert set(first) == FIELDS
    assert first["id"] == dead and first["kind"] == "eta_changed" and first["target"] == "storefront"
    assert first["last_error"] == "platform: store answered 429"
    assert first["next_attempt_at"] is None  # dead: nothing is scheduled
    waiting = next(r for r in page["data"] if r["subject"] == "t-waiting")
    assert waiting["next_attempt_at"] == now.isoformat().replace("+00:00", "Z")
    sent = next(r for r in page["data"] if r["subject"] == "t-sent")
    assert sent["sent_at"] is not None and sent["created_at"].endswith("Z")
    check(openapi_document()["components"]["schemas"]["OutboxMessage"], first, "")


def test_the_state_filter_shows_only_pending_or_only_dead_messages(
    client: FlaskClient, db: Database, shop: SeededShop, now: datetime
) -> None:
    add_outbox_message(db, shop.shop_id, "t-p", now)
    add_outbox_message(db, shop.shop_id, "t-d", now, state="dead", attempts=8)
    add_outbox_message(db, shop.shop_id, "t-s", now, state="sent")

    pending = _get(client, "/api/v1/outbox?state=pending&limit=200")["data"]
    dead = _get(client, "/api/v1/outbox?state=dead")["data"]

    assert {r["state"] for r in pending} == {"pending"} and "t-p" in {r["subject"] for r in pending}
    assert [r["subject"] for r in dead] == ["t-d"]
    error = _get(client, "/api/v1/outbox?state=failed", 400)["error"]
    assert error["code"] == "invalid" and error["field"] == "state" and "dead" in error["message"]


def test_the_payload_and_the_idempotency_key_never_leave_and_credentials_in_errors_are_masked(
    client: FlaskClient, db: Database, shop: SeededShop, now: datetime
) -> None:
    add_outbox_message(
        db, shop.shop_id, "t-secret", now, state="dead", target="customer", kind="backordered",
        payload={"to": "jane@example.com", "body": "Dear Jane, your chair is late"},
        last_error="platform: GET https://store.example/wp-json/wc/v3/orders?consumer_key=ck_abc123"
                   "&consumer_secret=cs_def456 answered 500 " + "x" * 2000,
    )

    response = client.get("/api/v1/outbox?state=dead")

    assert response.status_code == 200
    assert "jane@example.com" not in response.text and "Dear Jane" not in response.text
    assert "ck_abc123" not in response.text and "cs_def456" not in response.text
    row = response.json["data"][0]
    assert "payload" not in row and "idempotency_key" not in row
    assert "consumer_secret=***" in row["last_error"] and len(row["last_error"]) <= 500


def test_cursor_pages_walk_the_outbox_once_each(client: FlaskClient, db: Database, shop: SeededShop,
                                                now: datetime) -> None:
    for i in range(5):
        add_outbox_message(db, shop.shop_id, f"t-{i}", now)
    seen: list[int] = []
    url = "/api/v1/outbox?state=pending&limit=2"
    while True:
        page = _get(client, url)
        seen.extend(r["id"] for r in page["data"])
        if page["next_cursor"] is None:
            break
        url = f"/api/v1/outbox?state=pending&limit=2&cursor={page['next_cursor']}"
    with UnitOfWork(db, shop.shop_id, readonly=True) as uow:
        pending = list(uow.all(select(OutboxMessage.id).where(OutboxMessage.state == "pending")
                               .order_by(OutboxMessage.id.desc())))
    assert seen == pending and len(seen) >= 5


def test_retrying_a_dead_message_queues_it_again_and_the_next_delivery_sends_it(
    client: FlaskClient, db: Database, shop: SeededShop, clock: Clock
) -> None:
    dead = add_outbox_message(db, shop.shop_id, "t-dead", clock.now, state="dead", attempts=8,
                              last_error="platform: store answered 503")
    clock.now += timedelta(hours=1)

    response = client.post(f"/api/v1/outbox/{dead}/retry")

    assert response.status_code == 200, response.text
    body = response.json
    assert (body["id"], body["state"], body["attempts"]) == (dead, "pending", 0)
    assert body["next_attempt_at"] == clock.now.isoformat().replace("+00:00", "Z")
    assert body["last_error"] == "platform: store answered 503"  # still shown until it is delivered
    delivered: list[str] = []
    deliver_due(db, shop.shop_id, lambda m: delivered.append(m.idempotency_key), clock.now, limit=500)
    assert "t-dead" in delivered
    after = _get(client, "/api/v1/outbox?state=sent&limit=200")["data"]
    assert any(r["id"] == dead and r["last_error"] is None for r in after)


def test_only_dead_messages_can_be_retried(client: FlaskClient, db: Database, shop: SeededShop,
                                           now: datetime) -> None:
    for state in ("pending", "sent", "skipped"):
        mid = add_outbox_message(db, shop.shop_id, f"t-{state}", now, state=state)
        response = client.post(f"/api/v1/outbox/{mid}/retry")
        assert response.status_code == 422, (state, response.text)
        assert response.json["error"] == {
            "code": "not_retryable", "field": "state",
            "message": f"message {mid} is {state}; only dead messages can be retried",
        }
        assert _state(db, shop.shop_id, mid) == state  # nothing changed


def test_another_shops_message_is_not_found_and_stays_dead(
    client: FlaskClient, db: Database, shop: SeededShop, other_shop: SeededShop, now: datetime
) -> None:
    theirs = add_outbox_message(db, other_shop.shop_id, "t-theirs", now, state="dead", attempts=8)

    response = client.post(f"/api/v1/outbox/{theirs}/retry")

    assert response.status_code == 404
    assert response.json["error"] == {"code": "not_found", "message": f"no outbox message {theirs}",
                                      "field": "message_id"}
    assert _state(db, other_shop.shop_id, theirs) == "dead"
    assert theirs not in {r["id"] for r in _get(client, "/api/v1/outbox?limit=200")["data"]}
    assert client.post("/api/v1/outbox/999999/retry").status_code == 404


def test_a_retry_needs_a_read_write_token_and_no_body(app: Flask, db: Database, shop: SeededShop,
                                                       now: datetime) -> None:
    dead = add_outbox_message(db, shop.shop_id, "t-dead", now, state="dead", attempts=8)
    _, read_token = create_api_token(db, shop.shop_id, "reporting", now, scope="read")
    reader = app.test_client()

    refused = reader.post(f"/api/v1/outbox/{dead}/retry", headers={"Authorization": f"Bearer {read_token}"})
    listed = reader.get("/api/v1/outbox?state=dead", headers={"Authorization": f"Bearer {read_token}"})

    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert listed.status_code == 200 and [r["id"] for r in listed.json["data"]] == [dead]
    writer = app.test_client()
    writer.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {shop.token}"
    bad = writer.post(f"/api/v1/outbox/{dead}/retry", json={"force": True})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "body"
    assert writer.post("/api/v1/outbox/abc/retry").json["error"] == {
        "code": "invalid", "message": "message_id must be an integer", "field": "message_id"}
    assert _state(db, shop.shop_id, dead) == "dead"
    assert writer.post(f"/api/v1/outbox/{dead}/retry", json={}).status_code == 200
    assert _state(db, shop.shop_id, dead) == "pending"


def _state(db: Database, shop_id: int, message_id: int) -> str:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return uow.get(OutboxMessage, message_id).state
