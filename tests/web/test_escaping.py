"""Whatever a merchant, a supplier file or a shopper types comes back escaped, never as markup."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from web_helpers import Seeded, csrf, post

from connector.db.engine import Database
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.services.orders import record_order

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _escaped(text: str) -> bool:
    return XSS not in text and ESCAPED in text


def test_supplier_fields_come_back_escaped(client: FlaskClient) -> None:
    invalid = post(client, "/merchant/suppliers/new", {"name": XSS, "email": XSS, "webhook_url": XSS, "currency": XSS,
                                                       "address": XSS, "lead_time_days": XSS, "min_order_value": XSS})
    assert invalid.status_code == 400 and _escaped(invalid.text)
    saved = post(client, "/merchant/suppliers/new", {"name": XSS, "email": "a@example.com", "address": XSS,
                                                     "lead_time_days": "3"}, follow_redirects=True)
    assert saved.status_code == 200 and _escaped(saved.text)
    assert _escaped(client.get("/merchant/suppliers").text)


def test_search_filters_and_settings_come_back_escaped(client: FlaskClient, seeded: Seeded) -> None:
    assert _escaped(client.get("/merchant/worklist", query_string={"sku": XSS, "age": XSS}).text)
    assert _escaped(client.get("/merchant/products", query_string={"q": XSS}).text)
    settings = post(client, "/merchant/settings", {"handling_days": XSS, "tolerance_bands": XSS, "primary_color": XSS})
    assert settings.status_code == 400 and _escaped(settings.text)
    product = post(client, f"/merchant/products/{seeded.variant_ids['CHAIR']}", {"release_date": XSS,
                                                                                  "safety_stock": XSS})
    assert product.status_code == 400 and _escaped(product.text)


def test_po_reason_and_quantities_come_back_escaped(client: FlaskClient, seeded: Seeded) -> None:
    url = f"/merchant/purchase-orders/{seeded.po_id}"
    bad = post(client, f"{url}/expected-date", {"expected_date": XSS, "reason": XSS})
    assert bad.status_code == 400 and _escaped(bad.text)
    post(client, f"{url}/expected-date", {"expected_date": "2026-04-01", "reason": XSS})
    assert _escaped(client.get(url).text)


def test_template_sources_and_previews_come_back_escaped(client: FlaskClient) -> None:
    url = "/merchant/settings/templates/backorder_confirmation/en"
    preview = post(client, url, {"subject": XSS, "text": XSS, "html": "<p>{{ customer_name }}</p>" + XSS,
                                 "action": "preview"})
    assert preview.status_code == 200
    # Subject and text are shown escaped; the HTML part only inside a sandboxed srcdoc attribute.
    assert XSS not in preview.text and ESCAPED in preview.text and 'sandbox=""' in preview.text


def test_csv_import_errors_come_back_escaped(client: FlaskClient) -> None:
    header = ("supplier,email,delivery_method,webhook_url,lead_time_days,min_order_value,currency,max_wait_days,"
              "auto_send,dropship,dropship_min_units,dropship_min_value,sku,supplier_sku,unit_cost,pack_size,moq\n")
    row = f"{XSS},{XSS},email,,{XSS},1,USD,,no,no,0,0,{XSS},x,1,1,0\n"
    response = client.post("/merchant/suppliers/import", content_type="multipart/form-data", data={
        "csrf_token": csrf(client), "file": (io.BytesIO((header + row).encode()), "t.csv")})
    assert response.status_code == 400 and XSS not in response.text and "&lt;script&gt;" in response.text


def test_order_data_from_the_store_comes_back_escaped(app: Flask, client: FlaskClient, db: Database,
                                                      seeded: Seeded, now: datetime) -> None:
    t = now - timedelta(hours=1)
    record_order(db, seeded.shop_id, OrderRecord(
        external_id="x1", number=XSS, state=OrderState.OPEN, placed_at=t, updated_at=t, customer_name=XSS,
        lines=(OrderLineRecord(external_id="x1-1", quantity=1, sku=XSS, variant_external_id="v-x", title=XSS),),
    ), t)
    assert _escaped(client.get("/merchant/worklist").text)
    shopper = app.test_client().get("/shop/test-shop/backorders", query_string={"q": XSS})
    assert _escaped(shopper.text)
    assert _escaped(app.test_client().get("/shop/test-shop/backorders").text)


def test_login_email_comes_back_escaped(app: Flask, seeded: Seeded) -> None:
    c = app.test_client()
    c.get("/merchant/login")
    response = c.post("/merchant/login", data={"email": XSS, "password": "x", "csrf_token": csrf(c), "next": XSS})
    assert response.status_code == 400 and _escaped(response.text)
