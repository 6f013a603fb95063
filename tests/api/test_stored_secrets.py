"""What the database holds for the two merchant secrets: API tokens and passwords.

(Kept with the API tests because the API is what the tokens open; docs/security.md cites both.)
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import text

from connector.db.engine import Database
from connector.services.accounts import create_api_token, create_merchant_user

PASSWORD = "correct-horse-battery"


def _dump(db: Database, table: str) -> str:
    with db.engine.connect() as conn:
        return repr(conn.execute(text(f"SELECT * FROM {table}")).all())


def test_api_tokens_are_stored_only_as_a_sha256(db: Database, shop_id: int, now: datetime) -> None:
    _, token = create_api_token(db, shop_id, "tool", now)
    dump = _dump(db, "api_tokens")
    assert token not in dump and token[10:] not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert token[:10] in dump  # the prefix the settings page shows, to tell tokens apart


def test_passwords_are_stored_as_salted_scrypt_hashes(db: Database, shop_id: int, now: datetime) -> None:
    create_merchant_user(db, shop_id, "owner@example.com", PASSWORD, now)
    create_merchant_user(db, shop_id, "second@example.com", PASSWORD, now)
    with db.engine.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM merchant_users ORDER BY id")).scalars().all()
    assert all(h.startswith("scrypt:") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1]  # salted: the same password hashes differently
