"""OAuth against the sandbox: code grant, token exchange, expiring tokens and refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from adapters.shopify import queries
from adapters.shopify.client import ShopifyOAuth, validate_oauth_query
from connector.errors import AuthError, SignatureError

REDIRECT = "https://connector.example/auth/shopify/callback"


@pytest.fixture
def oauth(sandbox) -> ShopifyOAuth:
    return ShopifyOAuth(
        sandbox.default_shop,
        sandbox.api_key,
        sandbox.api_secret,
        base_url=sandbox.base_url,
        api_version="2025-01",
    )


def authorize(sandbox, oauth, state="nonce-123") -> dict[str, str]:
    url = oauth.permission_url(["read_orders", "write_orders"], REDIRECT, state=state)
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def test_permission_url_carries_client_scopes_redirect_and_state(sandbox, oauth):
    url = oauth.permission_url(["read_orders", "write_products"], REDIRECT, state="s1")
    query = dict(parse_qsl(urlsplit(url).query))
    assert url.startswith(f"{sandbox.base_url}/admin/oauth/authorize?")
    assert query["client_id"] == sandbox.api_key
    assert query["scope"] == "read_orders,write_products"
    assert query["redirect_uri"] == REDIRECT
    assert query["state"] == "s1"


def test_real_permission_url_points_at_the_shop():
    real = ShopifyOAuth("jane-s-teas", "key", "shpss_0123456789abcdef0123456789abcdef")
    assert real.permission_url(["read_orders"], REDIRECT, state="x").startswith(
        "https://jane-s-teas.myshopify.com/admin/oauth/authorize?"
    )


def test_code_grant_install_end_to_end(make_client, sandbox, oauth):
    params = authorize(sandbox, oauth)
    shop = validate_oauth_query(params, sandbox.api_key, sandbox.api_secret, expected_state="nonce-123")
    assert shop == sandbox.default_shop
    grant = oauth.exchange_code(params["code"])
    assert grant.access_token.startswith("shpat_")
    assert grant.expires_at is None
    assert "read_orders" in grant.scope
    client = make_client(sandbox, grant.access_token)
    assert client.execute(queries.CURRENT_BULK_OPERATION) == {"currentBulkOperation": None}


def test_a_code_works_once(sandbox, oauth):
    params = authorize(sandbox, oauth)
    oauth.exchange_code(params["code"])
    with pytest.raises(AuthError):
        oauth.exchange_code(params["code"])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p.update(shop="other-shop.myshopify.com"),
        lambda p: p.update(hmac="0" * 64),
        lambda p: p.pop("hmac"),
    ],
)
def test_tampered_callback_query_is_refused(sandbox, oauth, tamper):
    params = authorize(sandbox, oauth)
    tamper(params)
    with pytest.raises(SignatureError):
        validate_oauth_query(params, sandbox.api_key, sandbox.api_secret, expected_state="nonce-123")


def test_state_from_another_browser_is_refused(sandbox, oauth):
    params = authorize(sandbox, oauth, state="theirs")
    with pytest.raises(SignatureError) as exc:
        validate_oauth_query(params, sandbox.api_key, sandbox.api_secret, expected_state="mine")
    assert exc.value.data["field"] == "state"


def test_stale_callback_is_refused(sandbox):
    params = {
        "code": "c",
        "shop": sandbox.default_shop,
        "state": "s",
        "timestamp": str(int((datetime.now(UTC) - timedelta(days=2)).timestamp())),
    }
    params["hmac"] = sandbox.oauth_hmac(params)
    with pytest.raises(SignatureError):
        validate_oauth_query(params, sandbox.api_key, sandbox.api_secret)


def test_wrong_client_secret_is_an_auth_error(sandbox):
    bad = ShopifyOAuth(
        sandbox.default_shop,
        sandbox.api_key,
        "shpss_wrong000000000000000000000000000000",
        base_url=sandbox.base_url,
    )
    with pytest.raises(AuthError):
        bad.exchange_code("whatever")


def test_token_exchange_gives_an_expiring_offline_token(make_client, sandbox, oauth):
    before = datetime.now(UTC)
    grant = oauth.token_exchange(sandbox.sign_session_token())
    assert grant.refresh_token
    assert grant.expires_at.tzinfo is not None
    assert before + timedelta(minutes=59) < grant.expires_at <= datetime.now(UTC) + timedelta(minutes=60)
    assert make_client(sandbox, grant.access_token).execute(queries.CURRENT_BULK_OPERATION)


def test_token_exchange_refuses_a_forged_session_token(sandbox, oauth):
    forged = sandbox.sign_session_token(secret="shpss_forged0000000000000000000000000000")
    with pytest.raises(AuthError):
        oauth.token_exchange(forged)


def test_refresh_rotates_both_tokens(make_client, sandbox, oauth):
    first = oauth.token_exchange(sandbox.sign_session_token())
    second = oauth.refresh_token(first.refresh_token)
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    with pytest.raises(AuthError):
        make_client(sandbox, first.access_token).execute(queries.CURRENT_BULK_OPERATION)
    with pytest.raises(AuthError):
        oauth.refresh_token(first.refresh_token)  # a used refresh token is dead


def test_expired_token_is_refreshed_transparently_by_the_client(make_client, sandbox, oauth):
    grant = oauth.token_exchange(sandbox.sign_session_token())
    state = {"grant": grant}

    def on_unauthorized():
        state["grant"] = oauth.refresh_token(state["grant"].refresh_token)
        return state["grant"].access_token

    client = make_client(sandbox, grant.access_token, on_unauthorized=on_unauthorized)
    sandbox.expire_token(grant.access_token)
    assert client.execute(queries.CURRENT_BULK_OPERATION) == {"currentBulkOperation": None}
    assert client.access_token == state["grant"].access_token != grant.access_token


def test_expires_within():
    grant_now = datetime.now(UTC)
    from adapters.shopify.client import TokenGrant

    grant = TokenGrant("t", "", grant_now + timedelta(minutes=3))
    assert grant.expires_within(grant_now)
    assert not grant.expires_within(grant_now, margin=timedelta(minutes=1))


def test_app_credentials_do_not_leak_into_the_sdks_global_session(sandbox, oauth):
    import shopify

    params = authorize(sandbox, oauth)
    validate_oauth_query(params, sandbox.api_key, sandbox.api_secret)
    assert shopify.Session.api_key is None
    assert shopify.Session.secret is None
