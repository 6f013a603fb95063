"""Shopify payloads → normalized records: recorded-shaped payloads, edge cases, and fuzzing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.shopify import mapping
from connector.domain.records import (
    InventoryLevelRecord,
    OrderRecord,
    OrderState,
    ProductRecord,
    VariantRecord,
)
from connector.errors import MappingError

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def order_payload() -> dict:
    return load("orders_create")


# -- webhooks ----------------------------------------------------------------------------------


def test_order_webhook_maps_ids_money_and_customer(order_payload):
    order = mapping.order_from_webhook(order_payload)
    assert order.external_id == "5812345678901"
    assert order.graphql_id == "gid://shopify/Order/5812345678901"
    assert order.number == "#1042"
    assert order.currency == "GBP"
    assert order.customer_email == "ada@example.com"
    assert order.customer_name == "Ada Lovelace"
    assert order.customer_external_id == "7123456789012"
    assert order.tags == ("vip", "wholesale")
    assert order.placed_at == datetime(2026, 3, 5, 15, 15, tzinfo=UTC)
    assert order.updated_at == datetime(2026, 3, 5, 15, 20, 11, tzinfo=UTC)
    assert order.updated_at.tzinfo is not None


def test_order_webhook_line_quantity_is_current_quantity(order_payload):
    first, *_ = mapping.order_from_webhook(order_payload).lines
    assert (first.external_id, first.quantity, first.sku, first.variant_external_id) == (
        "13412345678901",
        2,
        "SEN-250",
        "42548521812136",
    )
    assert first.unit_price_cents == 1450
    assert first.product_external_id == "7513594097832"


def test_order_webhook_without_current_quantity_subtracts_refunded_units(order_payload):
    line = order_payload["line_items"][0]
    del line["current_quantity"]
    order_payload["refunds"] = [{"id": 1, "refund_line_items": [{"line_item_id": line["id"], "quantity": 1}]}]
    assert mapping.order_from_webhook(order_payload).lines[0].quantity == 2


def test_custom_items_and_deleted_variants_have_no_variant(order_payload):
    _, custom, deleted = mapping.order_from_webhook(order_payload).lines
    assert (custom.variant_external_id, custom.sku, custom.title) == (None, None, "Gift wrapping")
    assert (deleted.variant_external_id, deleted.sku) == (None, "OOL-100")
    order_payload["line_items"][2]["sku"] = None
    assert mapping.order_from_webhook(order_payload).lines[2].sku is None


def test_ship_to_comes_from_shipping_address(order_payload):
    ship = mapping.order_from_webhook(order_payload).ship_to
    assert ship.name == "Ada Lovelace"
    assert (ship.address1, ship.address2, ship.city, ship.zip) == (
        "12 St James's Square",
        "Flat 3",
        "London",
        "SW1Y 4JH",
    )
    assert (ship.country_code, ship.province, ship.phone) == ("GB", "ENG", "+44 20 7946 0000")
    order_payload["shipping_address"] = None
    assert mapping.order_from_webhook(order_payload).ship_to is None


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, OrderState.OPEN),  # financial_status pending still competes for stock
        ({"financial_status": "paid"}, OrderState.OPEN),
        ({"cancelled_at": "2026-03-06T09:00:00-05:00"}, OrderState.CLOSED),
        ({"financial_status": "refunded"}, OrderState.CLOSED),
        ({"fulfillment_status": "fulfilled"}, OrderState.FULFILLED),
        ({"fulfillment_status": "partial"}, OrderState.OPEN),
        ({"fulfillment_status": "fulfilled", "cancelled_at": "2026-03-06T09:00:00Z"}, OrderState.CLOSED),
    ],
)
def test_order_state(order_payload, changes, state):
    order_payload.update(changes)
    assert mapping.order_from_webhook(order_payload).state is state


def test_fulfilled_quantity_counts_successful_fulfillments_only(order_payload):
    line_id = order_payload["line_items"][0]["id"]
    order_payload["fulfillments"] = [
        {"id": 1, "status": "success", "line_items": [{"id": line_id, "quantity": 1}]},
        {"id": 2, "status": "cancelled", "line_items": [{"id": line_id, "quantity": 1}]},
    ]
    order_payload["line_items"][0]["fulfillable_quantity"] = 0  # e.g. a fulfillment hold: not shipped
    assert mapping.order_from_webhook(order_payload).lines[0].fulfilled_quantity == 1


def test_a_fulfilled_line_counts_all_its_units(order_payload):
    order_payload["line_items"][0]["fulfillment_status"] = "fulfilled"
    assert mapping.order_from_webhook(order_payload).lines[0].fulfilled_quantity == 2


def test_ids_above_2_to_the_53_survive_as_exact_strings(order_payload):
    order_payload["id"] = 2**53 + 1
    assert mapping.order_from_webhook(order_payload).external_id == "9007199254740993"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("id",), None, "id"),
        (("id",), True, "id"),
        (("created_at",), "yesterday", "created_at"),
        (("created_at",), "2026-03-05T10:15:00", "created_at"),  # naive: refused, not guessed
        (("line_items",), {}, "line_items"),
        (("line_items", 0, "quantity"), "3", "line_items[0].quantity"),
        (("line_items", 0, "price"), "abc", "line_items[0].price"),
        (("line_items", 0, "price"), "NaN", "line_items[0].price"),
        (("line_items", 0, "variant_id"), 1.5, "line_items[0].variant_id"),
        (("shipping_address",), "London", "shipping_address"),
        (("customer", "id"), [], "customer.id"),
    ],
)
def test_malformed_order_names_the_field(order_payload, path, value, field):
    target = order_payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(MappingError) as exc:
        mapping.order_from_webhook(order_payload)
    assert exc.value.field == field


def test_missing_required_key_names_it(order_payload):
    del order_payload["updated_at"]
    with pytest.raises(MappingError, match="updated_at"):
        mapping.order_from_webhook(order_payload)


def test_product_webhook_maps_backorder_policy():
    product = mapping.product_from_webhook(load("products_update"))
    assert product.external_id == "7513594097832"
    assert product.tags == ("tea", "green")
    by_sku = {v.sku: v for v in product.variants}
    assert by_sku["SEN-250"].allows_backorder is True
    assert by_sku["SEN-1000"].allows_backorder is False
    assert by_sku["SEN-250"].inventory_item_external_id == "44643640647848"
    assert by_sku["SEN-1000"].price_cents == 4900
    assert by_sku["SEN-250"].product_external_id == "7513594097832"


def test_inventory_level_webhook():
    level = mapping.inventory_level_from_webhook(load("inventory_levels_update"))
    assert level == InventoryLevelRecord("44643640647848", "68719476736", -2, updated_at=level.updated_at)
    assert level.updated_at == datetime(2026, 3, 5, 15, 0, tzinfo=UTC)


def test_untracked_inventory_level_is_a_mapping_error():
    payload = load("inventory_levels_update")
    payload["available"] = None
    with pytest.raises(MappingError) as exc:
        mapping.inventory_level_from_webhook(payload)
    assert exc.value.field == "available"


# -- GraphQL -----------------------------------------------------------------------------------

ORDER_NODE = {
    "id": "gid://shopify/Order/5812345678901",
    "name": "#1042",
    "createdAt": "2026-03-05T15:15:00Z",
    "updatedAt": "2026-03-05T15:20:11Z",
    "cancelledAt": None,
    "closedAt": None,
    "email": "ada@example.com",
    "currencyCode": "GBP",
    "tags": ["vip"],
    "displayFinancialStatus": "PENDING",
    "displayFulfillmentStatus": "PARTIALLY_FULFILLED",
    "customer": {"id": "gid://shopify/Customer/7123456789012", "displayName": "Ada Lovelace"},
    "shippingAddress": {
        "name": "Ada Lovelace",
        "company": None,
        "address1": "12 St James's Square",
        "address2": None,
        "city": "London",
        "provinceCode": "ENG",
        "zip": "SW1Y 4JH",
        "countryCodeV2": "GB",
        "phone": None,
    },
    "lineItems": {
        "pageInfo": {"hasNextPage": False, "endCursor": "x"},
        "nodes": [
            {
                "id": "gid://shopify/LineItem/13412345678901",
                "title": "Sencha Tea",
                "sku": "SEN-250",
                "quantity": 3,
                "currentQuantity": 2,
                "unfulfilledQuantity": 1,
                "originalUnitPriceSet": {"shopMoney": {"amount": "14.5", "currencyCode": "GBP"}},
                "variant": {
                    "id": "gid://shopify/ProductVariant/42548521812136",
                    "sku": "SEN-250",
                    "inventoryPolicy": "CONTINUE",
                    "inventoryItem": {"id": "gid://shopify/InventoryItem/1"},
                },
            },
            {
                "id": "gid://shopify/LineItem/13412345678902",
                "title": "Gift wrapping",
                "sku": None,
                "quantity": 1,
                "currentQuantity": 1,
                "unfulfilledQuantity": 1,
                "originalUnitPriceSet": {"shopMoney": {"amount": "3.50", "currencyCode": "GBP"}},
                "variant": None,
            },
        ],
    },
}


def test_graphql_order_matches_webhook_keys():
    order = mapping.order_from_graphql(ORDER_NODE)
    assert order.external_id == "5812345678901"
    assert order.state is OrderState.OPEN
    wanted, custom = order.lines
    assert (wanted.external_id, wanted.quantity, wanted.fulfilled_quantity, wanted.unit_price_cents) == (
        "13412345678901",
        2,
        1,
        1450,
    )
    assert wanted.variant_external_id == "42548521812136"
    assert (custom.variant_external_id, custom.sku) == (None, None)
    assert order.ship_to.country_code == "GB"


def test_graphql_order_accepts_edges():
    node = copy.deepcopy(ORDER_NODE)
    node["lineItems"] = {"edges": [{"node": n} for n in node["lineItems"]["nodes"]]}
    assert len(mapping.order_from_graphql(node).lines) == 2


def test_graphql_variant_and_levels():
    node = {
        "id": "gid://shopify/ProductVariant/42548521812136",
        "title": "250 g",
        "displayName": "Sencha - 250 g",
        "sku": "SEN-250",
        "inventoryPolicy": "CONTINUE",
        "price": "14.50",
        "updatedAt": "2026-03-02T14:00:00Z",
        "inventoryQuantity": -2,
        "product": {"id": "gid://shopify/Product/7513594097832"},
        "inventoryItem": {
            "id": "gid://shopify/InventoryItem/44643640647848",
            "tracked": True,
            "inventoryLevels": {
                "nodes": [
                    {
                        "updatedAt": "2026-03-05T15:00:00Z",
                        "location": {"id": "gid://shopify/Location/68719476736"},
                        "quantities": [
                            {"name": "available", "quantity": -2},
                            {"name": "on_hand", "quantity": 0},
                            {"name": "incoming", "quantity": 12},
                        ],
                    }
                ]
            },
        },
    }
    variant = mapping.variant_from_graphql(node)
    assert variant == VariantRecord(
        external_id="42548521812136",
        product_external_id="7513594097832",
        sku="SEN-250",
        title="Sencha - 250 g",
        allows_backorder=True,
        tracks_inventory=True,
        inventory_item_external_id="44643640647848",
        price_cents=1450,
        updated_at=datetime(2026, 3, 2, 14, tzinfo=UTC),
        stock_quantity=-2,
        graphql_id="gid://shopify/ProductVariant/42548521812136",
    )
    (level,) = mapping.inventory_levels_from_variant_node(node)
    assert (level.available, level.on_hand, level.incoming, level.location_external_id) == (
        -2,
        0,
        12,
        "68719476736",
    )


def test_graphql_level_without_available_names_the_field():
    with pytest.raises(MappingError) as exc:
        mapping.inventory_level_from_graphql(
            {
                "location": {"id": "gid://shopify/Location/1"},
                "quantities": [{"name": "on_hand", "quantity": 1}],
            },
            "5",
        )
    assert exc.value.field == "quantities.available"


# -- fuzzing: anything in, a record or a MappingError out ---------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)

MAPPERS = [
    (mapping.order_from_webhook, OrderRecord),
    (mapping.product_from_webhook, ProductRecord),
    (mapping.inventory_level_from_webhook, InventoryLevelRecord),
    (mapping.order_from_graphql, OrderRecord),
    (mapping.variant_from_graphql, VariantRecord),
    (mapping.inventory_level_from_graphql, InventoryLevelRecord),
    (mapping.product_from_graphql, ProductRecord),
]


def _check(mapper, record_type, value):
    try:
        result = mapper(value)
    except MappingError as exc:
        assert exc.field
        return
    assert isinstance(result, record_type)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, which=st.integers(0, len(MAPPERS) - 1))
def test_arbitrary_json_gives_a_record_or_mapping_error(value, which):
    _check(*MAPPERS[which], value)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


VALID = [
    (load("orders_create"), mapping.order_from_webhook, OrderRecord),
    (load("products_update"), mapping.product_from_webhook, ProductRecord),
    (load("inventory_levels_update"), mapping.inventory_level_from_webhook, InventoryLevelRecord),
    (ORDER_NODE, mapping.order_from_graphql, OrderRecord),
]


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), which=st.integers(0, len(VALID) - 1), replacement=json_values)
def test_corrupting_one_field_of_a_real_payload_gives_a_record_or_mapping_error(data, which, replacement):
    payload, mapper, record_type = VALID[which]
    payload = copy.deepcopy(payload)
    paths = [p for p in _paths(payload) if p]
    path = data.draw(st.sampled_from(paths))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    _check(mapper, record_type, payload)
