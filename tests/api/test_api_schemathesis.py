"""Property tests: schemathesis generates requests from /api/openapi.json and checks every
answer against the document (status documented, body matching its schema, content type, no
500, invalid input refused, missing auth refused).

The default run is short (a few examples per operation and mode, on SQLite and PostgreSQL); the
``slow`` run generates many more. Each run uses a seeded shop and a valid read-write token; the
receipts operation changes the shop as it goes, which is fine: every answer must still conform.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from api_helpers import Clock, SeededShop, make_app
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from connector.config import Settings
from connector.db.engine import Database


@pytest.fixture
def app(db: Database, clock: Clock) -> Flask:
    # Thousands of requests in one (frozen) minute: the rate limit, tested on its own in
    # test_api_limits.py, would answer most of them 429 and hide everything else.
    return make_app(db, clock, Settings(secret_key="test-secret-key", demo=True, api_read_limit_per_minute=10**9,
                                        api_write_limit_per_minute=10**9))


def _config(token: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        # Given as the document's bearer scheme, so schemathesis knows the header is auth: its
        # negative cases drop or spoil it and expect 401 (``ignored_auth``).
        "auth": {"openapi": {"bearer": {"bearer": token}}, "auto-signup": False},
        # A well-formed request the shop cannot apply (a SKU not on the PO, a PO not yet sent)
        # is 422: schema-valid, and rightly refused.
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "422"]},
            # An oversized body (e.g. far too many lines) is refused before it is parsed: 413.
            "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "413", "422"]},
        },
    })


def _with_seeded_data(cases: st.SearchStrategy[Any], shop: SeededShop,
                      mode: GenerationMode) -> st.SearchStrategy[Any]:
    """Random PO numbers and SKUs almost never exist, so half the positive cases are pointed at
    the seeded purchase orders and SKUs: the happy paths (200, 201) get generated input too."""
    if mode is not GenerationMode.POSITIVE:
        return cases

    def seeded(drawn: tuple[Any, str, list[str]]) -> Any:
        case, number, skus = drawn
        if "number" in (case.path_parameters or {}):
            case.path_parameters["number"] = number
        if isinstance(case.body, dict) and isinstance(case.body.get("lines"), list):
            for line, sku in zip(case.body["lines"], skus, strict=False):
                line["sku"] = sku
        return case

    real = st.tuples(cases, st.sampled_from(sorted(shop.po_numbers.values())),
                     st.lists(st.sampled_from(["CHAIR", "TABLE", "LAMP"]), min_size=1, max_size=3, unique=True))
    return st.one_of(cases, real.map(seeded))


def _run_schemathesis(app: Flask, shop: SeededShop, max_examples: int) -> Counter[tuple[str, str, int]]:
    """Run every operation in both modes; return how often each (operation, mode, status) came back."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=_config(shop.token))
    seen: Counter[tuple[str, str, int]] = Counter()
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run_operation(result.ok(), mode, shop, max_examples, seen)
    return seen


def _run_operation(operation: Any, mode: GenerationMode, shop: SeededShop, max_examples: int,
                   seen: Counter[tuple[str, str, int]]) -> None:
    @given(case=_with_seeded_data(operation.as_strategy(generation_mode=mode), shop, mode))
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        # A cursor is opaque: a schema-valid string the API never handed out is refused with
        # 400 (field "cursor"), which no schema can express.
        excluded = [positive_data_acceptance] if "cursor" in (case.query or {}) else []
        response = case.call_and_validate(excluded_checks=excluded)
        seen[(operation.label, mode.value, response.status_code)] += 1
        if excluded and mode is GenerationMode.POSITIVE and response.status_code == 400:
            assert response.json()["error"]["field"] == "cursor"

    check()


def _statuses(seen: Counter[tuple[str, str, int]], label: str, mode: str) -> set[int]:
    return {status for (op, m, status) in seen if op == label and m == mode}


def test_generated_requests_get_documented_answers(app: Flask, shop: SeededShop, other_shop: SeededShop) -> None:
    seen = _run_schemathesis(app, shop, max_examples=15)
    # The token really was used: every read operation answered 200 to some generated request,
    # and the write operation got past authentication to validation (400) at least.
    for label in ("GET /api/v1/backorders", "GET /api/v1/purchase-orders", "GET /api/v1/suppliers"):
        assert 200 in _statuses(seen, label, "positive"), (label, seen)
    assert _statuses(seen, "POST /api/v1/purchase-orders/{number}/receipts", "negative") - {401}
    assert not any(status >= 500 for (_, _, status) in seen)


@pytest.mark.slow
def test_many_generated_requests_get_documented_answers(app: Flask, shop: SeededShop,
                                                        other_shop: SeededShop) -> None:
    seen = _run_schemathesis(app, shop, max_examples=300)
    assert not any(status >= 500 for (_, _, status) in seen)
