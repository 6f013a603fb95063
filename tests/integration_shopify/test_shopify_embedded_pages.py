"""The merchant pages inside the Shopify admin: session-token sign-in (from the admin's URL or
``Authorization: Bearer``), the shop taken from the token only, no CSRF token for bearer
requests, and a CSP that lets only that shop's admin frame the page.

Tokens are signed by the sandbox exactly as Shopify signs them (HS256 with the app secret,
``aud`` = API key, ``dest`` = https://shop, ``exp``/``nbf``/``iat``)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from integration_shopify_helpers import shop_row
from sqlalchemy import select
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from connector.db.models import MerchantUser, Supplier
from connector.db.uow import UnitOfWork

APP_BRIDGE = '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>'
FORGED_SECRET = "forged-secret-forged-secret-forged-secret!"
SUPPLIER = {"name": "Acme Mugs", "email": "orders@acme.example", "delivery_method": "email", "currency": "USD",
            "lead_time_days": "10"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _install_second_shop(harness, domain: str = "shop-b.myshopify.com") -> int:
    """A second shop, installed the embedded way (token exchange)."""
    harness.sandbox.add_shop(domain)
    r = harness.browser.post(f"{harness.url}/shopify/token-exchange",
                             headers=_bearer(harness.sandbox.sign_session_token(domain)))
    assert r.status_code == 200, r.text
    return harness.shop_id(domain)


def _suppliers(harness, shop_id: int) -> list[str]:
    with UnitOfWork(harness.db, shop_id, readonly=True) as uow:
        return list(uow.session.scalars(select(Supplier.name).order_by(Supplier.id)))


def test_the_admin_opening_the_app_url_lands_on_that_shops_dashboard(harness, installed):
    sb = harness.sandbox
    token = sb.sign_session_token()
    # the admin's query also names a shop: a different one here, which must change nothing
    r = harness.browser.get(f"{harness.url}/shopify/app", allow_redirects=False, params={
        "embedded": "1", "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc2FuZGJveA", "shop": "someone-else.myshopify.com",
        "id_token": token})
    assert r.status_code == 302, r.text
    target = urlsplit(r.headers["Location"])
    assert target.path == "/merchant/"
    assert parse_qs(target.query) == {"id_token": [token], "embedded": ["1"],
                                      "host": ["YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvc2FuZGJveA"]}

    page = harness.browser.get(f"{harness.url}{target.path}?{target.query}", allow_redirects=False)
    assert page.status_code == 200, page.text
    assert harness.shop in page.text and "someone-else" not in page.text
    assert page.text.count(APP_BRIDGE) == 1
    assert f'<meta name="shopify-api-key" content="{sb.api_key}">' in page.text
    # App Bridge first, then our own bundled script (no CDN for our code)
    assert page.text.index(APP_BRIDGE) < page.text.index('src="/merchant/pages-static/embedded.js"')
    script = harness.browser.get(f"{harness.url}/merchant/pages-static/embedded.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert "bridge.idToken()" in script.text and 'Authorization: "Bearer " + token' in script.text


def test_a_bearer_token_opens_the_pages_without_any_cookie(harness, installed):
    r = harness.browser.get(f"{harness.url}/merchant/suppliers", headers=_bearer(harness.sandbox.sign_session_token()),
                            allow_redirects=False)
    assert r.status_code == 200, r.text
    assert "Set-Cookie" not in r.headers or "session=" not in r.headers.get("Set-Cookie", "")
    assert not harness.browser.cookies.get("session")


def test_the_first_open_after_a_managed_install_exchanges_the_token_and_lands_on_the_dashboard(harness):
    sb = harness.sandbox
    domain = "managed-install.myshopify.com"
    sb.add_shop(domain)
    token = sb.sign_session_token(domain)
    r = harness.browser.get(f"{harness.url}/shopify/app", params={"embedded": "1", "id_token": token})
    assert r.status_code == 200, r.text
    assert urlsplit(r.url).path == "/merchant/" and domain in r.text
    shop_id = harness.shop_id(domain)
    assert shop_row(harness.db, shop_id).status == "installed"
    assert any(s.callback_url == harness.webhook_url for s in sb.shop(domain).subscriptions)


def test_the_app_url_without_a_token_sends_the_merchant_to_the_sign_in(harness, installed):
    r = harness.browser.get(f"{harness.url}/shopify/app", params={"shop": harness.shop})
    assert r.status_code == 200 and urlsplit(r.url).path == "/merchant/login"
    forged = harness.sandbox.sign_session_token(secret=FORGED_SECRET)
    r = harness.browser.get(f"{harness.url}/shopify/app", params={"id_token": forged}, allow_redirects=False)
    assert r.status_code == 401 and r.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_shop_b_token_gets_404_for_shop_a_ids(harness, installed):
    sb = harness.sandbox
    created = harness.browser.post(f"{harness.url}/merchant/suppliers/new", data=SUPPLIER,
                                   headers=_bearer(sb.sign_session_token()))
    assert created.status_code == 200, created.text
    supplier_url = created.url.split("?")[0]
    assert re.search(r"/merchant/suppliers/\d+$", supplier_url)
    shop_b = _install_second_shop(harness)
    token_b = sb.sign_session_token("shop-b.myshopify.com")

    assert harness.browser.get(supplier_url, headers=_bearer(token_b)).status_code == 404
    edit = harness.browser.post(supplier_url, data=dict(SUPPLIER, name="Stolen"), headers=_bearer(token_b))
    assert edit.status_code == 404
    assert harness.browser.get(f"{harness.url}/merchant/suppliers", headers=_bearer(token_b)).text.count("Acme") == 0
    assert _suppliers(harness, installed) == ["Acme Mugs"] and _suppliers(harness, shop_b) == []
    # shop A's own token still reads it
    assert harness.browser.get(supplier_url, headers=_bearer(sb.sign_session_token())).status_code == 200


def test_forged_expired_foreign_and_uninstalled_tokens_get_401(harness, installed):
    sb = harness.sandbox
    url = f"{harness.url}/merchant/"
    sb.add_shop("never-installed.myshopify.com")
    refused = {
        "forged signature": sb.sign_session_token(secret=FORGED_SECRET),
        "expired beyond the 10 s leeway": sb.sign_session_token(ttl=-30),
        "another app's token": sb.sign_session_token(audience="another-api-key"),
        "not a JWT": "not.a.jwt",
        "a shop that never installed": sb.sign_session_token("never-installed.myshopify.com"),
    }
    for case, token in refused.items():
        by_header = harness.browser.get(url, headers=_bearer(token), allow_redirects=False)
        by_url = harness.browser.get(url, params={"id_token": token}, allow_redirects=False)
        assert by_header.status_code == 401, case
        assert by_url.status_code == 401, case
        assert "Not signed in" in by_header.text and APP_BRIDGE not in by_header.text, case
        # a refused request is not embedded: nobody but the app itself may frame its error page
        assert by_header.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'"), case
    # Shopify's clock and ours may differ by a few seconds: 10 s of leeway
    assert harness.browser.get(url, headers=_bearer(sb.sign_session_token(ttl=-5))).status_code == 200

    sb.uninstall_app()
    assert shop_row(harness.db, installed).status == "uninstalled"
    after = harness.browser.get(url, headers=_bearer(sb.sign_session_token()), allow_redirects=False)
    assert after.status_code == 401 and "has not installed the app" in after.text


def test_a_bearer_post_needs_no_csrf_token_and_a_token_in_a_post_url_is_not_accepted(harness, installed):
    sb = harness.sandbox
    r = harness.browser.post(f"{harness.url}/merchant/suppliers/new", data=SUPPLIER,
                             headers=_bearer(sb.sign_session_token()))
    assert r.status_code == 200, r.text
    assert _suppliers(harness, installed) == ["Acme Mugs"]
    # a bad field is still answered next to the field, nothing saved
    bad = harness.browser.post(f"{harness.url}/merchant/suppliers/new", data=dict(SUPPLIER, name="Other", currency="X"),
                               headers=_bearer(sb.sign_session_token()))
    assert bad.status_code == 400 and "three-letter code" in bad.text

    # state changes need the header: the token in a POST's URL is ignored, so CSRF applies
    in_url = harness.browser.post(f"{harness.url}/merchant/suppliers/new", data=dict(SUPPLIER, name="Sneaky"),
                                  params={"id_token": sb.sign_session_token()}, allow_redirects=False)
    assert in_url.status_code == 400
    assert _suppliers(harness, installed) == ["Acme Mugs"]


def test_a_cookie_post_without_the_csrf_token_is_still_refused(harness, installed):
    with UnitOfWork(harness.db, installed) as uow:
        user = uow.add(MerchantUser(email="owner@example.com", password_hash=generate_password_hash("x", "pbkdf2:sha256:1000"),
                                    created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        uow.commit()
        user_id = user.id
    client = harness.app.test_client()
    with client.session_transaction() as session:
        session.update(user_id=user_id, shop_id=installed, csrf_token="the-real-token")
    assert client.get("/merchant/suppliers").status_code == 200
    assert client.post("/merchant/suppliers/new", data=SUPPLIER).status_code == 400
    assert client.post("/merchant/suppliers/new", data=dict(SUPPLIER, csrf_token="wrong")).status_code == 400
    assert _suppliers(harness, installed) == []
    ok = client.post("/merchant/suppliers/new", data=dict(SUPPLIER, csrf_token="the-real-token"))
    assert ok.status_code == 302 and _suppliers(harness, installed) == ["Acme Mugs"]


def test_only_the_signed_in_shops_admin_may_frame_an_embedded_page(harness, installed):
    with UnitOfWork(harness.db, installed) as uow:
        user = uow.add(MerchantUser(email="owner@example.com", password_hash=generate_password_hash("x", "pbkdf2:sha256:1000"),
                                    created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        uow.commit()
        user_id = user.id
    client = harness.app.test_client()
    with client.session_transaction() as session:
        session.update(user_id=user_id, shop_id=installed)
    standalone = client.get("/merchant/")
    assert standalone.status_code == 200
    policy = standalone.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy and "cdn.shopify.com" not in policy and "admin.shopify.com" not in policy
    assert APP_BRIDGE not in standalone.get_data(as_text=True)

    embedded = harness.browser.get(f"{harness.url}/merchant/", headers=_bearer(harness.sandbox.sign_session_token()))
    assert embedded.status_code == 200
    directives = dict(d.strip().split(" ", 1) for d in embedded.headers["Content-Security-Policy"].split(";"))
    assert directives["frame-ancestors"] == f"https://{harness.shop} https://admin.shopify.com"
    assert directives["script-src"] == "'self' https://cdn.shopify.com/shopifycloud/app-bridge.js"
    assert "*" not in embedded.headers["Content-Security-Policy"]

    _install_second_shop(harness)
    other = harness.browser.get(f"{harness.url}/merchant/",
                                headers=_bearer(harness.sandbox.sign_session_token("shop-b.myshopify.com")))
    assert "frame-ancestors https://shop-b.myshopify.com https://admin.shopify.com" in other.headers["Content-Security-Policy"]


# -- in a real browser, framed by a stand-in for the admin -------------------------------------

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
APP_HOST = "backorders-app.test"
APP_ORIGIN = f"https://{APP_HOST}"
ADMIN_URL = "https://admin.shopify.com/store/sandbox-shop/apps/backorders"


def _browser_ready() -> bool:
    import importlib.util
    import os

    return os.path.exists(CHROMIUM) and importlib.util.find_spec("playwright") is not None


@pytest.mark.skipif(not _browser_ready(), reason="no browser: /usr/bin/chromium or playwright is missing")
def test_embedded_js_sends_the_session_token_on_links_and_forms_inside_the_admin_frame(harness, installed):
    """The admin frames the app (https, frame-ancestors enforced by Chromium); App Bridge is
    Shopify's script and cannot run outside the admin, so a stand-in at its CDN URL hands out
    tokens signed exactly like the real ones. Everything else is the real app over HTTP."""
    from playwright.sync_api import expect, sync_playwright

    sb = harness.sandbox
    posted: list[dict[str, str]] = []

    def admin(route: Any) -> None:
        src = f"{APP_ORIGIN}/shopify/app?embedded=1&host=c2FuZGJveA&shop={harness.shop}&id_token={sb.sign_session_token()}"
        route.fulfill(content_type="text/html", body=f'<!doctype html><title>Admin</title><iframe id="app" '
                                                     f'src="{src}" style="width:1200px;height:850px"></iframe>')

    def app_bridge(route: Any) -> None:
        token = sb.sign_session_token()  # fresh on every page load, like shopify.idToken()
        route.fulfill(content_type="text/javascript",
                      body=f"window.shopify = {{idToken: function () {{ return Promise.resolve({token!r}); }}}};")

    # The admin frames https only: the same app, served over TLS (a throwaway certificate) under
    # the app's public host name, which Chromium resolves to this server.
    tls = make_server("127.0.0.1", 0, harness.app, threaded=True, ssl_context="adhoc")
    threading.Thread(target=tls.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu",
            f"--host-resolver-rules=MAP {APP_HOST}:443 127.0.0.1:{tls.server_port}",
            # the "public" admin page may frame the app although it resolves to loopback here
            "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, ignore_https_errors=True)
        context.route("https://admin.shopify.com/**", admin)
        context.route("https://cdn.shopify.com/shopifycloud/app-bridge.js", app_bridge)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("request", lambda r: posted.append(dict(r.headers)) if r.method == "POST" else None)
        opened: list[str] = []
        page.on("request", lambda r: opened.append(r.url) if r.is_navigation_request() else None)
        try:
            page.goto(ADMIN_URL)
            frame = page.frame_locator("#app")
            expect(frame.locator("h1")).to_have_text("Dashboard")
            app_frame = page.frame(url=lambda u: u.startswith(APP_ORIGIN))
            assert app_frame is not None
            # embedded.js ran: the token does not stay in the frame's URL (history, reloads)
            app_frame.wait_for_function("() => location.pathname === '/merchant/' && !location.search.includes('id_token')")

            frame.locator("nav >> text=Suppliers").click()
            expect(frame.locator("h1")).to_have_text("Suppliers")
            # a link is followed with a fresh token, as the admin opens the app
            assert any(u.startswith(f"{APP_ORIGIN}/merchant/suppliers?id_token=ey") for u in opened), opened
            frame.locator("#new-supplier").click()
            frame.locator("#f-name").fill("Globex Outdoor")
            frame.locator("#f-email").fill("po@globex.example")
            frame.locator("#f-currency").fill("X")  # refused next to its field, nothing saved
            frame.locator("text=Save supplier").click()
            expect(frame.locator("body")).to_contain_text("three-letter code")
            assert _suppliers(harness, installed) == []

            frame.locator("#f-currency").fill("USD")
            frame.locator("text=Save supplier").click()
            expect(frame.locator("#f-name")).to_have_value("Globex Outdoor")
            expect(frame.locator("body")).not_to_contain_text("three-letter code")
            assert _suppliers(harness, installed) == ["Globex Outdoor"]
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "embedded-supplier-saved.png"), full_page=True)
        finally:
            context.close()
            browser.close()
            tls.shutdown()
            tls.server_close()
    assert len(posted) == 2
    assert all(h.get("authorization", "").startswith("Bearer ey") for h in posted)
    assert all(h.get("cookie") is None for h in posted)  # the token did the work, not a cookie
