"""Expiring offline tokens: refreshed (and persisted) when Shopify refuses them during a pull;
a refused refresh marks the shop needs_reauth. Embedded token exchange installs a shop."""

from __future__ import annotations

import pytest
from integration_shopify_helpers import creds, event_count, lines_of, shop_row

from connector.errors import AuthError


def test_expired_token_is_refreshed_during_pull_and_persisted(harness, installed):
    sb = harness.sandbox
    old = creds(harness.db, installed)
    sb.expire_token(old["access_token"])  # Shopify says 401 from now on; our expires_at is still ahead
    order = sb.create_order([{"sku": "MUG-1", "quantity": 2}], notify=False)

    pulled = harness.pull(installed)

    assert pulled.orders.applied == 1
    assert lines_of(harness.db, installed, order.id)["MUG-1"]["backordered"] == 2
    assert shop_row(harness.db, installed).status == "installed"
    new = creds(harness.db, installed)
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]  # rotated by the refresh
    assert new["access_token"] in sb.tokens
    assert any(r.get("status") == 401 for r in sb.requests)


def test_token_past_its_expiry_is_refreshed_before_use(harness, installed):
    from connector.services.shops import save_credentials

    stored = creds(harness.db, installed)
    stored["expires_at"] = "2020-01-01T00:00:00+00:00"
    save_credentials(harness.db, installed, stored)
    sb = harness.sandbox
    sb.expire_token(stored["access_token"])
    before = len([r for r in sb.requests if r.get("status") == 401])
    harness.pull(installed)
    assert len([r for r in sb.requests if r.get("status") == 401]) == before  # no refused call first
    assert creds(harness.db, installed)["access_token"] != stored["access_token"]


def test_refused_refresh_marks_the_shop_needs_reauth(harness, installed):
    sb = harness.sandbox
    stored = creds(harness.db, installed)
    sb.expire_token(stored["access_token"])
    sb.refresh_tokens.pop(stored["refresh_token"])  # the grant is gone (revoked, or expired)

    with pytest.raises(AuthError):
        harness.pull(installed)
    shop = shop_row(harness.db, installed)
    assert shop.status == "needs_reauth" and "reauth" in shop.settings
    # a needs_reauth shop is not pulled and its webhooks are not stored
    assert harness.pull(installed).skipped == "shop is needs_reauth"
    delivery = harness.send("orders/create", {"id": 1, "updated_at": "2026-01-01T00:00:00Z", "line_items": []})
    assert delivery.status == 200
    assert event_count(harness.db, installed) == 0


def test_embedded_token_exchange_installs_the_shop_from_its_session_token(harness):
    sb = harness.sandbox
    domain = "embedded-shop.myshopify.com"
    sb.add_shop(domain)
    jwt = sb.sign_session_token(domain)
    r = harness.browser.post(f"{harness.url}/shopify/token-exchange", headers={"Authorization": f"Bearer {jwt}"})
    assert r.status_code == 200, r.text
    assert r.json()["shop"] == domain
    assert shop_row(harness.db, harness.shop_id(domain)).status == "installed"
    assert creds(harness.db, harness.shop_id(domain))["refresh_token"]
    assert any(s.callback_url == harness.webhook_url for s in sb.shop(domain).subscriptions)

    forged = sb.sign_session_token(domain, secret="forged-secret-forged-secret-forged-secret!")
    r = harness.browser.post(f"{harness.url}/shopify/token-exchange", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    r = harness.browser.post(f"{harness.url}/shopify/token-exchange")
    assert r.status_code == 401


def test_refresh_tokens_job_renews_only_tokens_close_to_expiry(harness, installed):
    from datetime import UTC, datetime, timedelta

    from connector.services.shops import save_credentials

    assert harness.gateway.refresh_if_due(harness.db, installed) is False  # an hour left
    stored = creds(harness.db, installed)
    stored["expires_at"] = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    save_credentials(harness.db, installed, stored)
    assert harness.gateway.refresh_if_due(harness.db, installed) is True
    renewed = creds(harness.db, installed)
    assert renewed["access_token"] != stored["access_token"] and renewed["installed_at"] == stored["installed_at"]
    assert stored["access_token"] not in harness.sandbox.tokens  # Shopify retired the old one
