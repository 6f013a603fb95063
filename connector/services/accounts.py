"""Merchant accounts: create a user, check a password, rate-limit guessing, and API tokens.

Passwords are hashed with scrypt (``werkzeug.security``; werkzeug ships with Flask, and its
hash format carries the method and salt, so a later change of cost needs no migration).
Refused sign-ins are rows in ``login_failures`` rather than process memory, so the limit holds
across gunicorn workers and restarts.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from connector.db.engine import Database
from connector.db.models import ApiToken, LoginFailure, MerchantUser, Shop
from connector.db.uow import UnitOfWork
from connector.errors import ConnectorError, ValidationError

EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")
MIN_PASSWORD = 10
MAX_FAILURES = 5  # per e-mail and address within WINDOW; the next attempt is refused
MAX_FAILURES_PER_IP = 30  # any e-mails from one address: stops spraying one password over many accounts
WINDOW = timedelta(minutes=1)
PASSWORD_METHOD = "scrypt"


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the e-mail is unknown, so both paths take the same time
    (computed on first use, not at import)."""
    return generate_password_hash("not-a-real-password", method=PASSWORD_METHOD)


class TooManyAttempts(ConnectorError):
    code = "rate_limited"


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: int
    shop_id: int
    email: str


def normalize_email(email: str) -> str:
    return email.strip().lower()


def validate_email(email: str) -> str:
    email = normalize_email(email)
    if not email:
        raise ValidationError("enter an e-mail address", field="email")
    if len(email) > 255 or not EMAIL.match(email):
        raise ValidationError("enter a valid e-mail address", field="email")
    return email


def create_merchant_user(db: Database, shop_id: int, email: str, password: str, now: datetime | None = None) -> int:
    """Create a user who signs in to ``shop_id``'s pages; returns its id."""
    email = validate_email(email)
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters", field="password")
    with UnitOfWork(db, shop_id) as uow:
        uow.shop()
        if uow.find(MerchantUser, email=email) is not None:
            raise ValidationError("this e-mail already has an account in this shop", field="email")
        user = uow.add(
            MerchantUser(
                shop_id=shop_id,
                email=email,
                password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
                created_at=now or _utcnow(),
            )
        )
        uow.commit()
        return int(user.id)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def authenticate(
    db: Database, email: str, password: str, ip: str, now: datetime, shop_domain: str | None = None
) -> SignedIn:
    """Check ``email``/``password``; raise :class:`TooManyAttempts` after too many failures.

    The same e-mail may have accounts in several shops; when the password matches more than
    one, ``shop_domain`` picks the shop.
    """
    email = normalize_email(email)
    ip = ip[:64]
    with UnitOfWork(db) as uow:
        s = uow.session
        recent = s.execute(
            select(
                func.count().filter(LoginFailure.email == email[:255]),
                func.count(),
            ).where(LoginFailure.ip == ip, LoginFailure.failed_at > now - WINDOW)
        ).one()
        if recent[0] >= MAX_FAILURES or recent[1] >= MAX_FAILURES_PER_IP:
            raise TooManyAttempts("too many failed sign-ins; wait a minute and try again", retry_after=60)
        rows = s.execute(
            select(MerchantUser, Shop.domain).join(Shop, Shop.id == MerchantUser.shop_id).where(
                MerchantUser.email == email
            )
        ).all()
        if not rows:
            check_password_hash(_dummy_hash(), password)
        matches = [(u, d) for u, d in rows if check_password_hash(u.password_hash, password)]
        if len(matches) > 1 and shop_domain:
            matches = [(u, d) for u, d in matches if d == shop_domain.strip()]
        if len(matches) != 1:
            if not matches:
                s.add(LoginFailure(email=email[:255], ip=ip, failed_at=now))
                # Keep the table small: old failures no longer count for anything.
                s.execute(delete(LoginFailure).where(LoginFailure.failed_at < now - timedelta(hours=1)))
                s.commit()
                raise ValidationError("e-mail or password is wrong", field="password")
            raise ValidationError("this e-mail signs in to several shops: enter the shop domain", field="shop")
        user = matches[0][0]
        user.last_login_at = now
        s.commit()
        return SignedIn(user_id=user.id, shop_id=user.shop_id, email=user.email)


def signed_in_user(db: Database, user_id: int, shop_id: int) -> SignedIn | None:
    """The session's user if it still exists in that shop (deleted users lose their sessions)."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        user = uow.find(MerchantUser, id=user_id)
        return SignedIn(user.id, user.shop_id, user.email) if user else None


# API tokens ---------------------------------------------------------------------------------

TOKEN_PREFIX = "bo_"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


API_SCOPES = ("read", "read_write")


def create_api_token(
    db: Database, shop_id: int, name: str, now: datetime, scope: str = "read_write"
) -> tuple[int, str]:
    """A new bearer token for the shop's API; the plain token is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationError("name the token (at most 100 characters)", field="name")
    if scope not in API_SCOPES:
        raise ValidationError("scope must be read or read_write", field="scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with UnitOfWork(db, shop_id) as uow:
        uow.shop()
        row = uow.add(ApiToken(shop_id=shop_id, name=name, token_prefix=token[:10], token_hash=_token_hash(token),
                               scope=scope, created_at=now))
        uow.commit()
        return int(row.id), token


def list_api_tokens(db: Database, shop_id: int) -> list[dict[str, Any]]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return [
            {"id": t.id, "name": t.name, "prefix": t.token_prefix, "scope": t.scope, "created_at": t.created_at,
             "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}
            for t in uow.all(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc()))
        ]


def revoke_api_token(db: Database, shop_id: int, token_id: int, now: datetime) -> None:
    with UnitOfWork(db, shop_id) as uow:
        token = uow.get(ApiToken, token_id)
        if token.revoked_at is None:
            token.revoked_at = now
        uow.commit()


def shop_for_api_token(db: Database, token: str, now: datetime) -> int | None:
    """The shop a bearer token belongs to, or None if unknown or revoked (for the JSON API)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    with UnitOfWork(db) as uow:
        row = uow.session.scalars(select(ApiToken).where(ApiToken.token_hash == _token_hash(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        row.last_used_at = now
        uow.commit()
        return int(row.shop_id)
