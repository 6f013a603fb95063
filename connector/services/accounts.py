"""Merchant accounts: create, invite and remove users, check and reset passwords, rate-limit
guessing, and API tokens.

Passwords are hashed with scrypt (``werkzeug.security``; werkzeug ships with Flask, and its
hash format carries the method and salt, so a later change of cost needs no migration).
Refused sign-ins are rows in ``login_failures`` rather than process memory, so the limit holds
across gunicorn workers and restarts.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from connector.db.engine import Database
from connector.db.models import ApiToken, LoginFailure, MerchantUser, OutboxMessage, Shop
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


# Users of a shop: invitations, removal, password changes and resets ---------------------------

ACCOUNT_EMAIL_KIND = "merchant_account_email"  # outbox kind; bootstrap.dispatch sends it
ACCOUNT_LINK_SALT = "merchant-account-link"
INVITE = "invite"
RESET = "reset"
LINK_TTL = {INVITE: timedelta(days=7), RESET: timedelta(hours=1)}
# The hash of a user invited but without a password yet: no "$", so werkzeug's
# check_password_hash returns False for every password (it cannot be signed in to).
INVITED_PREFIX = "invited!"
RESET_PREFIX = "reset:"  # LoginFailure rows of reset requests: counted apart from sign-ins


class LinkRefused(ValidationError):
    """An invitation or reset link that is forged, expired, or already used."""

    code = "link_refused"


@dataclass(frozen=True, slots=True)
class AccountLink:
    shop_id: int
    user_id: int
    purpose: str  # INVITE or RESET
    password_hash: str  # the user's hash when the link was signed: setting a password spends it
    issued_at: datetime


def has_password(password_hash: str) -> bool:
    return not password_hash.startswith(INVITED_PREFIX)


def _link_serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValidationError("a secret key is needed to sign account links", field="secret_key")
    return URLSafeSerializer(secret, salt=ACCOUNT_LINK_SALT)


def _fingerprint(password_hash: str) -> str:
    # Single use: the link names the hash it was made for, and setting a password changes the
    # hash. Only a digest travels in the link, never the hash itself.
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


def sign_account_link(secret: str, link: AccountLink) -> str:
    payload = [link.shop_id, link.user_id, link.purpose, _fingerprint(link.password_hash),
               int(link.issued_at.timestamp())]
    return str(_link_serializer(secret).dumps(payload))


def _read_account_link(secret: str, token: str, now: datetime) -> tuple[int, int, str, str]:
    try:
        shop_id, user_id, purpose, fingerprint, issued = _link_serializer(secret).loads(token)
        issued_at = datetime.fromtimestamp(int(issued), UTC)
        if purpose not in LINK_TTL:
            raise ValueError(purpose)
    except (BadSignature, ValueError, TypeError) as exc:
        raise LinkRefused("this link is not valid; ask for a new one", field="token") from exc
    if now > issued_at + LINK_TTL[purpose]:
        raise LinkRefused("this link has expired; ask for a new one", field="token")
    return int(shop_id), int(user_id), str(purpose), str(fingerprint)


def _user_for_link(uow: UnitOfWork, user_id: int, fingerprint: str) -> MerchantUser:
    user = uow.find(MerchantUser, id=user_id)
    if user is None or not hmac.compare_digest(_fingerprint(user.password_hash), fingerprint):
        raise LinkRefused("this link was already used; ask for a new one", field="token")
    return user


def account_link_user(db: Database, secret: str, token: str, now: datetime) -> tuple[str, str]:
    """(e-mail, purpose) of a valid link, for the page that asks for the new password."""
    shop_id, user_id, purpose, fingerprint = _read_account_link(secret, token, now)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return _user_for_link(uow, user_id, fingerprint).email, purpose


def set_password_from_link(db: Database, secret: str, token: str, password: str, now: datetime) -> SignedIn:
    """Set the password a link was sent for; the link cannot be used again afterwards."""
    shop_id, user_id, _, fingerprint = _read_account_link(secret, token, now)
    _check_new_password(password)
    with UnitOfWork(db, shop_id) as uow:
        user = _user_for_link(uow, user_id, fingerprint)
        user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
        user.last_login_at = now
        uow.commit()
        return SignedIn(user.id, user.shop_id, user.email)


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD} characters", field="password")
    if len(password) > 1024:
        raise ValidationError("the password is too long (at most 1024 characters)", field="password")


def _queue_account_email(uow: UnitOfWork, user: MerchantUser, purpose: str, now: datetime) -> None:
    # The payload names the user, not the link: the link is signed when the e-mail is sent, so
    # no usable token sits in the outbox (which the JSON API can list, payload included).
    uow.add(OutboxMessage(
        kind=ACCOUNT_EMAIL_KIND, target="merchant", subject=user.email,
        payload={"user_id": user.id, "purpose": purpose, "requested_at": now.isoformat()},
        idempotency_key=f"{ACCOUNT_EMAIL_KIND}:{purpose}:{user.id}:{secrets.token_hex(8)}",
        state="pending", attempts=0, next_attempt_at=now, created_at=now,
    ))


def list_users(db: Database, shop_id: int) -> list[dict[str, Any]]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return [
            {"id": u.id, "email": u.email, "created_at": u.created_at, "last_login_at": u.last_login_at,
             "invited": not has_password(u.password_hash)}
            for u in uow.all(select(MerchantUser).order_by(MerchantUser.email))
        ]


def invite_user(db: Database, shop_id: int, email: str, now: datetime) -> int:
    """Add a user without a password and e-mail them a link to choose one; returns its id."""
    email = validate_email(email)
    with UnitOfWork(db, shop_id) as uow:
        uow.shop()
        if uow.find(MerchantUser, email=email) is not None:
            raise ValidationError("this e-mail already has an account in this shop", field="email")
        user = uow.add(MerchantUser(shop_id=shop_id, email=email, created_at=now,
                                    password_hash=INVITED_PREFIX + secrets.token_hex(16)))
        uow.session.flush()
        _queue_account_email(uow, user, INVITE, now)
        uow.commit()
        return int(user.id)


def remove_user(db: Database, shop_id: int, user_id: int, acting_user_id: int | None) -> str:
    """Remove a user of the shop (their sessions end with it); returns the e-mail removed."""
    with UnitOfWork(db, shop_id) as uow:
        user = uow.get(MerchantUser, user_id)
        if user.id == acting_user_id:
            raise ValidationError("you cannot remove yourself; ask another user of the shop", field="user")
        others = uow.session.scalar(select(func.count()).select_from(MerchantUser).where(MerchantUser.id != user.id))
        if not others:
            raise ValidationError("the last user of a shop cannot be removed", field="user")
        email = user.email
        uow.session.delete(user)
        uow.commit()
        return email


def change_password(db: Database, shop_id: int, user_id: int, current: str, new: str) -> None:
    """Change a signed-in user's password; the current one is required."""
    with UnitOfWork(db, shop_id) as uow:
        user = uow.get(MerchantUser, user_id)
        if not check_password_hash(user.password_hash, current):
            raise ValidationError("the current password is wrong", field="current_password")
        _check_new_password(new)
        user.password_hash = generate_password_hash(new, method=PASSWORD_METHOD)
        uow.commit()


