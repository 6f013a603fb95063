"""Suppliers, the supplier-terms CSV, product settings, shop settings and e-mail templates."""

from __future__ import annotations

import io

from flask.testing import FlaskClient
from sqlalchemy import select
from web_helpers import Seeded, post

from connector.db.engine import Database
from connector.db.models import Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.messages import default_source

HEADER = ("supplier,email,delivery_method,webhook_url,lead_time_days,min_order_value,currency,max_wait_days,"
          "auto_send,dropship,dropship_min_units,dropship_min_value,sku,supplier_sku,unit_cost,pack_size,moq\n")
GOOD = "Initech,orders@initech.example,email,,7,100.00,USD,,no,no,0,0,CHAIR,IN-1,12.50,6,12\n"
SUPPLIER = {"name": "Globex", "email": "po@globex.example", "delivery_method": "email", "currency": "eur",
            "lead_time_days": "21", "min_order_value": "250.50", "max_wait_days": "", "dropship_min_units": "",
            "dropship_min_value": "", "dropship_max_wait_days": ""}


def _suppliers(db: Database, shop_id: int) -> dict[str, Supplier]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        suppliers = uow.all(select(Supplier))
        uow.session.expunge_all()  # keep the loaded values after the unit of work rolls back
        return {s.name: s for s in suppliers}


