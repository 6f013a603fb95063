"""Verifying webhook deliveries, app-proxy requests and session tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import jwt
import pytest

from adapters.shopify.webhooks import (
    BadProxySignature,
    BadSessionToken,
    BadWebhookSignature,
    MalformedDelivery,
    PayloadTooLarge,
    decode_session_token,
    proxy_signature,
    verify_app_proxy,
    verify_webhook,
    webhook_hmac,
)
from connector.errors import SignatureError, ValidationError

SECRET = "shpss_0123456789abcdef0123456789abcdef"
BODY = json.dumps({"id": 5812345678901, "updated_at": "2026-03-05T10:20:11-05:00"}).encode()


def headers(body: bytes = BODY, **overrides: str | None) -> dict[str, str]:
    h = {
        "X-Shopify-Topic": "orders/updated",
        "X-Shopify-Hmac-Sha256": webhook_hmac(body, SECRET),
        "X-Shopify-Shop-Domain": "jane-s-teas.myshopify.com",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-03-05T15:20:12.123456Z",
        "X-Shopify-API-Version": "2026-04",
    }
    for key, value in overrides.items():
        name = "X-Shopify-" + key.replace("_", "-")
        if value is None:
            h.pop(name)
        else:
            h[name] = value
    return h


def test_valid_delivery_is_parsed():
    delivery = verify_webhook(BODY, headers(), SECRET, max_bytes=10_000)
    assert delivery.topic == "orders/updated"
    assert delivery.shop_domain == "jane-s-teas.myshopify.com"
    assert delivery.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert delivery.webhook_id == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery.triggered_at.tzinfo is not None
    assert delivery.payload["id"] == 5812345678901


def test_header_names_are_case_insensitive():
    lowered = {k.lower(): v for k, v in headers().items()}
    assert verify_webhook(BODY, lowered, SECRET, max_bytes=10_000).topic == "orders/updated"


def test_wrong_hmac_is_401():
    with pytest.raises(BadWebhookSignature) as exc:
        verify_webhook(
            BODY, headers(Hmac_Sha256=webhook_hmac(BODY, "other-secret")), SECRET, max_bytes=10_000
        )
    assert exc.value.http_status == 401
    assert isinstance(exc.value, SignatureError)


def test_tampered_body_is_401():
    with pytest.raises(BadWebhookSignature):
        verify_webhook(BODY.replace(b"5812", b"5813"), headers(), SECRET, max_bytes=10_000)


def test_missing_hmac_is_401():
    with pytest.raises(BadWebhookSignature) as exc:
        verify_webhook(BODY, headers(Hmac_Sha256=None), SECRET, max_bytes=10_000)
    assert exc.value.http_status == 401


@pytest.mark.parametrize("missing", ["Topic", "Shop_Domain", "Webhook_Id"])
def test_missing_header_is_400(missing):
    with pytest.raises(MalformedDelivery) as exc:
        verify_webhook(BODY, headers(**{missing: None}), SECRET, max_bytes=10_000)
    assert exc.value.http_status == 400
    assert exc.value.field == "X-Shopify-" + missing.replace("_", "-")


def test_bad_shop_domain_is_400():
    with pytest.raises(MalformedDelivery):
        verify_webhook(BODY, headers(Shop_Domain="evil.example.com"), SECRET, max_bytes=10_000)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_json_is_400(body):
    with pytest.raises(MalformedDelivery) as exc:
        verify_webhook(body, headers(body), SECRET, max_bytes=10_000)
    assert exc.value.http_status == 400
    assert isinstance(exc.value, ValidationError)


def test_oversize_body_is_413_before_hashing():
    with pytest.raises(PayloadTooLarge) as exc:
        verify_webhook(BODY, headers(Hmac_Sha256="irrelevant"), SECRET, max_bytes=len(BODY) - 1)
    assert exc.value.http_status == 413


# -- app proxy ---------------------------------------------------------------------------------


def signed_proxy_query(**extra):
    query = {
        "shop": "jane-s-teas.myshopify.com",
        "logged_in_customer_id": "",
        "path_prefix": "/apps/backorders",
        "timestamp": str(int(time.time())),
        **extra,
    }
    query["signature"] = proxy_signature(query, SECRET)
    return query


def test_app_proxy_signature_verifies_and_returns_shop():
    assert verify_app_proxy(signed_proxy_query(), SECRET) == "jane-s-teas.myshopify.com"


def test_app_proxy_signature_is_hex_of_sorted_pairs_without_separator():
    query = {"shop": "a.myshopify.com", "timestamp": "1", "extra": ["1", "2"]}
    message = "extra=1,2shop=a.myshopify.comtimestamp=1"
    assert (
        proxy_signature(query, SECRET)
        == hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    )


def test_app_proxy_multi_values_from_a_multidict():
    from werkzeug.datastructures import MultiDict

    query = signed_proxy_query(ids=["1", "2"])
    md = MultiDict([(k, v) for k, vs in query.items() for v in (vs if isinstance(vs, list) else [vs])])
    assert verify_app_proxy(md, SECRET) == "jane-s-teas.myshopify.com"


@pytest.mark.parametrize(
    "change", [{"shop": "other.myshopify.com"}, {"signature": "0" * 64}, {"signature": None}]
)
def test_app_proxy_tampering_is_refused(change):
    query = signed_proxy_query()
    for key, value in change.items():
        if value is None:
            query.pop(key)
        else:
            query[key] = value
    with pytest.raises(BadProxySignature) as exc:
        verify_app_proxy(query, SECRET)
    assert exc.value.http_status == 401


# -- session tokens ----------------------------------------------------------------------------

API_KEY = "app-key"


def session_jwt(secret=SECRET, aud=API_KEY, exp_in=60, dest="https://jane-s-teas.myshopify.com"):
    now = int(time.time())
    claims = {
        "iss": "https://jane-s-teas.myshopify.com/admin",
        "dest": dest,
        "aud": aud,
        "sub": "42",
        "exp": now + exp_in,
        "nbf": now - 1,
        "iat": now - 1,
        "jti": "j",
        "sid": "s",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def test_session_token_gives_the_shop():
    assert decode_session_token(session_jwt(), API_KEY, SECRET) == "jane-s-teas.myshopify.com"
    assert decode_session_token("Bearer " + session_jwt(), API_KEY, SECRET) == "jane-s-teas.myshopify.com"


@pytest.mark.parametrize(
    "token",
    [
        session_jwt(secret="shpss_forged0000000000000000000000000000"),
        session_jwt(aud="another-app"),
        session_jwt(exp_in=-30),  # beyond the 10 s leeway
        session_jwt(dest="https://other-shop.myshopify.com"),  # iss and dest disagree
        "not-a-jwt",
        "",
    ],
)
def test_forged_or_expired_session_tokens_are_refused(token):
    with pytest.raises(BadSessionToken) as exc:
        decode_session_token(token, API_KEY, SECRET)
    assert isinstance(exc.value, SignatureError)
    assert exc.value.http_status == 401


def test_session_token_within_leeway_is_accepted():
    assert decode_session_token(session_jwt(exp_in=-5), API_KEY, SECRET) == "jane-s-teas.myshopify.com"