def request_password_reset(db: Database, email: str, ip: str, now: datetime) -> None:
    """Queue a reset e-mail to every account of ``email`` (one per shop it signs in to).

    Says nothing either way (the page shows the same answer whether the address exists), and is
    rate-limited like a sign-in: every request counts, so nobody can mail-bomb an address.
    """
    email = normalize_email(email)
    ip = ip[:64]
    key = (RESET_PREFIX + email)[:255]
    with UnitOfWork(db) as uow:
        s = uow.session
        recent = s.execute(
            select(func.count().filter(LoginFailure.email == key), func.count())
            .where(LoginFailure.ip == ip, LoginFailure.failed_at > now - WINDOW)
        ).one()
        if recent[0] >= MAX_FAILURES or recent[1] >= MAX_FAILURES_PER_IP:
            raise TooManyAttempts("too many requests; wait a minute and try again", retry_after=60)
        s.add(LoginFailure(email=key, ip=ip, failed_at=now))
        s.commit()
        users = list(s.scalars(select(MerchantUser).where(MerchantUser.email == email)))
        shop_users = [(u.shop_id, u.id) for u in users]
    for shop_id, user_id in shop_users:
        with UnitOfWork(db, shop_id) as uow:
            user = uow.find(MerchantUser, id=user_id)
            if user is not None:
                _queue_account_email(uow, user, RESET, now)
                uow.commit()


def account_email_text(shop_name: str, email: str, purpose: str, link: str) -> tuple[str, str]:
    """(subject, plain-text body) of an invitation or reset e-mail."""
    hours = int(LINK_TTL[purpose].total_seconds() // 3600)
    valid = f"{hours // 24} days" if hours >= 48 else f"{hours} hour(s)"
    if purpose == INVITE:
        subject = f"You are invited to the backorder pages of {shop_name}"
        intro = f"You were invited to sign in to the backorder pages of {shop_name} as {email}."
        action = "Choose your password here"
    else:
        subject = f"Reset your password for {shop_name}"
        intro = f"Someone (hopefully you) asked to reset the password of {email} for {shop_name}."
        action = "Choose a new password here"
    body = (f"Hello,\n\n{intro}\n\n{action} (the link works once, for {valid}):\n{link}\n\n"
            "If you did not expect this e-mail, ignore it: nothing changes.\n")
    return subject, body