def test_supplier_create_edit_delete(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    created = post(client, "/merchant/suppliers/new", SUPPLIER)
    assert created.status_code == 302
    globex = _suppliers(db, seeded.shop_id)["Globex"]
    assert (globex.currency, globex.lead_time_days, globex.min_order_value_cents) == ("EUR", 21, 25050)
    assert client.get(f"/merchant/suppliers/{globex.id}").text.count('value="250.50"') == 1
    edited = post(client, f"/merchant/suppliers/{globex.id}", {**SUPPLIER, "name": "Globex Ltd", "auto_send": "1"})
    assert edited.status_code == 302
    assert _suppliers(db, seeded.shop_id)["Globex Ltd"].auto_send is True
    assert post(client, f"/merchant/suppliers/{globex.id}/delete").status_code == 302
    assert "Globex Ltd" not in _suppliers(db, seeded.shop_id)


def test_supplier_form_shows_every_error_next_to_its_field(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    bad = {"name": "", "email": "not-an-email", "delivery_method": "fax", "currency": "EURO",
           "lead_time_days": "-3", "min_order_value": "12.345", "max_wait_days": "soon",
           "webhook_url": "ftp://x", "dropship_min_units": "-1"}
    response = post(client, "/merchant/suppliers/new", bad)
    assert response.status_code == 400
    for name in ("name", "email", "delivery_method", "currency", "lead_time_days", "min_order_value",
                 "max_wait_days", "webhook_url", "dropship_min_units"):
        assert f'id="{name}-error"' in response.text, name
    assert len(_suppliers(db, seeded.shop_id)) == 1


def test_supplier_names_are_unique_and_suppliers_with_pos_stay(client: FlaskClient, seeded: Seeded) -> None:
    clash = post(client, "/merchant/suppliers/new", {**SUPPLIER, "name": "ACME test-shop"})
    assert clash.status_code == 400 and 'id="name-error"' in clash.text
    refused = post(client, f"/merchant/suppliers/{seeded.supplier_id}/delete", follow_redirects=True)
    assert "has purchase orders and cannot be deleted" in refused.text


def test_csv_import_with_a_bad_row_shows_every_error_and_saves_nothing(client: FlaskClient, db: Database,
                                                                         seeded: Seeded) -> None:
    text = HEADER + GOOD + "Initech,bad-email,email,,x,100.00,USD,,no,no,0,0,NOPE,IN-2,1.00,1,0\n"
    response = client.post("/merchant/suppliers/import", data={
        "csrf_token": _token(client), "file": (io.BytesIO(text.encode()), "terms.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    for fragment in ("row 3, column email", "row 3, column lead_time_days", "row 3, column sku"):
        assert fragment in response.text
    assert "Initech" not in _suppliers(db, seeded.shop_id)


def test_csv_import_saves_suppliers_items_and_mapping_then_exports(client: FlaskClient, db: Database,
                                                                     seeded: Seeded) -> None:
    response = client.post("/merchant/suppliers/import", data={
        "csrf_token": _token(client), "file": (io.BytesIO((HEADER + GOOD).encode()), "terms.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 302
    initech = _suppliers(db, seeded.shop_id)["Initech"]
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        item = uow.find(SupplierItem, supplier_id=initech.id, sku="CHAIR")
        assert item is not None and (item.pack_size, item.moq, item.unit_cost_cents) == (6, 12, 1250)
        assert uow.get(Variant, seeded.variant_ids["CHAIR"]).supplier_id == initech.id
    exported = client.get("/merchant/suppliers/export.csv")
    assert exported.mimetype == "text/csv"
    assert GOOD.strip().replace(",0,0,CHAIR", ",0,0.00,CHAIR") in exported.text.replace("\r\n", "\n")


def test_csv_import_refuses_no_file_and_non_utf8(client: FlaskClient) -> None:
    none = client.post("/merchant/suppliers/import", data={"csrf_token": _token(client)})
    assert none.status_code == 400 and "choose a CSV file" in none.text
    latin = client.post("/merchant/suppliers/import", data={
        "csrf_token": _token(client), "file": (io.BytesIO("caf\xe9".encode("latin-1")), "t.csv")},
        content_type="multipart/form-data")
    assert latin.status_code == 400 and "not UTF-8" in latin.text


def _token(client: FlaskClient) -> str:
    from web_helpers import csrf

    return csrf(client)


def test_product_settings_are_validated_then_saved(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    url = f"/merchant/products/{seeded.variant_ids['TABLE']}"
    bad = post(client, url, {"safety_stock": "-2", "release_date": "soon"})
    assert bad.status_code == 400
    assert 'id="safety_stock-error"' in bad.text and 'id="release_date-error"' in bad.text
    ok = post(client, url, {"safety_stock": "4", "release_date": "2026-06-01", "dropship": "1", "popular": "1",
                            "supplier_id": ""})
    assert ok.status_code == 302
    with UnitOfWork(db, seeded.shop_id, readonly=True) as uow:
        v = uow.get(Variant, seeded.variant_ids["TABLE"])
        assert (v.safety_stock, v.release_date.isoformat() if v.release_date else None, v.dropship, v.popular,
                v.backorders_allowed, v.supplier_id) == (4, "2026-06-01", True, True, False, None)
    assert "TABLE" in client.get("/merchant/products?q=tab").text
    assert "CHAIR" not in client.get("/merchant/products?q=tab").text


def _settings(db: Database, shop_id: int) -> dict[str, object]:
    with UnitOfWork(db, readonly=True) as uow:
        shop = uow.session.get(Shop, shop_id)
        assert shop is not None
        return dict(shop.settings)


SETTINGS = {"handling_days": "2", "tolerance_days": "1", "default_lead_time_days": "20", "retention_days": "30",
            "tolerance_bands": "50.00 1\n* 3", "email_backorder_confirmation": "1", "primary_color": "#aa3300",
            "background_color": "#ffffff", "text_color": "#111111"}


def test_settings_are_validated_then_saved(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    bad = post(client, "/merchant/settings", {**SETTINGS, "handling_days": "-1", "tolerance_bands": "lots",
                                              "primary_color": "red", "retention_days": "0"})
    assert bad.status_code == 400
    for name in ("handling_days", "tolerance_bands", "primary_color", "retention_days"):
        assert f'id="{name}-error"' in bad.text, name
    assert post(client, "/merchant/settings", SETTINGS).status_code == 302
    saved = _settings(db, seeded.shop_id)
    assert saved["handling_days"] == 2 and saved["default_lead_time_days"] == 20 and saved["retention_days"] == 30
    assert saved["tolerance_bands"] == [{"max_unit_value_cents": 5000, "days": 1},
                                        {"max_unit_value_cents": None, "days": 3}]
    emails = saved["emails"]
    assert isinstance(emails, dict) and emails["backorder_confirmation"] is True and emails["delay_notice"] is False
    page = client.get("/merchant/settings").text
    assert "50.00 1\n* 3" in page and 'value="#aa3300"' in page


def test_template_preview_save_and_reset(client: FlaskClient, db: Database, seeded: Seeded) -> None:
    url = "/merchant/settings/templates/delay_notice/fr"
    parts = {part: default_source("delay_notice", "fr", part) for part in ("subject", "text", "html")}
    broken = post(client, url, {**parts, "subject": "{{ order_number ", "action": "preview"})
    assert broken.status_code == 400 and 'id="subject-error"' in broken.text and "syntax error" in broken.text
    preview = post(client, url, {**parts, "subject": "Retard {{ order_number }}", "action": "preview"})
    assert preview.status_code == 200 and '<span id="preview-subject">Retard #1042</span>' in preview.text
    assert "templates" not in _settings(db, seeded.shop_id)
    assert post(client, url, {**parts, "subject": "Retard {{ order_number }}", "action": "save"}).status_code == 302
    assert _settings(db, seeded.shop_id)["templates"] == {"delay_notice": {"fr": {"subject": "Retard {{ order_number }}"}}}
    assert "edited" in client.get("/merchant/settings/templates").text
    assert post(client, url, {**parts, "action": "reset"}).status_code == 302
    assert _settings(db, seeded.shop_id)["templates"] == {}
    assert client.get("/merchant/settings/templates/nope/fr").status_code == 404
