"""Settings › Users and forgotten passwords: invitations and resets are e-mailed through the
outbox to a real SMTP server, their links work once and for a while, and nothing tells a
stranger whether an address has an account."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_helpers import EMAIL, PASSWORD, SETTINGS, Clock, Seeded, deliver_mail, post, seed_shop, sign_in

from adapters.mail.sink import SmtpSink
from connector.db.engine import Database
from connector.db.models import MerchantUser, OutboxMessage
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from connector.services.accounts import (
    AccountLink,
    authenticate,
    create_merchant_user,
    remove_user,
    sign_account_link,
)

NEW_PASSWORD = "a-brand-new-password"
LINK = re.compile(r"http://pages\.test(/merchant/password/[\w.\-]+)")


def _link(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1)


@dataclass(frozen=True)
class User:
    id: int
    password_hash: str


def _user(db: Database, shop_id: int, email: str) -> User | None:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        found = uow.find(MerchantUser, email=email)
        return User(found.id, found.password_hash) if found else None


def _mail_to(sink: SmtpSink, address: str) -> EmailMessage:
    """The one e-mail ``address`` got (the seeded orders' customers get their confirmations too)."""
    [mail] = [m for m in sink.messages if m["To"] == address]
    return mail


def _set_password(client: FlaskClient, path: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    client.get(path)
    return post(client, path, {"password": password, "confirm_password": password})


def test_an_invited_user_sets_a_password_from_the_emailed_link_and_signs_in(
        client: FlaskClient, app, db: Database, seeded: Seeded, smtp_sink: SmtpSink, now: datetime) -> None:
    r = post(client, "/merchant/settings/users/invite", {"email": "Helper@Example.com"})
    assert r.status_code == 302
    page = client.get("/merchant/settings/users").text
    assert "invitation sent to helper@example.com" in page and "helper@example.com <span class=\"badge\">invited</span>" in page
    invited = _user(db, seeded.shop_id, "helper@example.com")
    assert invited is not None
    # no usable link sits in the outbox: the payload names the user only
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        [payload] = uow.session.scalars(select(OutboxMessage.payload).where(
            OutboxMessage.kind == "merchant_account_email"))
    assert payload == {"user_id": invited.id, "purpose": "invite", "requested_at": now.isoformat()}

    assert deliver_mail(db, seeded.shop_id, smtp_sink, now).sent >= 1
    mail = _mail_to(smtp_sink, "helper@example.com")
    assert "invited" in mail["Subject"] and mail["From"] == SETTINGS.mail_from
    path = _link(mail)

    visitor = app.test_client()
    form = visitor.get(path)
    assert form.status_code == 200 and "helper@example.com" in form.text and "Welcome" in form.text
    assert form.headers["Referrer-Policy"] == "no-referrer"
    done = _set_password(visitor, path)
    assert done.status_code == 302 and done.headers["Location"] == "/merchant/login?email=helper@example.com"
    signed = sign_in(visitor, "helper@example.com", NEW_PASSWORD)
    assert signed.status_code == 302 and signed.headers["Location"] == "/merchant/"
    assert "helper@example.com" in visitor.get("/merchant/").text
    # the same link a second time: refused, and the password stays
    again = _set_password(app.test_client(), path, "yet-another-password")
    assert again.status_code == 400 and "already used" in again.text
    assert authenticate(db, "helper@example.com", NEW_PASSWORD, "10.0.0.9", now).user_id == invited.id


def test_an_invitation_link_expires_after_seven_days(app, db: Database, seeded: Seeded, clock: Clock,
                                                     now: datetime) -> None:
    user_id = create_merchant_user(db, seeded.shop_id, "late@example.com", "initial-password-1", now)
    with UnitOfWork(db, seeded.shop_id) as uow:
        user = uow.get(MerchantUser, user_id)
        user.password_hash = "invited!abc"
        uow.commit()
    token = sign_account_link(SETTINGS.secret_key, AccountLink(seeded.shop_id, user_id, "invite", "invited!abc", now))
    clock.now = now + timedelta(days=7, minutes=1)
    r = _set_password(app.test_client(), f"/merchant/password/{token}")
    assert r.status_code == 400 and "expired" in r.text
    clock.now = now + timedelta(days=6)
    assert _set_password(app.test_client(), f"/merchant/password/{token}").status_code == 302


def test_a_tampered_link_is_refused(app, client: FlaskClient, db: Database, seeded: Seeded, now: datetime) -> None:
    user = _user(db, seeded.shop_id, EMAIL)
    assert user is not None
    token = sign_account_link(SETTINGS.secret_key, AccountLink(seeded.shop_id, user.id, "reset", user.password_hash,
                                                               now))
    forged = sign_account_link("another-secret", AccountLink(seeded.shop_id, user.id, "reset", user.password_hash, now))
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), forged, "nonsense"):
        r = _set_password(app.test_client(), f"/merchant/password/{bad}")
        assert r.status_code == 400 and "not valid" in r.text, bad
    assert authenticate(db, EMAIL, PASSWORD, "10.0.0.9", now).user_id == user.id


