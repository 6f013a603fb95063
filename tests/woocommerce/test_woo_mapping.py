"""Mapping of full WooCommerce REST v3 payloads into normalized records."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.woocommerce.mapping import order_from_payload, product_from_payload, variant_from_payload
from connector.domain.records import Address, OrderRecord, OrderState, ProductRecord, VariantRecord
from connector.errors import MappingError

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str):
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


@pytest.fixture
def order():
    return load("order_727_de.json")


def test_full_order_maps_to_an_open_order_with_aware_utc_dates(order):
    record = order_from_payload(order)
    assert record.external_id == "727" and record.number == "727"
    assert record.state is OrderState.OPEN  # on-hold reserves stock
    assert record.placed_at == datetime(2026, 3, 28, 23, 30, 12, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 3, 29, 1, 5, 40, tzinfo=UTC)
    assert record.customer_email == "joerg.mueller@example.de"
    assert record.customer_name == "Jörg Müller"
    assert record.customer_external_id == "14"
    assert record.currency == "EUR"
    assert record.ship_to == Address(
        name="Jörg Müller",
        company="Müller GmbH",
        address1="Hauptstraße 5",
        address2="Hinterhaus",
        city="Köln",
        province="NW",
        zip="50667",
        country_code="DE",
        phone=None,
    )


def test_variation_lines_use_the_variation_id_and_simple_lines_the_product_id(order):
    hoodie, mug, deleted = order_from_payload(order).lines
    assert (hoodie.variant_external_id, hoodie.product_external_id, hoodie.sku) == ("95", "93", "HOOD-BLU-L")
    assert (mug.variant_external_id, mug.product_external_id, mug.sku) == ("22", "22", None)
    assert (deleted.variant_external_id, deleted.product_external_id) == (None, None)
    assert hoodie.quantity == 3 and hoodie.external_id == "315"


def test_prices_become_cents_rounded_half_up(order):
    hoodie, mug, deleted = order_from_payload(order).lines
    assert (hoodie.unit_price_cents, mug.unit_price_cents, deleted.unit_price_cents) == (840, 2269, 0)


def test_translated_backordered_meta_is_recognised_by_shape_only_as_a_hint(order):
    hoodie, mug, _ = order_from_payload(order).lines
    assert hoodie.backordered_hint == 2  # "Lieferrückstand": 2, the attribute metas are pa_*
    assert mug.backordered_hint is None


def test_english_backordered_key_wins_over_other_numeric_meta(order):
    line = order["line_items"][0]
    line["meta_data"] = [
        {"id": 1, "key": "Size", "value": "1"},
        {"id": 2, "key": "Backordered", "value": "3"},
    ]
    assert order_from_payload(order).lines[0].backordered_hint == 3


def test_two_numeric_candidates_give_no_hint_rather_than_a_wrong_one(order):
    line = order["line_items"][0]
    line["meta_data"] = [
        {"id": 1, "key": "Größe", "value": "1"},
        {"id": 2, "key": "Lieferrückstand", "value": "2"},
    ]
    assert order_from_payload(order).lines[0].backordered_hint is None


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("processing", OrderState.OPEN),
        ("on-hold", OrderState.OPEN),
        ("pending", OrderState.PENDING),
        ("failed", OrderState.PENDING),
        ("cancelled", OrderState.CLOSED),
        ("refunded", OrderState.CLOSED),
        ("trash", OrderState.CLOSED),
        ("completed", OrderState.FULFILLED),
    ],
)
def test_every_order_status_has_a_state(order, status, state):
    order["status"] = status
    record = order_from_payload(order)
    assert record.state is state
    assert all(
        line.fulfilled_quantity == (line.quantity if state is OrderState.FULFILLED else 0)
        for line in record.lines
    )


def test_virtual_order_without_shipping_address_has_no_ship_to(order):
    order["shipping"] = {key: "" for key in order["shipping"]}
    assert order_from_payload(order).ship_to is None


def test_null_date_modified_falls_back_to_creation(order):
    order["date_modified_gmt"] = None
    record = order_from_payload(order)
    assert record.updated_at == record.placed_at


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o.pop("id"), "id"),
        (lambda o: o.update(status="shipped"), "status"),
        (lambda o: o.update(date_created_gmt="yesterday"), "date_created_gmt"),
        (lambda o: o.update(line_items={"0": {}}), "line_items"),
        (lambda o: o["line_items"][1].update(quantity="two"), "line_items[1].quantity"),
        (lambda o: o["line_items"][1].update(quantity=-1), "line_items[1].quantity"),
        (lambda o: o["line_items"][0].update(price="12,50"), "line_items[0].price"),
        (lambda o: o["line_items"][0].pop("id"), "line_items[0].id"),
        (lambda o: o.update(billing="nope"), "billing"),
    ],
)
def test_malformed_orders_raise_mapping_error_naming_the_field(order, mutate, field):
    mutate(order)
    with pytest.raises(MappingError) as caught:
        order_from_payload(order)
    assert caught.value.field == field


def test_sandbox_orders_map_too():
    from sandbox.woocommerce import WooStore

    store = WooStore(backordered_label="Backordered")
    product = store.create_product("Mug", sku="MUG", stock_quantity=1, backorders="notify")
    record = order_from_payload(store.create_order([(product["id"], 4)]))
    assert record.lines[0].backordered_hint == 3  # 4 - max(0, 1)


# ---------------------------------------------------------------------- products


def test_variable_product_maps_through_its_variations():
    record = product_from_payload(load("product_variable.json"), load("product_variable_variations.json"))
    assert isinstance(record, ProductRecord)
    assert record.title == "Kapuzenpullover" and record.tags == ("Winter",)
    blue_l, blue_m, red_m = record.variants
    assert (blue_l.sku, blue_l.allows_backorder, blue_l.stock_quantity, blue_l.tracks_inventory) == (
        "HOOD-BLU-L",
        True,
        -2,
        True,
    )
    assert (blue_m.allows_backorder, blue_m.stock_quantity) == (False, 4)
    assert blue_l.title == "Kapuzenpullover - Blau / L"
    assert blue_l.price_cents == 2990 and red_m.price_cents == 3150
    # manage_stock "parent": stock and backorder rule come from the product
    assert (red_m.tracks_inventory, red_m.stock_quantity, red_m.allows_backorder) == (True, 0, True)
    assert all(v.product_external_id == record.external_id for v in record.variants)
    assert record.extra["type"] == "variable"
    assert record.extra[f"stock_status:{blue_l.external_id}"] == "onbackorder"
    assert record.updated_at is not None and record.updated_at.tzinfo is UTC


def test_simple_product_is_its_own_variant():
    record = product_from_payload(load("product_simple.json"))
    (variant,) = record.variants
    assert variant.external_id == record.external_id == variant.product_external_id
    assert (variant.sku, variant.tracks_inventory, variant.stock_quantity, variant.allows_backorder) == (
        "MUG",
        False,
        None,
        False,
    )
    assert record.extra["stock_status"] == "outofstock"


@pytest.mark.parametrize(("backorders", "allowed"), [("no", False), ("notify", True), ("yes", True)])
def test_backorders_setting_decides_allows_backorder(backorders, allowed):
    product = load("product_simple.json")
    product.update(manage_stock=True, stock_quantity=0, backorders=backorders)
    assert product_from_payload(product).variants[0].allows_backorder is allowed


def test_variable_product_without_variations_is_refused():
    with pytest.raises(MappingError) as caught:
        product_from_payload(load("product_variable.json"))
    assert caught.value.field == "variations"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p, v: p.update(backorders="maybe"), "backorders"),
        (lambda p, v: v[1].update(manage_stock="yes"), "variations[1].manage_stock"),
        (lambda p, v: v[0].update(stock_quantity="lots"), "variations[0].stock_quantity"),
        (lambda p, v: v[0].update(stock_status="gone"), "variations[0].stock_status"),
        (lambda p, v: v[2].pop("id"), "variations[2].id"),
    ],
)
def test_malformed_products_raise_mapping_error_naming_the_field(mutate, field):
    product, variations = load("product_variable.json"), load("product_variable_variations.json")
    mutate(product, variations)
    with pytest.raises(MappingError) as caught:
        product_from_payload(product, variations)
    assert caught.value.field == field


# ---------------------------------------------------------------------- arbitrary input

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)


def _mutated(base: dict, paths: list[tuple[str, ...]]):
    """A real payload with some fields replaced by arbitrary JSON: reaches the deep code paths."""

    @st.composite
    def build(draw):
        payload = copy.deepcopy(base)
        for path in draw(st.lists(st.sampled_from(paths), max_size=4)):
            target = payload
            try:  # an earlier replacement may have removed the container: skip that path
                for key in path[:-1]:
                    target = target[int(key)] if isinstance(target, list) else target[key]
                target[path[-1] if not isinstance(target, list) else int(path[-1])] = draw(json_values)
            except (KeyError, IndexError, TypeError, ValueError):
                continue
        return payload

    return build()


ORDER_PATHS = [
    ("id",),
    ("status",),
    ("number",),
    ("date_created_gmt",),
    ("date_modified_gmt",),
    ("billing",),
    ("shipping",),
    ("customer_id",),
    ("currency",),
    ("line_items",),
    ("line_items", "0"),
    ("line_items", "0", "quantity"),
    ("line_items", "0", "price"),
    ("line_items", "0", "meta_data"),
    ("line_items", "0", "meta_data", "2", "value"),
    ("line_items", "1", "variation_id"),
    ("line_items", "1", "sku"),
    ("shipping", "country"),
]
PRODUCT_PATHS = [
    ("id",),
    ("type",),
    ("name",),
    ("manage_stock",),
    ("stock_quantity",),
    ("backorders",),
    ("stock_status",),
    ("tags",),
    ("price",),
    ("date_modified_gmt",),
]


def _record_or_mapping_error(call):
    try:
        result = call()
    except MappingError:
        return
    assert isinstance(result, OrderRecord | ProductRecord)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_gives_an_order_or_a_mapping_error(payload):
    _record_or_mapping_error(lambda: order_from_payload(payload))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated(load("order_727_de.json"), ORDER_PATHS))
def test_partly_arbitrary_orders_give_an_order_or_a_mapping_error(payload):
    _record_or_mapping_error(lambda: order_from_payload(payload))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, json_values)
def test_arbitrary_json_gives_a_product_or_a_mapping_error(payload, variations):
    _record_or_mapping_error(lambda: product_from_payload(payload, variations))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _mutated(load("product_variable.json"), PRODUCT_PATHS),
    st.lists(json_values, max_size=3) | st.just(load("product_variable_variations.json")),
)
def test_partly_arbitrary_products_give_a_product_or_a_mapping_error(payload, variations):
    _record_or_mapping_error(lambda: product_from_payload(payload, variations))


def test_integer_order_numbers_are_accepted(order):
    order["number"] = 1042
    assert order_from_payload(order).number == "1042"


def test_a_variation_maps_alone_with_its_parent_for_inherited_stock():
    product, variations = load("product_variable.json"), load("product_variable_variations.json")
    own = variant_from_payload(variations[0])
    assert (own.external_id, own.product_external_id, own.stock_quantity) == (
        str(variations[0]["id"]),
        str(product["id"]),
        -2,
    )
    inherited = variant_from_payload(variations[2], product)
    assert (inherited.stock_quantity, inherited.allows_backorder) == (0, True)
    with pytest.raises(MappingError) as caught:
        product_from_payload(variations[0])
    assert caught.value.field == "type"


VARIATION_PATHS = [
    ("id",),
    ("parent_id",),
    ("manage_stock",),
    ("stock_quantity",),
    ("backorders",),
    ("attributes",),
    ("price",),
    ("date_modified_gmt",),
    ("stock_status",),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _mutated(load("product_variable_variations.json")[2], VARIATION_PATHS),
    _mutated(load("product_variable.json"), PRODUCT_PATHS) | st.none(),
)
def test_partly_arbitrary_variations_give_a_variant_or_a_mapping_error(variation, parent):
    try:
        result = variant_from_payload(variation, parent)
    except MappingError:
        return
    assert isinstance(result, VariantRecord)
