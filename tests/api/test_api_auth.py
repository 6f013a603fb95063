"""Who may call the API: a bearer token of the shop, not revoked; read tokens only read."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from api_helpers import Clock, SeededShop, make_app
from flask import Flask

from connector.db.engine import Database
from connector.services.accounts import create_api_token, list_api_tokens, revoke_api_token
from connector.services.api_queries import READ, ApiPrincipal, api_principal

RECEIPT = {"lines": [{"sku": "CHAIR", "quantity": 1}]}


BAD_HEADERS = [
    None, "", "Bearer", "Bearer ", "Basic Ym86c2VjcmV0", "bo_abc", "Bearer bo_not-a-real-token",
    "Bearer not-even-the-prefix", "Bearer " + "bo_" + "x" * 200,
]


def test_requests_without_a_valid_token_are_refused_with_401(app: Flask, shop: SeededShop) -> None:
    for header in BAD_HEADERS:
        headers = {"Authorization": header} if header is not None else {}
        for method, path in (("GET", "/api/v1/backorders"), ("GET", "/api/v1/suppliers"),
                             ("POST", "/api/v1/purchase-orders/PO-00001/receipts")):
            response = app.test_client().open(path, method=method, headers=headers, json=RECEIPT)
            assert response.status_code == 401, (header, method, path)
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
            error = response.json["error"]
            assert error["code"] == "unauthorized" and error["field"] is None and error["message"]


def test_a_valid_token_reads_and_is_marked_as_used(app: Flask, db: Database, shop: SeededShop,
                                                   clock: Clock) -> None:
    clock.now += timedelta(hours=2)
    response = app.test_client().get("/api/v1/backorders", headers=shop.auth)
    assert response.status_code == 200
    assert list_api_tokens(db, shop.shop_id)[0]["last_used_at"] == clock.now


def test_the_bearer_scheme_is_case_insensitive(app: Flask, shop: SeededShop) -> None:
    response = app.test_client().get("/api/v1/suppliers", headers={"Authorization": f"bearer {shop.token}"})
    assert response.status_code == 200


def test_a_revoked_token_is_refused_from_the_next_request_on(app: Flask, db: Database, shop: SeededShop,
                                                             now: datetime) -> None:
    token_id, token = create_api_token(db, shop.shop_id, "to revoke", now)
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()
    assert client.get("/api/v1/backorders", headers=headers).status_code == 200
    revoke_api_token(db, shop.shop_id, token_id, now)
    refused = client.get("/api/v1/backorders", headers=headers)
    assert refused.status_code == 401 and refused.json["error"]["code"] == "unauthorized"
    # The shop's other token keeps working.
    assert client.get("/api/v1/backorders", headers=shop.auth).status_code == 200


def test_a_token_only_opens_its_own_shop(app: Flask, shop: SeededShop, other_shop: SeededShop) -> None:
    mine = app.test_client().get("/api/v1/purchase-orders", headers=shop.auth).json["data"]
    theirs = app.test_client().get("/api/v1/purchase-orders", headers=other_shop.auth).json["data"]
    assert {p["supplier"]["id"] for p in mine} == set(shop.supplier_ids.values())
    assert {p["supplier"]["id"] for p in theirs} == set(other_shop.supplier_ids.values())


def test_a_read_write_token_may_read_and_write(db: Database, shop: SeededShop, now: datetime) -> None:
    principal = api_principal(db, shop.token, now)
    assert principal is not None and principal.shop_id == shop.shop_id
    assert principal.scopes == {"read", "write"}
    assert api_principal(db, shop.token + "x", now) is None


def test_a_token_created_with_read_scope_reads_but_cannot_record_a_receipt(
    app: Flask, db: Database, shop: SeededShop, now: datetime
) -> None:
    from connector.services.accounts import create_api_token

    _, token = create_api_token(db, shop.shop_id, "reporting", now, scope="read")
    principal = api_principal(db, token, now)
    assert principal is not None and principal.scopes == {"read"}
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/purchase-orders/PO-00001", headers=auth).status_code == 200
    assert client.post("/api/v1/purchase-orders/PO-00001/receipts", headers=auth, json=RECEIPT).status_code == 403


@pytest.fixture
def read_only_app(db: Database, clock: Clock, shop: SeededShop) -> Flask:
    """The API with an authenticator that grants only ``read`` (what a read-scoped token gets)."""

    def read_only(database: Database, token: str, at: datetime) -> ApiPrincipal | None:
        principal = api_principal(database, token, at)
        return ApiPrincipal(principal.shop_id, frozenset({READ})) if principal else None

    return make_app(db, clock, api_authenticator=read_only)


def test_a_read_token_reads_but_gets_403_on_a_write(read_only_app: Flask, db: Database,
                                                    shop: SeededShop) -> None:
    client = read_only_app.test_client()
    assert client.get("/api/v1/purchase-orders/PO-00001", headers=shop.auth).status_code == 200
    refused = client.post("/api/v1/purchase-orders/PO-00001/receipts", headers=shop.auth, json=RECEIPT)
    assert refused.status_code == 403
    assert refused.json == {"error": {"code": "forbidden", "field": None,
                                      "message": "this token may only read; create a read-write token to write"}}
    after = client.get("/api/v1/purchase-orders/PO-00001", headers=shop.auth).json
    assert [line["received"] for line in after["lines"]] == [0, 0]


def test_the_openapi_document_needs_no_token(app: Flask) -> None:
    response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200 and response.json["openapi"] == "3.1.0"
