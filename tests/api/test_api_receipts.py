"""Receiving goods through the API changes the purchase order and the waiting lines, oldest first."""

from __future__ import annotations

import json
from typing import Any

from api_helpers import SeededShop
from flask.testing import FlaskClient

URL = "/api/v1/purchase-orders/PO-00001/receipts"


def _receive(client: FlaskClient, lines: list[dict[str, Any]], url: str = URL) -> Any:
    return client.post(url, json={"lines": lines})


def _waiting(client: FlaskClient) -> list[tuple[str, str, int]]:
    return [(r["order_number"], r["sku"], r["units"]) for r in client.get("/api/v1/backorders").json["data"]]


def test_a_partial_receipt_fills_the_oldest_order_first(client: FlaskClient, shop: SeededShop) -> None:
    response = _receive(client, [{"sku": "CHAIR", "quantity": 4}])
    assert response.status_code == 201
    assert response.json["received"] == [
        {"sku": "CHAIR", "quantity": 4, "to_pegged_lines": 4, "to_other_lines": 0, "to_stock": 0},
    ]
    po = response.json["purchase_order"]
    assert po["status"] == "partially_received"
    assert [(line["sku"], line["received"], line["pegged"]) for line in po["lines"]] == [("CHAIR", 4, 1), ("TABLE", 0, 1)]
    # #1001 (3 chairs, oldest) is complete; #1002 still waits for 1 chair and its table.
    assert _waiting(client) == [("#1002", "CHAIR", 1), ("#1002", "TABLE", 1), ("#1003", "LAMP", 2)]
    assert client.get("/api/v1/purchase-orders/PO-00001").json == po


def test_receiving_everything_closes_the_po_and_its_backorders(client: FlaskClient, shop: SeededShop) -> None:
    response = _receive(client, [{"sku": "CHAIR", "quantity": 5}, {"sku": "TABLE", "quantity": 1}])
    assert response.status_code == 201 and response.json["purchase_order"]["status"] == "received"
    assert _waiting(client) == [("#1003", "LAMP", 2)]
    listed = client.get("/api/v1/purchase-orders?status=received").json["data"]
    assert [(p["number"], p["received_units"]) for p in listed] == [("PO-00001", 6)]


def test_over_receipt_becomes_stock(client: FlaskClient, shop: SeededShop) -> None:
    response = _receive(client, [{"sku": "TABLE", "quantity": 3}])
    assert response.status_code == 201
    assert response.json["received"][0] == {"sku": "TABLE", "quantity": 3, "to_pegged_lines": 1,
                                            "to_other_lines": 0, "to_stock": 2}


def test_a_quantity_written_as_3_point_0_is_an_integer(client: FlaskClient, shop: SeededShop) -> None:
    assert _receive(client, [{"sku": "CHAIR", "quantity": 3.0}]).status_code == 201


REFUSED = [
    ([{"sku": "SOFA", "quantity": 1}], 422, "unknown_sku", "lines[0].sku"),
    ([{"sku": "CHAIR", "quantity": 1}, {"sku": "LAMP", "quantity": 1}], 422, "unknown_sku", "lines[1].sku"),
    ([{"sku": "CHAIR", "quantity": 1}, {"sku": "CHAIR", "quantity": 2}], 422, "duplicate_sku", "lines[1].sku"),
    ([], 400, "invalid", "lines"),
    ([{"sku": "CHAIR", "quantity": 0}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "CHAIR", "quantity": -2}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "CHAIR", "quantity": 1.5}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "CHAIR", "quantity": "2"}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "CHAIR", "quantity": True}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "CHAIR", "quantity": 100_001}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "CHAIR"}], 400, "invalid", "lines[0].quantity"),
    ([{"sku": "", "quantity": 1}], 400, "invalid", "lines[0].sku"),
    ([{"sku": "CH\u0000AIR", "quantity": 1}], 400, "invalid", "lines[0].sku"),
    ([{"sku": "CHAIR", "quantity": 1, "note": "x"}], 400, "invalid", "lines[0].note"),
    (["CHAIR"], 400, "invalid", "lines[0]"),
]


def test_refused_receipts_change_nothing_and_name_the_field(client: FlaskClient, shop: SeededShop) -> None:
    before = client.get("/api/v1/purchase-orders/PO-00001").json
    for lines, status, code, field in REFUSED:
        response = _receive(client, lines)
        assert response.status_code == status, (lines, response.text)
        assert (response.json["error"]["code"], response.json["error"]["field"]) == (code, field), lines
    assert client.get("/api/v1/purchase-orders/PO-00001").json == before


def test_a_po_that_was_not_sent_cannot_be_received(client: FlaskClient, shop: SeededShop) -> None:
    response = _receive(client, [{"sku": "LAMP", "quantity": 2}], url="/api/v1/purchase-orders/PO-00002/receipts")
    assert response.status_code == 422
    assert response.json["error"]["field"] == "status" and "send it before receiving" in response.json["error"]["message"]


def test_receipts_for_an_unknown_po_are_404(client: FlaskClient, shop: SeededShop) -> None:
    response = _receive(client, [{"sku": "CHAIR", "quantity": 1}], url="/api/v1/purchase-orders/PO-404/receipts")
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"


def test_malformed_json_is_400(client: FlaskClient, shop: SeededShop) -> None:
    for body, content_type, message in (
        (b"", "application/json", "the body is empty; send a JSON object"),
        (b"{\"lines\": [", "application/json", "the body is not valid JSON"),
        (b"lines=CHAIR", "application/x-www-form-urlencoded", "the body is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "the body is not valid JSON"),
        (b"\xff\xfe\x00", "application/json", "the body is not valid JSON"),
    ):
        response = client.post(URL, data=body, content_type=content_type)
        assert response.status_code == 400, body[:20]
        assert response.json == {"error": {"code": "malformed_json", "message": message, "field": "body"}}


def test_json_that_is_not_an_object_is_400(client: FlaskClient, shop: SeededShop) -> None:
    for body in (b"null", b"[]", b"\"lines\"", b"42"):
        response = client.post(URL, data=body, content_type="application/json")
        assert response.status_code == 400 and response.json["error"]["field"] == "body", body


def test_a_body_over_1_mib_is_413_before_it_is_parsed(client: FlaskClient, shop: SeededShop) -> None:
    response = client.post(URL, data=b" " * (1024 * 1024 + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large" and response.json["error"]["field"] == "body"


def test_the_largest_valid_receipt_fits_under_the_body_limit(client: FlaskClient, shop: SeededShop) -> None:
    # 200 lines with 255-character SKUs, each character an astral one escaped as \ud83d\ude0d.
    lines = [{"sku": "\U0001F60D" * 252 + f"{i:03d}", "quantity": 100_000} for i in range(200)]
    body = json.dumps({"lines": lines}).encode()
    assert len(body) < 1024 * 1024
    response = client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 422  # parsed and validated; the SKUs are simply not on the PO
    assert response.json["error"]["code"] == "unknown_sku"
