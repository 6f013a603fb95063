"""Install through the OAuth code grant, webhooks subscribed, first pull finds the backorders."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests
from integration_shopify_helpers import lines_of, shop_row
from sqlalchemy import select, text

from connector.db.models import SyncCursor
from connector.db.uow import UnitOfWork


def test_install_stores_encrypted_expiring_token_registers_webhooks_and_pulls(harness):
    sb = harness.sandbox
    sb._use_real_schema = True  # this once, every document the app sends is checked against Shopify's schema
    sb.create_product("Mug", [{"sku": "MUG-1", "price": 1200, "available": 0, "inventory_policy": "continue"}])
    before = sb.create_order([{"sku": "MUG-1", "quantity": 2}])  # placed before the app existed

    shop_id = harness.install()

    shop = shop_row(harness.db, shop_id)
    assert shop is not None and shop.status == "installed" and shop.platform == "shopify"
    creds = shop.credentials or {}
    assert creds["access_token"] in sb.tokens and creds["refresh_token"] and creds["expires_at"]
    with harness.db.engine.connect() as conn:
        raw = conn.execute(text("SELECT credentials FROM shops WHERE id = :i"), {"i": shop_id}).scalar_one()
    assert creds["access_token"] not in raw and creds["refresh_token"] not in raw  # encrypted at rest

    subs = {(s.topic, s.callback_url) for s in sb.shop().subscriptions}
    for topic in ("ORDERS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED", "INVENTORY_LEVELS_UPDATE",
                  "PRODUCTS_UPDATE", "APP_UNINSTALLED"):
        assert (topic, harness.webhook_url) in subs

    assert lines_of(harness.db, shop_id, before.id)["MUG-1"] == {
        "ordered": 2, "allocated": 0, "backordered": 2, "kind": "backorder"}
    with UnitOfWork(harness.db, shop_id, readonly=True) as uow:
        cursors = {c.resource: c.cursor for c in uow.session.scalars(select(SyncCursor))}
    assert set(cursors) == {"products", "orders", "inventory_levels", "catalogue_full_pass"} and cursors["orders"]
    assert shop_row(harness.db, shop_id).timezone == sb.shop().iana_timezone == "America/New_York"


def test_install_again_reactivates_the_same_shop(harness, installed):
    first = shop_row(harness.db, installed)
    harness.browser.cookies.clear()
    assert harness.install() == installed
    again = shop_row(harness.db, installed)
    assert again is not None and first is not None
    assert (again.credentials or {})["access_token"] != (first.credentials or {})["access_token"]
    # subscribing again is not an error and does not duplicate subscriptions
    topics = [s.topic for s in harness.sandbox.shop().subscriptions]
    assert len(topics) == len(set(topics))


def test_install_refuses_a_domain_that_is_not_a_shop(harness):
    for bad in ("evil.example.com", "shop.myshopify.com.evil.com", "", "https://x.myshopify.com/../a"):
        r = harness.browser.get(f"{harness.url}/shopify/install", params={"shop": bad}, allow_redirects=False)
        assert r.status_code == 400, bad


def test_install_redirects_to_the_permission_page_with_a_state_cookie(harness):
    r = harness.browser.get(f"{harness.url}/shopify/install", params={"shop": harness.shop}, allow_redirects=False)
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == "/admin/oauth/authorize"
    assert "shopify_oauth_state" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def test_callback_with_tampered_hmac_or_foreign_browser_is_refused(harness):
    params = harness.callback_params()
    tampered = dict(params, hmac="0" * 64)
    r = harness.browser.get(f"{harness.url}/shopify/callback", params=tampered, allow_redirects=False)
    assert r.status_code == 401

    # the same (valid) callback replayed in another browser, which never started the install
    other = requests.get(f"{harness.url}/shopify/callback", params=params, allow_redirects=False)
    assert other.status_code == 401 and other.json()["error"]["code"] == "bad_signature"

    # a state that is not the one this browser was given
    wrong_state = dict(params, state="not-the-nonce")
    wrong_state["hmac"] = harness.sandbox.oauth_hmac(wrong_state)
    r = harness.browser.get(f"{harness.url}/shopify/callback", params=wrong_state, allow_redirects=False)
    assert r.status_code == 401

    # nothing was installed by any of them
    with UnitOfWork(harness.db, readonly=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM shops")).scalar_one() == 0

    # and the genuine callback in the genuine browser still works
    r = harness.browser.get(f"{harness.url}/shopify/callback", params=params, allow_redirects=False)
    assert r.status_code == 302