def test_forgot_password_answers_the_same_and_mails_only_a_real_account(
        app, client: FlaskClient, db: Database, seeded: Seeded, smtp_sink: SmtpSink, now: datetime) -> None:
    visitor = app.test_client()
    visitor.get("/merchant/password/forgot")
    known = post(visitor, "/merchant/password/forgot", {"email": EMAIL})
    unknown = post(visitor, "/merchant/password/forgot", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(EMAIL, "X") == unknown.text.replace("nobody@example.com", "X")
    assert "If this address has an account" in known.text
    deliver_mail(db, seeded.shop_id, smtp_sink, now)
    mail = _mail_to(smtp_sink, EMAIL)
    assert "Reset your password" in mail["Subject"]
    assert not [m for m in smtp_sink.messages if m["To"] == "nobody@example.com"]
    path = _link(mail)
    assert _set_password(app.test_client(), path).status_code == 302
    with pytest.raises(ValidationError, match="wrong"):
        authenticate(db, EMAIL, PASSWORD, "10.0.0.9", now)
    assert authenticate(db, EMAIL, NEW_PASSWORD, "10.0.0.9", now).shop_id == seeded.shop_id
    assert _set_password(app.test_client(), path, "third-password-123").status_code == 400


def test_the_sixth_reset_request_in_a_minute_is_refused(app, db: Database, seeded: Seeded) -> None:
    visitor = app.test_client()
    visitor.get("/merchant/password/forgot")
    answers = [post(visitor, "/merchant/password/forgot", {"email": "someone@example.com"}).status_code
               for _ in range(6)]
    assert answers == [200] * 5 + [429]


def test_changing_your_password_needs_the_current_one(client: FlaskClient, db: Database, seeded: Seeded,
                                                      now: datetime) -> None:
    wrong = post(client, "/merchant/settings/users/password",
                 {"current_password": "not-it-at-all", "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert wrong.status_code == 400 and 'id="current_password-error"' in wrong.text
    short = post(client, "/merchant/settings/users/password",
                 {"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"})
    assert short.status_code == 400 and 'id="new_password-error"' in short.text and "at least 10" in short.text
    ok = post(client, "/merchant/settings/users/password",
              {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert ok.status_code == 302
    assert authenticate(db, EMAIL, NEW_PASSWORD, "10.0.0.9", now).shop_id == seeded.shop_id


def test_you_can_remove_another_user_but_not_yourself(client: FlaskClient, db: Database, seeded: Seeded,
                                                      now: datetime) -> None:
    me = _user(db, seeded.shop_id, EMAIL)
    assert me is not None
    other_id = create_merchant_user(db, seeded.shop_id, "temp@example.com", "initial-password-1", now)
    assert post(client, f"/merchant/settings/users/{me.id}/remove").status_code == 302
    assert "you cannot remove yourself" in client.get("/merchant/settings/users").text
    assert _user(db, seeded.shop_id, EMAIL) is not None
    assert post(client, f"/merchant/settings/users/{other_id}/remove").status_code == 302
    assert "temp@example.com removed" in client.get("/merchant/settings/users").text
    assert _user(db, seeded.shop_id, "temp@example.com") is None


def test_the_last_user_of_a_shop_stays(db: Database, seeded: Seeded, now: datetime) -> None:
    only = create_merchant_user(db, seeded.shop_id, "only@example.com", "initial-password-1", now)
    with pytest.raises(ValidationError, match="last user"):
        remove_user(db, seeded.shop_id, only, acting_user_id=None)  # inside the Shopify admin: no user


def test_another_shops_user_is_not_found(client: FlaskClient, db: Database, now: datetime) -> None:
    other = seed_shop(db, now, domain="other-shop")
    create_merchant_user(db, other.shop_id, "first@other.example", "initial-password-1", now)
    victim = create_merchant_user(db, other.shop_id, "second@other.example", "initial-password-1", now)
    assert "other.example" not in client.get("/merchant/settings/users").text
    assert post(client, f"/merchant/settings/users/{victim}/remove").status_code == 404
    assert _user(db, other.shop_id, "second@other.example") is not None


def test_user_forms_without_the_csrf_token_are_refused(client: FlaskClient, app, db: Database, seeded: Seeded,
                                                       now: datetime) -> None:
    other_id = create_merchant_user(db, seeded.shop_id, "temp@example.com", "initial-password-1", now)
    assert client.post("/merchant/settings/users/invite", data={"email": "x@example.com"}).status_code == 400
    assert client.post(f"/merchant/settings/users/{other_id}/remove").status_code == 400
    assert client.post("/merchant/settings/users/password", data={"current_password": PASSWORD}).status_code == 400
    assert app.test_client().post("/merchant/password/forgot", data={"email": EMAIL}).status_code == 400
    assert _user(db, seeded.shop_id, "temp@example.com") is not None
    assert _user(db, seeded.shop_id, "x@example.com") is None


def test_a_bad_invitation_address_is_shown_escaped_next_to_its_field(client: FlaskClient, db: Database,
                                                                      seeded: Seeded) -> None:
    r = post(client, "/merchant/settings/users/invite", {"email": "<script>alert(1)</script>"})
    assert r.status_code == 400 and 'id="email-error"' in r.text
    assert "<script>alert(1)" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    dup = post(client, "/merchant/settings/users/invite", {"email": EMAIL})
    assert dup.status_code == 400 and "already has an account" in dup.text
