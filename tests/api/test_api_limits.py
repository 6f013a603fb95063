"""Each API token gets a number of requests a minute, counted in the database (all workers share it)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from api_helpers import Clock, SeededShop, make_app
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import ApiRateWindow
from connector.db.uow import UnitOfWork
from connector.services.accounts import create_api_token
from connector.services.retention import prune


@pytest.fixture
def clock(now: datetime) -> Clock:
    # 10 seconds into a minute, so the window's end is 50 seconds away.
    return Clock(now.replace(second=10, microsecond=0))


def _client(app: Flask, token: str) -> FlaskClient:
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return c


def test_the_121st_read_in_a_minute_is_429_with_retry_after(client: FlaskClient, shop: SeededShop) -> None:
    for i in range(120):
        assert client.get("/api/v1/suppliers").status_code == 200, i
    refused = client.get("/api/v1/backorders")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "50"
    assert refused.json == {"error": {"code": "rate_limited", "field": None,
                                      "message": refused.json["error"]["message"]}}
    assert "120 read requests" in refused.json["error"]["message"]


def test_another_token_is_unaffected_and_the_next_minute_works_again(
        app: Flask, db: Database, client: FlaskClient, shop: SeededShop, clock: Clock) -> None:
    for _ in range(121):
        client.get("/api/v1/suppliers")
    assert client.get("/api/v1/suppliers").status_code == 429

    _, second_token = create_api_token(db, shop.shop_id, "second", clock.now)
    assert _client(app, second_token).get("/api/v1/suppliers").status_code == 200

    clock.now += timedelta(seconds=50)  # the next minute
    assert client.get("/api/v1/suppliers").status_code == 200


def test_writes_have_their_own_smaller_limit(app: Flask, client: FlaskClient, shop: SeededShop) -> None:
    url = "/api/v1/purchase-orders/PO-00001/receipts"
    for i in range(60):
        assert client.post(url, json={"lines": [{"sku": "TABLE", "quantity": 1}]}).status_code == 201, i
    refused = client.post(url, json={"lines": [{"sku": "TABLE", "quantity": 1}]})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert client.get("/api/v1/suppliers").status_code == 200  # reads are counted apart
    po = client.get("/api/v1/purchase-orders/PO-00001").json
    assert next(line["received"] for line in po["lines"] if line["sku"] == "TABLE") == 60  # the 61st not recorded


def test_the_limits_come_from_the_settings(db: Database, shop: SeededShop, clock: Clock) -> None:
    app = make_app(db, clock, Settings(secret_key="k", demo=True, api_read_limit_per_minute=2))
    c = _client(app, shop.token)
    assert [c.get("/api/v1/suppliers").status_code for _ in range(3)] == [200, 200, 429]


def test_two_app_instances_share_the_count(db: Database, shop: SeededShop, clock: Clock) -> None:
    # Two apps on one database stand for two gunicorn workers: the counter row is the shared state.
    settings = Settings(secret_key="k", demo=True, api_read_limit_per_minute=4)
    first, second = (_client(make_app(db, clock, settings), shop.token) for _ in range(2))
    answers = [c.get("/api/v1/suppliers").status_code for c in (first, second, first, second, first)]
    assert answers == [200, 200, 200, 200, 429]


def test_unauthenticated_requests_are_not_counted_and_retention_prunes_old_windows(
        app: Flask, db: Database, client: FlaskClient, shop: SeededShop, clock: Clock) -> None:
    assert app.test_client().get("/api/v1/suppliers").status_code == 401
    assert _windows(db, shop.shop_id) == 0
    client.get("/api/v1/suppliers")
    assert _windows(db, shop.shop_id) == 1
    assert prune(db, shop.shop_id, clock.now + timedelta(minutes=30)).rate_windows_deleted == 0
    assert prune(db, shop.shop_id, clock.now + timedelta(hours=2)).rate_windows_deleted == 1
    assert _windows(db, shop.shop_id) == 0


def _windows(db: Database, shop_id: int) -> int:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(ApiRateWindow)) or 0)
