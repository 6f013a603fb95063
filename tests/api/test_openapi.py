"""The OpenAPI document: valid 3.1, complete, and the same one the API validates against."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from connector.web import openapi


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_the_document_is_served_as_openapi_3_1_with_bearer_security(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"] == {"bearer": {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }}
    assert doc == openapi.openapi_document()


def test_every_api_route_is_documented_and_every_documented_path_exists(app: Flask) -> None:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, ops in openapi.PATHS.items() for method in ops}
    assert routes == documented


def test_every_operation_documents_its_errors_and_security() -> None:
    for path, ops in openapi.PATHS.items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert {"400", "401", "404", "429", "500"} <= codes, (path, method)
            if method == "post":
                assert {"403", "413", "422"} <= codes
                assert op["security"] == [{"bearer": ["write"]}]
            else:
                assert op["security"] == [{"bearer": ["read"]}]


def test_every_reference_resolves() -> None:
    doc = openapi.openapi_document()
    for node in _walk(doc):
        ref = node.get("$ref")
        if ref:
            target: Any = doc
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            assert isinstance(target, dict)


def test_the_validator_knows_every_keyword_the_request_schemas_use() -> None:
    request_schemas = [openapi.RECEIPT_REQUEST] + [p["schema"] for ps in openapi.PARAMETERS.values() for p in ps]
    for schema in request_schemas:
        for node in _walk(schema):
            if "type" in node or "minimum" in node:
                assert set(node) <= openapi.KNOWN_KEYWORDS | {"properties"}, node


def test_validator_reads_patterns_the_ecmascript_way() -> None:
    schema = {"type": "string", "pattern": openapi.TEXT_PATTERN}
    openapi.check(schema, "CHAIR-1 ünïcode", "sku")
    for bad in ("CHAIR\n", "CH\x00AIR", "\x7f", "\ud800"):
        try:
            openapi.check(schema, bad, "sku")
        except openapi.SchemaViolation as exc:
            assert exc.field == "sku"
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_the_document_is_valid_openapi_3_1_and_its_schemas_valid_json_schema() -> None:
    # Both ship with schemathesis (a test-only dependency): the OAS 3.1 meta-schema it validates
    # documents with, and jsonschema's 2020-12 meta-schema check.
    from jsonschema import Draft202012Validator
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    doc = openapi.openapi_document()
    errors = [f"{list(e.path)}: {e.message}" for e in Draft202012Validator(OPENAPI_31).iter_errors(doc)]
    assert errors == []
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_the_rate_limit_and_the_idempotency_key_are_documented() -> None:
    doc = openapi.openapi_document()
    assert "Retry-After" in doc["components"]["responses"]["E429"]["headers"]
    receipts = doc["paths"]["/api/v1/purchase-orders/{number}/receipts"]["post"]
    header = next(p for p in receipts["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert {"409", "422"} <= set(receipts["responses"])
    assert "Idempotent-Replayed" in receipts["responses"]["201"]["headers"]
