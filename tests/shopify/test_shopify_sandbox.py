"""The sandbox itself: its schema is a faithful subset of Shopify's, and its payloads are complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from graphql import GraphQLInputObjectType, GraphQLObjectType, OperationDefinitionNode, parse

from adapters.shopify import queries
from adapters.shopify.storefront import ShopifyStorefront
from connector.errors import AuthError
from sandbox.shopify.cost import requested_cost
from sandbox.shopify.schemas import real_schema, sandbox_schema
from sandbox.shopify.server import SandboxShopify

SHARED = Path(__file__).parents[2].parent / "shared" / "shopify"

# fields of newer API versions the sandbox also accepts (see queries.NEWER_THAN_2025_01)
NEWER_FIELDS = {"WebhookSubscriptionInput.uri"}


@pytest.fixture(scope="module")
def shopify_schema():
    schema = real_schema()
    if schema is None:
        pytest.skip(
            f"Shopify admin schema not found in {SHARED} (../shared/shopify is not beside the project)"
        )
    return schema


def test_every_sandbox_type_and_field_exists_in_shopify_with_the_same_type(shopify_schema):
    mine = sandbox_schema()
    real_roots = {"QueryRoot": shopify_schema.query_type, "Mutation": shopify_schema.mutation_type}
    checked = 0
    for name, t in mine.type_map.items():
        if name.startswith("__") or name in ("String", "Int", "Float", "Boolean", "ID"):
            continue
        real = real_roots.get(name) or shopify_schema.get_type(name)
        assert real is not None, f"type {name} is not in Shopify's schema"
        assert type(real) is type(t), f"{name} is a {type(real).__name__} in Shopify"
        if isinstance(t, GraphQLObjectType | GraphQLInputObjectType) or hasattr(t, "fields"):
            for fname, field in t.fields.items():
                if f"{name}.{fname}" in NEWER_FIELDS:
                    continue
                assert fname in real.fields, f"{name}.{fname} is not in Shopify's schema"
                assert str(field.type) == str(real.fields[fname].type), f"{name}.{fname}"
                for aname, arg in getattr(field, "args", {}).items():
                    assert aname in real.fields[fname].args, f"{name}.{fname}({aname})"
                    assert str(arg.type) == str(real.fields[fname].args[aname].type), (
                        f"{name}.{fname}({aname})"
                    )
                checked += 1
        elif hasattr(t, "values"):
            assert set(t.values) <= set(real.values), f"enum {name} has values Shopify lacks"
    assert checked > 100


def _cost(document: str, **variables) -> int:
    doc = parse(document)
    (op,) = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    return requested_cost(sandbox_schema(), op, {}, variables)


def test_shopifys_worked_example_costs_652_points():
    assert _cost("{ orders(first: 50) { nodes { id lineItems(first: 10) { nodes { id } } } } }") == 652


@pytest.mark.parametrize(
    ("document", "size", "extra"),
    [
        (queries.ORDERS_PAGE, queries.ORDERS_PAGE_SIZE, {}),
        (queries.ORDER_LINE_ITEMS_PAGE, queries.ORDER_LINE_ITEMS_PAGE_SIZE, {"id": "gid://shopify/Order/1"}),
        (queries.VARIANTS_PAGE, queries.VARIANTS_PAGE_SIZE, {}),
        (queries.PRODUCTS_PAGE, queries.PRODUCTS_PAGE_SIZE, {}),
        (queries.PRODUCT_VARIANTS_PAGE, queries.PRODUCT_VARIANTS_PAGE_SIZE, {"id": "x"}),
        (queries.VARIANT_LEVELS_PAGE, queries.VARIANT_LEVELS_PAGE_SIZE, {}),
        (queries.INVENTORY_ITEM_LEVELS_PAGE, queries.INVENTORY_ITEM_LEVELS_PAGE_SIZE, {"id": "x"}),
        (queries.INVENTORY_ITEMS_LEVELS_PAGE, queries.INVENTORY_ITEMS_PAGE_SIZE, {}),
    ],
)
def test_page_sizes_are_the_largest_under_the_cost_cap(document, size, extra):
    assert _cost(document, first=size, **extra) <= queries.MAX_REQUESTED_COST
    assert size == 250 or _cost(document, first=size + 1, **extra) > queries.MAX_REQUESTED_COST


def test_fixed_size_queries_fit_under_the_cost_cap():
    assert _cost(queries.ORDER_FULFILLMENT_ORDERS, id="gid://shopify/Order/1") == 518
    assert _cost(queries.SUGGESTED_REFUND, id="gid://shopify/Order/1") == 16


def post(sandbox, token, query, variables=None, version="2025-01"):
    return requests.post(
        f"{sandbox.base_url}/admin/api/{version}/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token},
        timeout=5,
    )


def test_queries_shopify_would_refuse_are_refused(shopify_schema, sandbox, token):
    body = post(sandbox, token, "{ orders(first: 1) { nodes { id totallyMadeUp } } }").json()
    assert body["errors"][0]["extensions"]["schema"] == "shopify-admin-2025-01"
    assert "totallyMadeUp" in body["errors"][0]["message"]
    assert "data" not in body


def test_sandbox_runs_without_the_reference_schema(token):
    with SandboxShopify(validate_with_real_schema=False, restore_rate=100_000) as sb:
        t = sb.issue_token()
        assert post(sb, t, queries.CURRENT_BULK_OPERATION).json()["data"] == {"currentBulkOperation": None}


def test_throttled_answer_looks_like_shopifys(sandbox, token):
    sandbox.set_rate_limit(bucket_size=50, restore_rate=1)
    body = post(sandbox, token, queries.VARIANTS_PAGE, {"first": 30}).json()
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 92 and cost["actualQueryCost"] is None
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}


def test_missing_or_bad_token_is_401(sandbox):
    assert post(sandbox, "shpat_nope", queries.CURRENT_BULK_OPERATION).status_code == 401


def test_a_second_bulk_query_while_one_runs_is_refused(sandbox, token):
    sandbox.bulk_polls = 5
    run = {"query": queries.BULK_ORDERS_QUERY}
    first = post(sandbox, token, queries.BULK_OPERATION_RUN_QUERY, run).json()["data"][
        "bulkOperationRunQuery"
    ]
    assert first["userErrors"] == [] and first["bulkOperation"]["status"] == "CREATED"
    second = post(sandbox, token, queries.BULK_OPERATION_RUN_QUERY, run).json()["data"][
        "bulkOperationRunQuery"
    ]
    assert second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"


# -- webhook payloads --------------------------------------------------------------------------

# The schemas are inferred from one documented example each, so they miss some nulls real
# payloads carry: a guest checkout has ``"customer": null``.
KNOWN_NULLABLE = [["customer"]]

SCHEMA_FILES = {
    "orders/create": "orders_create.json",
    "orders/updated": "orders_updated.json",
    "orders/cancelled": "orders_cancelled.json",
    "products/update": "products_update.json",
    "inventory_levels/update": "inventory_levels_update.json",
    "bulk_operations/finish": "bulk_operations_finish.json",
    "app/uninstalled": "app_uninstalled.json",
}


def test_every_webhook_payload_validates_against_shopifys_schema(sandbox, client, receiver):
    jsonschema = pytest.importorskip("jsonschema")
    folder = SHARED / "webhook-schemas"
    if not folder.exists():
        pytest.skip(f"webhook schemas not found in {folder}")
    storefront = ShopifyStorefront(client, bulk_poll_interval=0.01)
    storefront.register_webhooks(receiver.url)
    product = sandbox.create_product("Sencha", [{"sku": "SEN-250", "price": 1450, "available": 1}])
    order = sandbox.create_order(
        [{"sku": "SEN-250", "quantity": 2}, {"title": "Gift wrap", "price": 350}], tags=["vip"]
    )
    sandbox.remove_quantity(order.id, order.line_items[0].id, 1)
    sandbox.create_order([{"sku": "SEN-250"}], email=None, shipping_address={})
    shipped = sandbox.create_order([{"sku": "SEN-250", "quantity": 3}])
    sandbox.fulfill_order(shipped.id, {shipped.line_items[0].id: 1}, tracking_number="1Z999")
    sandbox.cancel_order(order.id)
    sandbox.set_inventory("SEN-250", 5)
    from connector.domain.records import VariantStatusPush

    storefront.push_variants(
        [VariantStatusPush(str(product.variants[0].id), str(product.id), True, "backorder", None, "Soon")]
    )
    list(storefront.bulk_backfill_orders())
    sandbox.wait_for_webhooks()
    sandbox.uninstall_app()

    seen = set()
    for delivery in receiver.received:
        topic = delivery.headers["X-Shopify-Topic"]
        schema = json.loads((folder / SCHEMA_FILES[topic]).read_text())
        errors = [
            f"{list(e.absolute_path)}: {e.message}"
            for e in jsonschema.Draft202012Validator(schema).iter_errors(json.loads(delivery.body))
            if not (list(e.absolute_path) in KNOWN_NULLABLE and e.instance is None)
        ]
        assert errors == [], f"{topic}: {errors[:5]}"
        seen.add(topic)
    assert seen == set(SCHEMA_FILES)


def test_demo_shop_seeds_a_backorder_situation(sandbox, storefront):
    from sandbox.shopify.demo import seed_demo_shop

    seed_demo_shop(sandbox)
    variants = {v.sku: v for v in storefront.fetch_variants()}
    assert variants["SEN-1000"].allows_backorder
    assert len(list(storefront.fetch_orders_since(None))) == 2


def test_uninstall_revokes_tokens(sandbox, client):
    sandbox.uninstall_app()
    with pytest.raises(AuthError):
        client.execute(queries.CURRENT_BULK_OPERATION)
