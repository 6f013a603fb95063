"""A signed-in shop sees and changes only its own rows: another shop's ids are 404."""

from __future__ import annotations

from datetime import datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from web_helpers import Seeded, post, seed_shop

from connector.db.engine import Database
from connector.db.models import OutboxMessage, PurchaseOrder, Supplier
from connector.db.uow import UnitOfWork


@pytest.fixture
def other(db: Database, now: datetime) -> Seeded:
    other = seed_shop(db, now, domain="other-shop")
    with UnitOfWork(db, other.shop_id) as uow:
        uow.add(OutboxMessage(kind="delayed", target="customer", subject="9001", payload={}, idempotency_key="k1",
                              state="dead", attempts=8, next_attempt_at=now, created_at=now))
        uow.commit()
    return other


def test_another_shops_ids_are_not_found(client: FlaskClient, other: Seeded, db: Database) -> None:
    with UnitOfWork(db, other.shop_id, readonly=True) as uow:
        dead_id = uow.all(select(OutboxMessage).where(OutboxMessage.state == "dead"))[0].id
        line_id = uow.get(PurchaseOrder, other.po_id).lines[0].id
    gets = [f"/merchant/purchase-orders/{other.po_id}", f"/merchant/suppliers/{other.supplier_id}"]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = {
        f"/merchant/purchase-orders/{other.po_id}/send": {},
        f"/merchant/purchase-orders/{other.po_id}/cancel": {},
        f"/merchant/purchase-orders/{other.po_id}/receive": {"all": "1"},
        f"/merchant/purchase-orders/{other.po_id}/quantities": {f"qty_{line_id}": "1"},
        f"/merchant/purchase-orders/{other.po_id}/expected-date": {"expected_date": "2026-05-01"},
        f"/merchant/suppliers/{other.supplier_id}": {"name": "Stolen", "email": "x@example.com",
                                                     "lead_time_days": "1"},
        f"/merchant/suppliers/{other.supplier_id}/delete": {},
        f"/merchant/products/{other.variant_ids['CHAIR']}": {"safety_stock": "3"},
        f"/merchant/outbox/{dead_id}/retry": {},
    }
    for url, data in posts.items():
        assert post(client, url, data).status_code == 404, url
    with UnitOfWork(db, other.shop_id, readonly=True) as uow:
        po = uow.get(PurchaseOrder, other.po_id)
        assert po.status in ("draft", "ready") and po.expected_date.isoformat() != "2026-05-01"
        assert uow.get(Supplier, other.supplier_id).name == "Acme other-shop"
        assert uow.get(OutboxMessage, dead_id).state == "dead"


def test_lists_show_only_the_signed_in_shop(client: FlaskClient, other: Seeded) -> None:
    assert "Acme other-shop" not in client.get("/merchant/suppliers").text
    assert "Acme test-shop" in client.get("/merchant/suppliers").text
    worklist = client.get("/merchant/worklist").text
    assert "3 line(s) waiting" in worklist
    dashboard = client.get("/merchant/").text
    assert '<b id="open-units">6</b>' in dashboard and "Acme other-shop" not in dashboard
    assert client.get("/merchant/purchase-orders").text.count("PO-00001") == 1
    assert len(client.get("/shop/test-shop/backorders.json").json["items"]) == 3
    assert "Acme other-shop" not in client.get("/merchant/suppliers/export.csv").text
    assert client.get("/merchant/outbox/dead").text.count("Retry</button>") == 0
    assert client.get(f"/merchant/worklist?supplier={other.supplier_id}").status_code == 400
    products = client.get("/merchant/products").text
    assert products.count('class="card variant"') == 3


def test_a_variant_cannot_be_mapped_to_another_shops_supplier(client: FlaskClient, seeded: Seeded,
                                                                other: Seeded) -> None:
    response = post(client, f"/merchant/products/{seeded.variant_ids['CHAIR']}",
                    {"safety_stock": "0", "supplier_id": str(other.supplier_id)})
    assert response.status_code == 400 and 'id="supplier_id-error"' in response.text
