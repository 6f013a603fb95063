"""Signing in, signing out, rate limiting and CSRF on the merchant pages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import EMAIL, PASSWORD, Clock, Seeded, csrf, post, seed_shop, sign_in

from connector.db.engine import Database
from connector.db.models import LoginFailure
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from connector.services.accounts import (
    create_api_token,
    create_merchant_user,
    list_api_tokens,
    shop_for_api_token,
)


@pytest.fixture
def user(db: Database, seeded: Seeded) -> int:
    return create_merchant_user(db, seeded.shop_id, EMAIL, PASSWORD)


def test_pages_redirect_to_the_login_form_until_signed_in(app: Flask, seeded: Seeded) -> None:
    response = app.test_client().get("/merchant/worklist")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/merchant/login?next=/merchant/worklist")


def test_sign_in_sets_a_httponly_lax_session_cookie_and_opens_the_dashboard(app: Flask, user: int) -> None:
    client = app.test_client()
    response = sign_in(client, "Owner@Example.com ", PASSWORD, next="/merchant/worklist")
    assert response.status_code == 302 and response.headers["Location"] == "/merchant/worklist"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/merchant/").status_code == 200


def test_sign_in_never_redirects_off_site(app: Flask, user: int) -> None:
    response = sign_in(app.test_client(), EMAIL, PASSWORD, next="//evil.example/")
    assert response.headers["Location"] == "/merchant/"


def test_a_wrong_password_is_explained_next_to_the_field(app: Flask, user: int) -> None:
    response = sign_in(app.test_client(), EMAIL, "wrong-password")
    assert response.status_code == 401
    assert 'id="password-error"' in response.text and "e-mail or password is wrong" in response.text


def test_missing_fields_are_explained_next_to_each_field(app: Flask, user: int) -> None:
    client = app.test_client()
    client.get("/merchant/login")
    response = post(client, "/merchant/login", {"email": "not-an-email", "password": ""})
    assert response.status_code == 400
    assert 'id="email-error"' in response.text and 'id="password-error"' in response.text


def test_the_sixth_wrong_password_within_a_minute_is_refused_with_429(app: Flask, user: int, clock: Clock) -> None:
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, EMAIL, "wrong-password").status_code == 401
    refused = sign_in(client, EMAIL, "wrong-password")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    # Even the right password waits out the minute...
    assert sign_in(client, EMAIL, PASSWORD).status_code == 429
    # ...while another address is not blocked by this one's guesses.
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.9.8.7"
    assert sign_in(other, EMAIL, PASSWORD).status_code == 302
    clock.now += timedelta(seconds=61)
    assert sign_in(client, EMAIL, PASSWORD).status_code == 302


def test_one_address_guessing_many_emails_is_refused_too(app: Flask, db: Database, user: int, now: datetime) -> None:
    # 29 failures on other accounts from this address (inserted: 29 scrypt checks take seconds).
    with UnitOfWork(db) as uow:
        for i in range(29):
            uow.add(LoginFailure(email=f"user{i}@example.com", ip="127.0.0.1", failed_at=now))
        uow.commit()
    client = app.test_client()
    assert sign_in(client, "user99@example.com", "wrong-password").status_code == 401
    assert sign_in(client, EMAIL, PASSWORD).status_code == 429


def test_sign_out_ends_the_session(client: FlaskClient) -> None:
    assert post(client, "/merchant/logout").status_code == 302
    assert client.get("/merchant/").status_code == 302


def test_a_deleted_user_loses_the_session(client: FlaskClient, db: Database) -> None:
    from sqlalchemy import delete

    from connector.db.models import MerchantUser

    with db.engine.begin() as conn:
        conn.execute(delete(MerchantUser))
    assert client.get("/merchant/").status_code == 302


def test_create_merchant_user_validates_its_input(db: Database, seeded: Seeded) -> None:
    with pytest.raises(ValidationError) as short:
        create_merchant_user(db, seeded.shop_id, "a@example.com", "short")
    assert short.value.field == "password"
    with pytest.raises(ValidationError) as bad:
        create_merchant_user(db, seeded.shop_id, "nope", "long-enough-password")
    assert bad.value.field == "email"
    create_merchant_user(db, seeded.shop_id, "a@example.com", "long-enough-password")
    with pytest.raises(ValidationError, match="already has an account"):
        create_merchant_user(db, seeded.shop_id, "A@example.com", "long-enough-password")


def test_the_same_email_in_two_shops_picks_the_shop_by_domain(app: Flask, db: Database, seeded: Seeded,
                                                               now: datetime) -> None:
    other = seed_shop(db, now, domain="second-shop")
    create_merchant_user(db, seeded.shop_id, EMAIL, PASSWORD)
    create_merchant_user(db, other.shop_id, EMAIL, PASSWORD)
    client = app.test_client()
    ambiguous = sign_in(client, EMAIL, PASSWORD)
    assert ambiguous.status_code == 401 and 'id="shop-error"' in ambiguous.text
    assert sign_in(client, EMAIL, PASSWORD, shop="second-shop").status_code == 302
    with client.session_transaction() as s:
        assert s["shop_id"] == other.shop_id


POST_URLS = [
    "/merchant/login", "/merchant/logout", "/merchant/purchase-orders/{po}/send", "/merchant/purchase-orders/{po}/cancel",
    "/merchant/purchase-orders/{po}/receive", "/merchant/purchase-orders/{po}/quantities",
    "/merchant/purchase-orders/{po}/expected-date", "/merchant/suppliers/new", "/merchant/suppliers/{supplier}",
    "/merchant/suppliers/{supplier}/delete", "/merchant/suppliers/import", "/merchant/products/{variant}",
    "/merchant/settings", "/merchant/settings/templates/delay_notice/en", "/merchant/outbox/1/retry",
    "/merchant/settings/api-tokens", "/merchant/settings/api-tokens/1/revoke",
    "/merchant/tasks/1/done", "/merchant/settings/users/invite", "/merchant/settings/users/1/remove",
    "/merchant/settings/users/password", "/merchant/password/forgot", "/merchant/password/any-token",
]


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_every_form_refuses_a_missing_or_wrong_csrf_token(client: FlaskClient, seeded: Seeded,
                                                          token: str | None) -> None:
    csrf(client)
    for template in POST_URLS:
        url = template.format(po=seeded.po_id, supplier=seeded.supplier_id, variant=seeded.variant_ids["CHAIR"])
        data = {"csrf_token": token} if token else {}
        response = client.post(url, data={**data, "name": "x", "email": EMAIL, "password": PASSWORD})
        assert response.status_code == 400, url
    # Nothing happened: the PO is still a draft and the session is still signed in.
    assert client.get(f"/merchant/purchase-orders/{seeded.po_id}").text.count("Approve and send") == 1


def test_api_tokens_are_shown_once_resolve_to_the_shop_and_can_be_revoked(client: FlaskClient, db: Database,
                                                                         seeded: Seeded, now: datetime) -> None:
    missing = post(client, "/merchant/settings/api-tokens", {"name": ""})
    assert missing.status_code == 400 and 'id="name-error"' in missing.text
    created = post(client, "/merchant/settings/api-tokens", {"name": "<script>alert(1)</script>"})
    assert created.status_code == 200 and "&lt;script&gt;" in created.text and "<script>alert" not in created.text
    token = created.text.split('<div class="card" id="new-token">')[1].split("<pre>")[1].split("</pre>")[0]
    assert token.startswith("bo_") and shop_for_api_token(db, token, now) == seeded.shop_id
    listing = client.get("/merchant/settings/api-tokens").text
    assert token not in listing and token[:10] in listing
    token_id = list_api_tokens(db, seeded.shop_id)[0]["id"]
    other = seed_shop(db, now, domain="token-thief")
    assert post(client, f"/merchant/settings/api-tokens/{token_id}/revoke").status_code == 302
    assert shop_for_api_token(db, token, now) is None
    _, foreign = create_api_token(db, other.shop_id, "theirs", now)
    foreign_id = list_api_tokens(db, other.shop_id)[0]["id"]
    assert post(client, f"/merchant/settings/api-tokens/{foreign_id}/revoke").status_code == 404
    assert shop_for_api_token(db, foreign, now) == other.shop_id
    assert shop_for_api_token(db, "bo_not-a-token", now) is None
