"""The merchant's main journeys and the shopper's page in a real browser (Debian chromium).

The app runs in a werkzeug server thread on 127.0.0.1 (port chosen by the OS); each step
leaves a screenshot in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from web_helpers import Clock, Seeded, deliver_mail, make_app, seed_shop
from werkzeug.serving import make_server

from adapters.mail.sink import SmtpSink
from connector.db.engine import Database
from connector.services.accounts import create_merchant_user

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no browser: /usr/bin/chromium is not installed")
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

CSV_ONE_BAD_ROW = (
    "supplier,email,delivery_method,webhook_url,lead_time_days,min_order_value,currency,max_wait_days,auto_send,"
    "dropship,dropship_min_units,dropship_min_value,sku,supplier_sku,unit_cost,pack_size,moq\n"
    "Initech,orders@initech.example,email,,7,100.00,USD,,no,no,0,0,CHAIR,IN-1,12.50,1,0\n"
    "Initech,orders@initech.example,email,,7,100.00,USD,,no,no,0,0,TABLE,IN-2,twelve,1,0\n"
)


NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def live_db(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, Seeded, Database]]:
    path = tmp_path / "browser.sqlite3"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    now = NOW
    seeded = seed_shop(db, now, domain="garden-shop")
    create_merchant_user(db, seeded.shop_id, "merchant@example.com", "browser-password")
    server = make_server("127.0.0.1", 0, make_app(db, Clock(now)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seeded, db
    finally:
        server.shutdown()
        thread.join(5)
        db.dispose()


@pytest.fixture
def live(live_db: tuple[str, Seeded, Database]) -> tuple[str, Seeded]:
    return live_db[0], live_db[1]


@pytest.fixture
def page(live: tuple[str, Seeded]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(10_000)
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_merchant_journey_and_shopper_page_in_a_browser(page: Any, live: tuple[str, Seeded]) -> None:
    from playwright.sync_api import expect

    base, seeded = live
    # Sign in (the dashboard redirects to the login form first).
    page.goto(f"{base}/merchant/")
    page.fill("#f-email", "merchant@example.com")
    page.fill("#f-password", "browser-password")
    shot(page, "01-login")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#open-units")).to_have_text("6")
    shot(page, "02-dashboard")

    # Create a supplier.
    page.click("text=Suppliers")
    page.click("#new-supplier")
    page.fill("#f-name", "Globex Outdoor")
    page.fill("#f-email", "po@globex.example")
    page.fill("#f-lead_time_days", "21")
    page.click("text=Save supplier")
    expect(page.locator(".flash")).to_contain_text("supplier Globex Outdoor saved")
    shot(page, "03-supplier-created")

    # Import a terms CSV with one bad row: every error shown, nothing saved.
    page.goto(f"{base}/merchant/suppliers")
    page.set_input_files("#f-file", files=[{"name": "terms.csv", "mimeType": "text/csv",
                                             "buffer": CSV_ONE_BAD_ROW.encode()}])
    page.click("#import")
    expect(page.locator("#import-errors")).to_contain_text("row 3, column unit_cost")
    expect(page.locator("#suppliers")).not_to_contain_text("Initech")
    shot(page, "04-import-errors")

    # Approve and send the draft purchase order.
    page.click("text=Purchase orders")
    page.click("text=PO-00001")
    expect(page.locator("#po-status")).to_have_text(re.compile("draft|ready"))
    page.click("#approve-send")
    expect(page.locator("#po-status")).to_have_text("sent")
    shot(page, "05-po-sent")

    # A partial receipt: three chairs arrive, so the oldest order's chair line stops waiting.
    page.goto(f"{base}/merchant/worklist")
    expect(page.locator("#worklist-total")).to_have_text("3 line(s) waiting")
    page.goto(f"{base}/merchant/purchase-orders/{seeded.po_id}")
    page.fill("input[aria-label='Received CHAIR']", "3")
    page.click("text=Record receipt")
    expect(page.locator(".flash")).to_contain_text("received 3 unit(s): 3 to waiting orders")
    expect(page.locator("#po-status")).to_have_text("partially received")
    shot(page, "06-partial-receipt")
    page.click("text=Worklist")
    expect(page.locator("#worklist-total")).to_have_text("2 line(s) waiting")
    expect(page.locator("#worklist")).not_to_contain_text("Ada Lovelace")
    shot(page, "07-worklist-after-receipt")

    # Edit a template and preview it.
    page.click("text=Settings")
    page.click("#edit-templates")
    page.click("tr:has-text('backorder confirmation') >> text=edit >> nth=0")
    page.fill("#f-subject", "Good news {{ customer_name }}: order {{ order_number }} is on its way soon")
    page.click("#preview")
    expect(page.locator("#preview-subject")).to_have_text("Good news Camille Martin: order #1042 is on its way soon")
    expect(page.frame_locator("iframe.preview").locator("body")).to_contain_text("Oak table lamp")
    shot(page, "08-template-preview")
    # Full-page captures leave iframes blank in headless Chromium; the preview gets its own shot.
    page.locator("#preview-result").screenshot(path=str(SHOTS / "08b-template-preview-html.png"))

    # The shopper's page, on a phone-sized screen.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{base}/shop/garden-shop/backorders")
    expect(page.locator("#items")).to_contain_text("Oak chair")
    expect(page.locator("#items")).to_contain_text("Pre-order")
    page.fill("input[name=q]", "table")
    page.click("text=Search")
    expect(page.locator("#items li")).to_have_count(1)
    shot(page, "09-shopper-page")


def test_an_invited_user_sets_a_password_and_signs_in_in_a_browser(
        page: Any, live_db: tuple[str, Seeded, Database], smtp_sink: SmtpSink) -> None:
    from playwright.sync_api import expect

    base, seeded, db = live_db
    page.goto(f"{base}/merchant/login")
    page.fill("#f-email", "merchant@example.com")
    page.fill("#f-password", "browser-password")
    page.click("button[type=submit]")
    page.click("text=Settings")
    page.click("#users-link")
    page.fill("#invite #f-email", "helper@garden.example")
    page.click("text=Send the invitation")
    expect(page.locator(".flash")).to_contain_text("invitation sent to helper@garden.example")
    expect(page.locator("#users")).to_contain_text("helper@garden.example invited")
    shot(page, "10-user-invited")

    # The outbox sends the invitation through SMTP; the link comes out of the sink.
    deliver_mail(db, seeded.shop_id, smtp_sink, NOW)
    [mail] = [m for m in smtp_sink.messages if m["To"] == "helper@garden.example"]
    body = mail.get_body(("plain",))
    assert body is not None
    found = re.search(r"http://pages\.test(/merchant/password/\S+)", body.get_content())
    assert found, body.get_content()

    page.click("text=Sign out")
    page.goto(f"{base}{found.group(1)}")
    expect(page.locator("#account-email")).to_have_text("helper@garden.example")
    page.fill("#f-password", "helper-password-1")
    page.fill("#f-confirm_password", "helper-password-1")
    shot(page, "11-set-password")
    page.click("text=Set the password")
    expect(page.locator(".flash")).to_contain_text("your password is set")
    expect(page.locator("#f-email")).to_have_value("helper@garden.example")
    page.fill("#f-password", "helper-password-1")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("header.top")).to_contain_text("helper@garden.example")
    shot(page, "12-signed-in-as-invited-user")
