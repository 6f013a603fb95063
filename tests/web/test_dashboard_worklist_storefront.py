"""Dashboard figures, the worklist and its export, and the shopper's backorder page."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from web_helpers import Clock, Seeded, post

from connector.db.engine import Database
from connector.db.models import OutboxMessage, Shop, Variant
from connector.db.uow import UnitOfWork
from connector.services.storefront_queries import storefront_backorders


def test_dashboard_shows_open_backorders_late_pos_and_emails(client: FlaskClient, db: Database, seeded: Seeded,
                                                             clock: Clock) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(OutboxMessage).where(OutboxMessage.target == "customer").values(state="sent"))
    page = client.get("/merchant/").text
    assert '<b id="open-units">6</b>' in page and '<b id="open-orders">2</b>' in page
    assert '<b id="open-value">300.00 USD</b>' in page and "#1001" in page
    assert '<b id="emails-sent">2</b>' in page
    assert page.count("<svg") == 1 and "nothing covered yet" in page
    assert "No purchase order is late." in page
    post(client, f"/merchant/purchase-orders/{seeded.po_id}/send")
    clock.now += timedelta(days=30)
    later = client.get("/merchant/").text
    assert "No purchase order is late." not in later and "PO-00001" in later
    # A receipt after the promised date shows up in the ETA-accuracy chart.
    post(client, f"/merchant/purchase-orders/{seeded.po_id}/receive", {"all": "1"})
    covered = client.get("/merchant/").text
    assert covered.count("<svg") == 2 and "&gt; 7 days late" in covered


def test_worklist_filters_and_csv_export(client: FlaskClient, seeded: Seeded, clock: Clock) -> None:
    page = client.get("/merchant/worklist").text
    assert "3 line(s) waiting" in page and "PO-00001" in page
    assert "2 line(s) waiting" in client.get("/merchant/worklist?sku=cha").text
    assert "3 line(s) waiting" in client.get(f"/merchant/worklist?supplier={seeded.supplier_id}").text
    assert "3 line(s) waiting" in client.get("/merchant/worklist?age=4").text
    assert "0 line(s) waiting" in client.get("/merchant/worklist?age=6").text
    bad = client.get("/merchant/worklist?age=old&supplier=x")
    assert bad.status_code == 400 and 'id="age-error"' in bad.text and 'id="supplier-error"' in bad.text
    export = client.get("/merchant/worklist.csv?sku=TABLE")
    assert export.headers["Content-Disposition"] == 'attachment; filename="worklist.csv"'
    lines = export.text.strip().splitlines()
    assert lines[0].startswith("order,customer,sku") and len(lines) == 2 and "PO-00001:1" in lines[1]


def test_shopper_page_lists_backorders_and_preorders_with_their_eta(app: Flask, db: Database, seeded: Seeded) -> None:
    client = app.test_client()  # public: no sign-in
    data = client.get("/shop/test-shop/backorders.json").json
    assert data is not None
    items = {item["sku"]: item for item in data["items"]}
    assert items["LAMP"]["status"] == "preorder" and items["LAMP"]["eta"] == "2026-04-11"
    assert items["CHAIR"]["status"] == "backorder" and items["CHAIR"]["eta"] is not None
    assert [i["sku"] for i in client.get("/shop/test-shop/backorders.json?q=oak%20tab").json["items"]] == ["TABLE"]
    html = client.get("/shop/test-shop/backorders?q=lamp")
    assert html.status_code == 200 and "Brass lamp" in html.text and "Oak chair" not in html.text
    assert 'name="viewport"' in html.text
    assert client.get("/shop/unknown-shop/backorders").status_code == 404
    assert client.get("/shop/unknown-shop/backorders.json").status_code == 404
    # The service is the same one the platform app proxies call.
    assert storefront_backorders(db, seeded.shop_id, "CHAIR")[0]["title"] == "Oak chair"
    # A variant the merchant no longer sells past zero is not offered, even while orders wait for it.
    with UnitOfWork(db, seeded.shop_id) as uow:
        uow.get(Variant, seeded.variant_ids["CHAIR"]).backorders_allowed = False
        uow.commit()
    assert storefront_backorders(db, seeded.shop_id, "CHAIR") == []


def test_shopper_page_uses_the_shop_colours_but_only_valid_ones(app: Flask, db: Database, seeded: Seeded) -> None:
    with UnitOfWork(db) as uow:
        shop = uow.session.get(Shop, seeded.shop_id)
        assert shop is not None
        shop.settings = {"storefront": {"primary_color": "#aa3300", "background_color": "red;}</style><script>"}}
        uow.commit()
    html = app.test_client().get("/shop/test-shop/backorders").text
    assert "#aa3300" in html and "<script>" not in html and "background:#ffffff" in html


def test_security_headers_on_pages(client: FlaskClient) -> None:
    response = client.get("/merchant/")
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_backlog_series_counts_lines_waiting_at_the_end_of_each_day(client: FlaskClient, db: Database,
                                                                     seeded: Seeded, clock: Clock) -> None:
    from connector.services.dashboard_queries import dashboard

    series = dict(dashboard(db, seeded.shop_id, clock.now).backlog)
    assert series[date(2026, 2, 24)] == 0 and series[date(2026, 2, 25)] == 3 and series[date(2026, 3, 2)] == 3
    post(client, f"/merchant/purchase-orders/{seeded.po_id}/send")
    clock.now += timedelta(days=2)
    post(client, f"/merchant/purchase-orders/{seeded.po_id}/receive", {"all": "1"})
    later = dashboard(db, seeded.shop_id, clock.now + timedelta(days=1))
    by_day = dict(later.backlog)
    assert by_day[date(2026, 3, 3)] == 3 and by_day[date(2026, 3, 4)] == 0 and by_day[date(2026, 3, 5)] == 0
    assert dict(later.accuracy)["1-7 days early"] == 3
