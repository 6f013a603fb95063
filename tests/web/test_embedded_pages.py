"""Inside the Shopify admin (a session token, no cookie): confirmations after a redirect still
show, carried in the URL and signed; and the pages offer no password to change or sign out of.

Tokens are signed by the Shopify sandbox exactly as Shopify signs them; no server is needed for
that, and the app verifies them locally as it does in production."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import Clock, Seeded, post, seed_shop

from adapters.shopify.gateway import ShopifyAuth, ShopifyGateway
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import Shop, Supplier
from connector.db.uow import UnitOfWork
from connector.web import create_app
from connector.web.pages import register_pages
from connector.web.shopify_app import ShopifyAppSettings, ShopifyExtension, init_shopify_app
from sandbox.shopify.server import SandboxShopify

API_VERSION = "2025-01"


@pytest.fixture
def sandbox() -> SandboxShopify:
    return SandboxShopify(validate_with_real_schema=False)  # only signs session tokens here: not started


@pytest.fixture
def embedded_app(db: Database, clock: Clock, sandbox: SandboxShopify) -> Flask:
    url = "http://pages.test"
    settings = Settings(secret_key="test-secret-key", app_url=url, shopify_api_key=sandbox.api_key,
                        shopify_api_secret=sandbox.api_secret, shopify_api_version=API_VERSION, demo=True)

    def base_url_for(_shop: str) -> str:
        return sandbox.base_url

    gateway = ShopifyGateway(sandbox.api_key, sandbox.api_secret, API_VERSION, base_url_for, timeout=5)
    auth = ShopifyAuth(sandbox.api_key, sandbox.api_secret, API_VERSION, base_url_for, timeout=5)
    app = create_app(settings, db, clock=clock, gateways={"shopify": gateway})
    init_shopify_app(app, ShopifyExtension(oauth=auth, gateway=gateway, settings=ShopifyAppSettings(
        app_url=url, api_key=sandbox.api_key, scopes=settings.shopify_scopes)))
    register_pages(app)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def shop(db: Database, now: datetime, sandbox: SandboxShopify) -> Seeded:
    with UnitOfWork(db) as uow:
        row = uow.add(Shop(platform="shopify", domain=sandbox.default_shop, name="Sandbox", created_at=now,
                           settings={}, status="installed"))
        uow.commit()
        shop_id = row.id
    return seed_shop(db, now, shop_id=shop_id)


def _bearer(sandbox: SandboxShopify) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.sign_session_token()}"}


def test_a_confirmation_survives_the_redirect_inside_the_admin(embedded_app: Flask, shop: Seeded,
                                                               sandbox: SandboxShopify, db: Database) -> None:
    browser = embedded_app.test_client()
    r = browser.post(f"/merchant/suppliers/{shop.supplier_id}", headers=_bearer(sandbox),
                     data={"name": "Acme <Mugs>", "email": "po@acme.example", "lead_time_days": "7",
                           "delivery_method": "email", "currency": "USD"})
    assert r.status_code == 302, r.text
    target = urlsplit(r.headers["Location"])
    [token] = parse_qs(target.query)["flash"]
    assert "session=" not in r.headers.get("Set-Cookie", "")
    # the page the admin's frame loads next (no cookie: a fresh client) shows it, escaped
    page = embedded_app.test_client().get(f"{target.path}?{target.query}", headers=_bearer(sandbox))
    assert page.status_code == 200
    assert '<p class="flash ok" role="status">supplier Acme &lt;Mugs&gt; saved</p>' in page.text
    with UnitOfWork(db, shop.shop_id, readonly=True) as uow:
        assert uow.get(Supplier, shop.supplier_id).name == "Acme <Mugs>"
    # a forged or altered message shows nothing
    altered = embedded_app.test_client().get(f"{target.path}?flash={token[:-3]}xyz", headers=_bearer(sandbox))
    assert altered.status_code == 200 and 'class="flash' not in altered.text


def test_outside_the_admin_a_flash_in_the_url_is_ignored_and_the_cookie_carries_it(
        app: Flask, client: FlaskClient, embedded_app: Flask, shop: Seeded, sandbox: SandboxShopify,
        seeded: Seeded) -> None:
    r = embedded_app.test_client().post(f"/merchant/suppliers/{shop.supplier_id}", headers=_bearer(sandbox),
                                        data={"name": "Acme", "email": "po@acme.example", "lead_time_days": "7",
                                              "delivery_method": "email", "currency": "USD"})
    carried = urlsplit(r.headers["Location"])
    assert 'class="flash' not in client.get(f"/merchant/suppliers?{carried.query}").text
    saved = post(client, f"/merchant/suppliers/{seeded.supplier_id}",
                 {"name": "Acme cookie", "email": "po@acme.example", "lead_time_days": "7",
                  "delivery_method": "email", "currency": "USD"})
    assert saved.status_code == 302 and "flash=" not in saved.headers["Location"]
    assert "supplier Acme cookie saved" in client.get(saved.headers["Location"]).text


def test_inside_the_admin_there_is_no_password_to_change_and_no_sign_out(
        embedded_app: Flask, shop: Seeded, sandbox: SandboxShopify) -> None:
    page = embedded_app.test_client().get("/merchant/settings/users", headers=_bearer(sandbox))
    assert page.status_code == 200
    assert 'id="invite"' in page.text
    assert 'id="change-password"' not in page.text and "Sign out" not in page.text
    refused = embedded_app.test_client().post("/merchant/settings/users/password", headers=_bearer(sandbox),
                                              data={"current_password": "x", "new_password": "y" * 12,
                                                    "confirm_password": "y" * 12})
    assert refused.status_code == 400 and "sign in with Shopify" in refused.text
