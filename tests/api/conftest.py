"""Fixtures for the JSON API: an app with the API blueprint, shop A (the token's) and shop B."""

from __future__ import annotations

from datetime import datetime

import pytest
from api_helpers import Clock, SeededShop, make_app, seed_shop
from flask import Flask
from flask.testing import FlaskClient

from connector.db.engine import Database


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def app(db: Database, clock: Clock) -> Flask:
    return make_app(db, clock)


@pytest.fixture
def shop(db: Database, shop_id: int, now: datetime) -> SeededShop:
    return seed_shop(db, now, "test-shop", shop_id=shop_id)


@pytest.fixture
def other_shop(db: Database, now: datetime, shop: SeededShop) -> SeededShop:
    return seed_shop(db, now, "other-shop")


@pytest.fixture
def client(app: Flask, shop: SeededShop) -> FlaskClient:
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {shop.token}"
    return c
