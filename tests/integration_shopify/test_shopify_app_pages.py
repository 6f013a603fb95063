"""The embedded JSON API (session token) and the storefront app proxy (signed query)."""

from __future__ import annotations

import time

from adapters.shopify.webhooks import proxy_signature


def _proxy_query(harness, **extra: str) -> dict[str, str]:
    query = {"shop": harness.shop, "path_prefix": "/apps/backorders", "timestamp": str(int(time.time())),
             "logged_in_customer_id": "", **extra}
    query["signature"] = proxy_signature(query, harness.sandbox.api_secret)
    return query


def test_embedded_api_takes_the_shop_from_the_session_token_only(harness, installed):
    sb = harness.sandbox
    sb.create_order([{"sku": "MUG-1", "quantity": 2}])
    harness.process(installed)
    token = sb.sign_session_token()
    r = harness.browser.get(f"{harness.url}/shopify/api/backorders",
                            params={"shop": "someone-else.myshopify.com"},
                            headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["shop"] == harness.shop
    assert [i["sku"] for i in body["items"]] == ["MUG-1"] and body["items"][0]["status"] == "backorder"

    r = harness.browser.get(f"{harness.url}/shopify/api/backorders", params={"q": "cap"},
                            headers={"Authorization": f"Bearer {token}"})
    assert r.json()["items"] == []


def test_embedded_api_refuses_forged_expired_and_missing_tokens(harness, installed):
    sb = harness.sandbox
    url = f"{harness.url}/shopify/api/backorders"
    cases = {
        "forged": sb.sign_session_token(secret="forged-secret-forged-secret-forged-secret!"),
        "expired": sb.sign_session_token(ttl=-60),
        "other app": sb.sign_session_token(audience="another-api-key"),
        "garbage": "not.a.jwt",
    }
    for name, token in cases.items():
        r = harness.browser.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
    assert harness.browser.get(url).status_code == 401
    assert harness.browser.get(url, headers={"Authorization": "Basic abc"}).status_code == 401
    # signed correctly, but for a shop that never installed the app
    sb.add_shop("stranger.myshopify.com")
    r = harness.browser.get(url, headers={"Authorization": f"Bearer {sb.sign_session_token('stranger.myshopify.com')}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_installed"


def test_app_proxy_serves_html_and_json_for_a_signed_request(harness, installed):
    harness.sandbox.create_order([{"sku": "MUG-1", "quantity": 1}])
    harness.process(installed)
    r = harness.browser.get(f"{harness.url}/shopify/proxy/backorders", params=_proxy_query(harness))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "MUG-1" in r.text and "Mug" in r.text

    r = harness.browser.get(f"{harness.url}/shopify/proxy/backorders", params=_proxy_query(harness, format="json"))
    assert r.status_code == 200
    assert [i["sku"] for i in r.json()["items"]] == ["MUG-1"]


def test_app_proxy_escapes_the_search_text(harness, installed):
    q = '"><script>alert(1)</script>'
    r = harness.browser.get(f"{harness.url}/shopify/proxy/backorders", params=_proxy_query(harness, q=q))
    assert r.status_code == 200 and "<script>alert(1)" not in r.text


def test_app_proxy_refuses_forged_signatures(harness, installed):
    url = f"{harness.url}/shopify/proxy/backorders"
    good = _proxy_query(harness)
    assert harness.browser.get(url, params=dict(good, signature="0" * 64)).status_code == 401
    assert harness.browser.get(url, params=dict(good, shop="other.myshopify.com")).status_code == 401  # re-pointed
    unsigned = {k: v for k, v in good.items() if k != "signature"}
    assert harness.browser.get(url, params=unsigned).status_code == 401
    # signed, but for a shop we do not serve
    stranger = {"shop": "stranger.myshopify.com", "timestamp": str(int(time.time()))}
    stranger["signature"] = proxy_signature(stranger, harness.sandbox.api_secret)
    assert harness.browser.get(url, params=stranger).status_code == 404


def test_app_proxy_refuses_a_replayed_request_older_than_five_minutes(harness, installed):
    url = f"{harness.url}/shopify/proxy/backorders"
    now = int(time.time())
    fresh = _proxy_query(harness, timestamp=str(now - 60))
    assert harness.browser.get(url, params=fresh).status_code == 200
    for case, stamp in {"six minutes old": now - 360, "a day old": now - 86_400, "from the future": now + 600,
                        "not a number": "yesterday"}.items():
        replayed = _proxy_query(harness, timestamp=str(stamp))  # correctly signed, stale
        r = harness.browser.get(url, params=replayed)
        assert r.status_code == 401, case
        assert r.json()["error"] == {"code": "bad_signature", "message": r.json()["error"]["message"]}, case
        assert "timestamp" in r.json()["error"]["message"] or "older" in r.json()["error"]["message"], case
    no_stamp = {"shop": harness.shop, "path_prefix": "/apps/backorders"}
    no_stamp["signature"] = proxy_signature(no_stamp, harness.sandbox.api_secret)
    assert harness.browser.get(url, params=no_stamp).status_code == 401
