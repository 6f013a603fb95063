"""Every error under /api has one shape, including routing errors and our own faults."""

from __future__ import annotations

from datetime import datetime

from api_helpers import Clock, SeededShop, make_app
from flask import Flask
from flask.testing import FlaskClient

from connector.db.engine import Database
from connector.services.api_queries import ApiPrincipal


def _is_error(body: object, code: str) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str)


def test_unknown_paths_under_api_are_json_404(client: FlaskClient) -> None:
    for path in ("/api", "/api/", "/api/v1", "/api/v2/backorders", "/api/v1/orders",
                 "/api/v1/purchase-orders/PO-00001/lines", "/api/v1/purchase-orders/a%2Fb"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "application/json", path
        _is_error(response.json, "not_found")


def test_unknown_paths_elsewhere_keep_flasks_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_wrong_methods_are_json_405_with_allow(client: FlaskClient) -> None:
    for method, path, allow in (
        ("DELETE", "/api/v1/backorders", {"GET", "HEAD", "OPTIONS"}),
        ("POST", "/api/v1/suppliers", {"GET", "HEAD", "OPTIONS"}),
        ("PUT", "/api/v1/purchase-orders/PO-00001", {"GET", "HEAD", "OPTIONS"}),
        ("GET", "/api/v1/purchase-orders/PO-00001/receipts", {"POST", "OPTIONS"}),
    ):
        response = client.open(path, method=method)
        assert response.status_code == 405, (method, path)
        _is_error(response.json, "method_not_allowed")
        assert set(response.headers["Allow"].split(", ")) == allow


def test_our_own_faults_are_json_500_without_detail(db: Database, clock: Clock, shop: SeededShop) -> None:
    def broken(database: Database, token: str, at: datetime) -> ApiPrincipal | None:
        raise RuntimeError("database password is hunter2")

    app: Flask = make_app(db, clock, api_authenticator=broken)
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    response = app.test_client().get("/api/v1/backorders", headers=shop.auth)
    assert response.status_code == 500
    _is_error(response.json, "internal")
    assert "hunter2" not in response.text


def test_errors_carry_no_stack_traces_or_sql(client: FlaskClient, shop: SeededShop) -> None:
    response = client.get("/api/v1/backorders?sku=%27%3B%20DROP%20TABLE%20order_lines%3B--")
    assert response.status_code == 200 and response.json["data"] == []


def test_answers_are_never_cached_or_sniffed(client: FlaskClient) -> None:
    for path in ("/api/v1/backorders", "/api/v1/purchase-orders/PO-404", "/api/v1/backorders?limit=0"):
        response = client.get(path)
        assert response.headers["Cache-Control"] == "no-store", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
