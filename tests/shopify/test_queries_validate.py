"""Every document in adapters/shopify/queries.py is valid against Shopify's published schema."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from graphql import build_client_schema, parse, validate

from adapters.shopify import queries

SCHEMA_PATH = Path(__file__).parents[2].parent / "shared" / "shopify" / "admin_schema_2025-01.json.gz"

DOCUMENTS = {
    name: value
    for name, value in vars(queries).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}


@pytest.fixture(scope="session")
def admin_schema():
    if not SCHEMA_PATH.exists():
        pytest.skip(
            f"Shopify admin schema not found at {SCHEMA_PATH} (../shared/shopify is not beside the project)"
        )
    with gzip.open(SCHEMA_PATH) as fh:
        return build_client_schema(json.load(fh)["data"], assume_valid=True)


def test_queries_module_has_documents():
    assert {"ORDERS_PAGE", "VARIANTS_PAGE", "METAFIELDS_SET", "BULK_ORDERS_QUERY"} <= set(DOCUMENTS)


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_against_admin_schema(admin_schema, name):
    if name in queries.NEWER_THAN_2025_01:
        pytest.skip(f"{name} uses a field added after 2025-01, the reference schema's version")
    errors = validate(admin_schema, parse(DOCUMENTS[name]))
    assert errors == [], f"{name}: {[e.message for e in errors]}"


def test_filtered_bulk_query_is_valid(admin_schema):
    document = queries.bulk_orders_query("updated_at:>'2026-01-01T00:00:00Z'")
    assert validate(admin_schema, parse(document)) == []


def test_inner_page_sizes_match_the_documents():
    assert f"lineItems(first: {queries.LINE_ITEMS_PER_ORDER})" in queries.ORDERS_PAGE
    assert f"inventoryLevels(first: {queries.LEVELS_PER_ITEM})" in queries.VARIANT_LEVELS_PAGE
