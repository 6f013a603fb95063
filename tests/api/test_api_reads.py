"""Reading backorders, purchase orders and suppliers: content, filters, pagination, scoping."""

from __future__ import annotations

import base64
import json
from typing import Any

from api_helpers import SeededShop
from flask.testing import FlaskClient


def _get(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.mimetype == "application/json"
    return response.json


def test_backorders_list_waiting_lines_oldest_first_with_etas_and_pos(client: FlaskClient,
                                                                      shop: SeededShop) -> None:
    page = _get(client, "/api/v1/backorders")
    assert page["next_cursor"] is None
    rows = [(r["order_number"], r["sku"], r["units"], r["pegged_units"], [p["number"] for p in r["purchase_orders"]])
            for r in page["data"]]
    assert rows == [
        ("#1001", "CHAIR", 3, 3, ["PO-00001"]),
        ("#1002", "CHAIR", 2, 2, ["PO-00001"]),
        ("#1002", "TABLE", 1, 1, ["PO-00001"]),
        ("#1003", "LAMP", 2, 2, ["PO-00002"]),
    ]
    first = page["data"][0]
    assert first["supplier"] == {"id": shop.supplier_ids["Acme"], "name": "Acme"}
    assert first["kind"] == "backorder" and first["waiting_since"].endswith("Z")
    assert first["promised_eta"] is not None and first["current_eta"] is not None


def test_backorders_filter_by_sku(client: FlaskClient, shop: SeededShop) -> None:
    for query, expected in (
        ("sku=CHAIR", [("#1001", "CHAIR"), ("#1002", "CHAIR")]),
        ("sku=chair", []),  # exact match: SKUs are case-sensitive identifiers
        ("sku=NOPE", []),
    ):
        rows = _get(client, f"/api/v1/backorders?{query}")["data"]
        assert [(r["order_number"], r["sku"]) for r in rows] == expected, query


def test_backorders_filter_by_supplier(client: FlaskClient, shop: SeededShop, other_shop: SeededShop) -> None:
    lamps = _get(client, f"/api/v1/backorders?supplier={shop.supplier_ids['Brass & Co']}")["data"]
    assert [r["sku"] for r in lamps] == ["LAMP"]
    # Another shop's supplier id filters to nothing rather than leaking its lines.
    assert _get(client, f"/api/v1/backorders?supplier={other_shop.supplier_ids['Acme']}")["data"] == []


def test_cursor_pages_walk_every_line_once_even_when_lines_change_between_pages(
    client: FlaskClient, shop: SeededShop
) -> None:
    first = _get(client, "/api/v1/backorders?limit=2")
    assert [r["order_number"] for r in first["data"]] == ["#1001", "#1002"] and first["next_cursor"]
    # Receiving the chairs removes the first page's lines; the cursor still continues correctly.
    received = client.post("/api/v1/purchase-orders/PO-00001/receipts", json={"lines": [{"sku": "CHAIR", "quantity": 5}]})
    assert received.status_code == 201
    second = _get(client, f"/api/v1/backorders?limit=2&cursor={first['next_cursor']}")
    assert [(r["order_number"], r["sku"]) for r in second["data"]] == [("#1002", "TABLE"), ("#1003", "LAMP")]
    assert second["next_cursor"] is None


def test_offset_pages_too(client: FlaskClient, shop: SeededShop) -> None:
    page = _get(client, "/api/v1/backorders?limit=1&offset=3")
    assert [r["sku"] for r in page["data"]] == ["LAMP"] and page["next_cursor"] is None
    assert _get(client, "/api/v1/backorders?offset=4")["data"] == []


BAD_PARAMETERS = [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"), ("limit=1.5", "limit"),
    ("limit=%20 5", "limit"), ("offset=-1", "offset"), ("supplier=0", "supplier"), ("supplier=x", "supplier"),
    ("cursor=!!", "cursor"), ("cursor=Zm9v", "cursor"), ("cursor=WyJ4Il0", "cursor"), ("sku=", "sku"),
    ("sku=a%00b", "sku"), ("limit=1&limit=2", "limit"), ("limt=5", "limt"),
]


def test_bad_parameters_are_400_naming_the_parameter(client: FlaskClient, shop: SeededShop) -> None:
    # One test, many cases: each case would otherwise pay for seeding two shops.
    for query, field in BAD_PARAMETERS:
        error = _get(client, f"/api/v1/backorders?{query}", status=400)["error"]
        assert (error["code"], error["field"]) == ("invalid", field), query
        assert error["message"]


def test_limit_200_is_allowed(client: FlaskClient, shop: SeededShop) -> None:
    assert len(_get(client, "/api/v1/backorders?limit=200")["data"]) == 4


def test_purchase_orders_newest_first_with_totals_and_filters(client: FlaskClient, shop: SeededShop) -> None:
    data = _get(client, "/api/v1/purchase-orders")["data"]
    assert [(p["number"], p["status"], p["lines"], p["ordered_units"], p["received_units"]) for p in data] == [
        ("PO-00002", "ready", 1, 2, 0),
        ("PO-00001", "sent", 2, 6, 0),
    ]
    assert [p["number"] for p in _get(client, "/api/v1/purchase-orders?status=sent")["data"]] == ["PO-00001"]
    by_supplier = _get(client, f"/api/v1/purchase-orders?supplier={shop.supplier_ids['Brass & Co']}")["data"]
    assert [p["number"] for p in by_supplier] == ["PO-00002"]
    assert _get(client, "/api/v1/purchase-orders?status=shipped", status=400)["error"]["field"] == "status"
    one = _get(client, "/api/v1/purchase-orders?limit=1")
    rest = _get(client, f"/api/v1/purchase-orders?limit=1&cursor={one['next_cursor']}")
    assert [p["number"] for p in one["data"] + rest["data"]] == ["PO-00002", "PO-00001"]
    assert rest["next_cursor"] is None


def test_one_purchase_order_shows_lines_and_the_orders_waiting_on_it(client: FlaskClient,
                                                                     shop: SeededShop) -> None:
    po = _get(client, "/api/v1/purchase-orders/PO-00001")
    assert po["status"] == "sent" and po["receivable"] is True
    assert po["supplier"] == {"id": shop.supplier_ids["Acme"], "name": "Acme"}
    assert [(line["sku"], line["ordered"], line["received"], line["pegged"]) for line in po["lines"]] == [
        ("CHAIR", 5, 0, 5), ("TABLE", 1, 0, 1),
    ]
    assert [(w["order_number"], w["sku"], w["units"]) for w in po["waiting_orders"]] == [
        ("#1001", "CHAIR", 3), ("#1002", "CHAIR", 2), ("#1002", "TABLE", 1),
    ]


def test_another_shops_purchase_order_is_404_like_a_missing_one(client: FlaskClient, shop: SeededShop,
                                                                other_shop: SeededShop, db: Any) -> None:
    from connector.db.models import PurchaseOrder
    from connector.db.uow import UnitOfWork

    # Give the other shop a number this shop does not have.
    with UnitOfWork(db, other_shop.shop_id) as uow:
        po = uow.find(PurchaseOrder, number="PO-00002")
        assert po is not None
        po.number = "PO-77777"
        uow.commit()
    theirs = client.get("/api/v1/purchase-orders/PO-77777")
    missing = client.get("/api/v1/purchase-orders/PO-99999")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json["error"]["code"] == missing.json["error"]["code"] == "not_found"
    assert theirs.json["error"]["field"] == "number"
    receipt = client.post("/api/v1/purchase-orders/PO-77777/receipts", json={"lines": [{"sku": "LAMP", "quantity": 1}]})
    assert receipt.status_code == 404
    # The same number in both shops always means this shop's purchase order.
    assert _get(client, "/api/v1/purchase-orders/PO-00001")["supplier"]["id"] == shop.supplier_ids["Acme"]


def test_backorders_never_show_another_shops_lines(client: FlaskClient, shop: SeededShop,
                                                   other_shop: SeededShop) -> None:
    titles = {r["title"] for r in _get(client, "/api/v1/backorders?limit=200")["data"]}
    assert titles and all(t.endswith("of test-shop") for t in titles)


def test_suppliers_by_name_with_open_purchase_orders(client: FlaskClient, shop: SeededShop,
                                                     other_shop: SeededShop) -> None:
    page = _get(client, "/api/v1/suppliers")
    assert [(s["id"], s["name"], s["open_purchase_orders"]) for s in page["data"]] == [
        (shop.supplier_ids["Acme"], "Acme", 1), (shop.supplier_ids["Brass & Co"], "Brass & Co", 1),
    ]
    first = _get(client, "/api/v1/suppliers?limit=1")
    second = _get(client, f"/api/v1/suppliers?limit=1&cursor={first['next_cursor']}")
    assert [s["name"] for s in first["data"] + second["data"]] == ["Acme", "Brass & Co"]


def _cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_forged_cursors_are_400_not_500(client: FlaskClient, shop: SeededShop) -> None:
    # Found by hand after schemathesis passed: its generated cursors are never valid base64 JSON.
    forged = {
        "backorders": [["2026-01-01T00:00:00+00:00", 2**70], ["0001-01-01T00:00:00+05:00", 1],
                       ["9999-12-31T23:59:59-05:00", 1], ["2026-01-01T00:00:00", 1], ["yesterday", 1],
                       ["2026-01-01T00:00:00+00:00", True], [1, 2, 3], {"a": 1}, "x", None],
        "purchase-orders": [[2**70], [0], [-1], ["1"], [], [1.5]],
        "suppliers": [["\ud800", 1], ["a\u0000", 1], ["a", 2**64], ["x" * 256, 1], [None, 1]],
    }
    for resource, cursors in forged.items():
        for value in cursors:
            error = _get(client, f"/api/v1/{resource}?cursor={_cursor_of(value)}", status=400)["error"]
            assert error["field"] == "cursor", (resource, value)
