"""Fixtures for the merchant and shopper pages (helpers live in ``web_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import EMAIL, PASSWORD, Clock, Seeded, make_app, seed_shop
from werkzeug.security import generate_password_hash

from adapters.mail.sink import SmtpSink
from connector.db.engine import Database
from connector.db.models import MerchantUser
from connector.db.uow import UnitOfWork


@pytest.fixture
def clock(now: datetime) -> Clock:
    return Clock(now)


@pytest.fixture
def app(db: Database, clock: Clock) -> Flask:
    return make_app(db, clock)


@pytest.fixture
def seeded(db: Database, shop_id: int, now: datetime) -> Seeded:
    return seed_shop(db, now, shop_id=shop_id)


@pytest.fixture
def client(app: Flask, db: Database, seeded: Seeded) -> FlaskClient:
    """A client signed in to the seeded shop.

    The user gets a cheap hash and the session is set directly: scrypt costs ~0.1 s a call and
    signing in for real is what ``test_access`` is for.
    """
    with UnitOfWork(db, seeded.shop_id) as uow:
        user = uow.add(MerchantUser(email=EMAIL, password_hash=generate_password_hash(PASSWORD, "pbkdf2:sha256:1000"),
                                    created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        uow.commit()
        user_id = user.id
    c = app.test_client()
    with c.session_transaction() as session:
        session.update(user_id=user_id, shop_id=seeded.shop_id)
    return c




@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback that keeps what it receives (account e-mails)."""
    with SmtpSink() as sink:
        yield sink
