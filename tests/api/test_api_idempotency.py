"""Receipts with an Idempotency-Key are recorded once, however often a client retries them."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from api_helpers import Clock, SeededShop
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from connector.db.engine import Database
from connector.db.models import ApiIdempotencyKey
from connector.db.uow import UnitOfWork
from connector.services.retention import prune

URL = "/api/v1/purchase-orders/PO-00001/receipts"
CHAIRS = {"lines": [{"sku": "CHAIR", "quantity": 2}]}


def _post(client: FlaskClient, key: str | None, body: dict[str, Any] = CHAIRS, url: str = URL) -> Any:
    return client.post(url, json=body, headers={"Idempotency-Key": key} if key is not None else {})


def _received_chairs(client: FlaskClient) -> int:
    po = client.get("/api/v1/purchase-orders/PO-00001").json
    return next(line["received"] for line in po["lines"] if line["sku"] == "CHAIR")


def test_a_retry_with_the_same_key_gets_the_first_answer_and_records_nothing_again(
        client: FlaskClient, shop: SeededShop) -> None:
    first = _post(client, "receipt-1")
    again = _post(client, "receipt-1")

    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert _received_chairs(client) == 2


def test_without_a_key_every_receipt_is_recorded(client: FlaskClient, shop: SeededShop) -> None:
    assert _post(client, None).status_code == _post(client, None).status_code == 201
    assert _received_chairs(client) == 4


def test_the_same_key_with_another_body_or_purchase_order_is_refused(client: FlaskClient, shop: SeededShop) -> None:
    assert _post(client, "receipt-1").status_code == 201
    other_body = _post(client, "receipt-1", {"lines": [{"sku": "CHAIR", "quantity": 3}]})
    other_po = _post(client, "receipt-1", url="/api/v1/purchase-orders/PO-00002/receipts")

    for refused in (other_body, other_po):
        assert refused.status_code == 422
        assert refused.json["error"]["code"] == "idempotency_key_reused"
        assert refused.json["error"]["field"] == "Idempotency-Key"
    assert _received_chairs(client) == 2


def test_a_failed_request_stores_nothing_so_the_same_key_can_be_retried(client: FlaskClient, shop: SeededShop) -> None:
    unknown = _post(client, "receipt-1", {"lines": [{"sku": "SOFA", "quantity": 1}]})
    assert unknown.status_code == 422 and unknown.json["error"]["code"] == "unknown_sku"
    # Nothing was recorded, so the key is free: the corrected request runs (a different body is fine).
    fixed = _post(client, "receipt-1")
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert _received_chairs(client) == 2


def test_keys_belong_to_one_shop(app: Flask, client: FlaskClient, shop: SeededShop, other_shop: SeededShop) -> None:
    theirs = app.test_client()
    theirs.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {other_shop.token}"
    assert _post(client, "shared-key").status_code == 201
    answer = _post(theirs, "shared-key")
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    assert _received_chairs(theirs) == 2 and _received_chairs(client) == 2


def test_a_key_expires_after_24_hours_and_retention_prunes_it(
        db: Database, client: FlaskClient, shop: SeededShop, clock: Clock) -> None:
    assert _post(client, "receipt-1").status_code == 201
    clock.now += timedelta(hours=23)
    assert _post(client, "receipt-1").headers.get("Idempotent-Replayed") == "true"

    clock.now += timedelta(hours=1, seconds=1)
    late = _post(client, "receipt-1")
    assert late.status_code == 201 and "Idempotent-Replayed" not in late.headers
    assert _received_chairs(client) == 4

    result = prune(db, shop.shop_id, clock.now + timedelta(hours=24, seconds=1))
    assert result.idempotency_keys_deleted == 1
    assert _keys(db, shop.shop_id) == 0


def test_an_invalid_key_is_a_400_naming_the_header(client: FlaskClient, shop: SeededShop) -> None:
    for bad in ("", "x" * 256):
        answer = _post(client, bad)
        assert answer.status_code == 400 and answer.json["error"]["field"] == "Idempotency-Key", bad
    assert _received_chairs(client) == 0


def test_concurrent_duplicates_apply_once(app: Flask, shop: SeededShop) -> None:
    statuses: list[tuple[int, str | None]] = []
    start = threading.Barrier(6)

    def send() -> None:
        c = app.test_client()
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {shop.token}"
        start.wait()
        answer = _post(c, "race")
        statuses.append((answer.status_code, answer.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses.count((201, None)) == 1, statuses
    assert set(statuses) <= {(201, None), (201, "true"), (409, None)}, statuses
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {shop.token}"
    assert _received_chairs(c) == 2


def test_the_database_refuses_a_second_row_for_the_same_key(db: Database, shop: SeededShop, clock: Clock) -> None:
    with UnitOfWork(db, shop.shop_id) as uow:
        uow.add(ApiIdempotencyKey(key="k", request_hash="a" * 64, created_at=clock.now))
        uow.add(ApiIdempotencyKey(key="k", request_hash="b" * 64, created_at=clock.now))
        with pytest.raises(IntegrityError):
            uow.commit()


def _keys(db: Database, shop_id: int) -> int:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ApiIdempotencyKey)) or 0)
