"""ShopifyStorefront against the sandbox: sync, pagination, webhooks, pushes, bulk backfill."""

from __future__ import annotations

import json
from datetime import date

import pytest

from adapters.shopify import mapping, queries
from adapters.shopify.storefront import NAMESPACE, ShopifyStorefront
from adapters.shopify.webhooks import verify_webhook
from connector.domain.records import LineStatusPush, OrderState, OrderStatusPush, VariantStatusPush
from connector.errors import PlatformError, ValidationError


@pytest.fixture
def shop(sandbox):
    sandbox.create_product(
        "Sencha",
        [
            {"sku": "SEN-250", "price": 1450, "available": 1, "title": "250 g"},
            {"sku": "SEN-1000", "price": 4900, "available": 10, "title": "1 kg"},
        ],
    )
    sandbox.create_product("Matcha", [{"sku": "MAT-30", "price": 2200, "available": 0}])
    return sandbox


def operations(sandbox, name):
    return [r for r in sandbox.requests if r.get("operation") == name]


def test_orders_sync_maps_every_order(shop, storefront):
    placed = shop.create_order([{"sku": "SEN-250", "quantity": 3}, {"title": "Gift wrap", "price": 350}])
    (order,) = storefront.fetch_orders_since(None)
    assert order.external_id == str(placed.id)
    assert order.state is OrderState.OPEN
    assert [(li.sku, li.quantity, li.variant_external_id is None) for li in order.lines] == [
        ("SEN-250", 3, False),
        (None, 1, True),
    ]


def test_incremental_sync_returns_only_changed_orders(shop, storefront):
    old, touched = shop.create_order([{"sku": "SEN-250"}]), shop.create_order([{"sku": "MAT-30"}])
    cursor = max(o.updated_at for o in storefront.fetch_orders_since(None))
    shop.update_order(touched.id, note="call before delivery")
    new = shop.create_order([{"sku": "SEN-1000", "quantity": 2}])
    changed = list(storefront.fetch_orders_since(cursor))
    ids = [o.external_id for o in changed]
    assert str(old.id) not in ids
    assert ids[-2:] == [str(touched.id), str(new.id)]  # oldest change first
    assert all(o.updated_at >= cursor for o in changed)


def test_orders_are_paged_with_the_largest_page_the_cost_cap_allows(shop, storefront):
    for _ in range(queries.ORDERS_PAGE_SIZE * 2 + 3):
        shop.create_order([{"sku": "SEN-250"}], notify=False)
    assert len(list(storefront.fetch_orders_since(None))) == 39
    pages = operations(shop, "OrdersPage")
    assert len(pages) == 3
    assert max(p["cost"] for p in pages) <= 1000


def test_orders_with_many_lines_are_completed(shop, storefront):
    lines = [{"title": f"Custom {n}", "price": 100 + n} for n in range(queries.LINE_ITEMS_PER_ORDER * 2 + 5)]
    shop.create_order(lines)
    (order,) = storefront.fetch_orders_since(None)
    assert [li.title for li in order.lines] == [f"Custom {n}" for n in range(25)]
    assert len(operations(shop, "OrderLineItems")) == 1


def test_cancelled_and_fulfilled_orders_map_to_their_states(shop, storefront):
    cancelled = shop.cancel_order(shop.create_order([{"sku": "SEN-250"}]).id)
    shipped = shop.fulfill_order(shop.create_order([{"sku": "SEN-1000"}]).id)
    states = {o.external_id: o.state for o in storefront.fetch_orders_since(None)}
    assert states == {str(cancelled.id): OrderState.CLOSED, str(shipped.id): OrderState.FULFILLED}


def test_variants_and_inventory_levels(shop, storefront):
    variants = {v.sku: v for v in storefront.fetch_variants()}
    assert set(variants) == {"SEN-250", "SEN-1000", "MAT-30"}
    assert variants["SEN-1000"].price_cents == 4900
    assert variants["MAT-30"].allows_backorder is False
    levels = {lv.inventory_item_external_id: lv for lv in storefront.fetch_inventory_levels()}
    assert levels[variants["SEN-1000"].inventory_item_external_id].available == 10
    shop.create_order([{"sku": "SEN-250", "quantity": 3}])
    levels = {lv.inventory_item_external_id: lv for lv in storefront.fetch_inventory_levels()}
    oversold = levels[variants["SEN-250"].inventory_item_external_id]
    assert (oversold.available, oversold.on_hand) == (-2, 1)


def test_registered_webhooks_deliver_signed_payloads_that_map_like_the_api(shop, storefront, receiver):
    result = storefront.register_webhooks(receiver.url)
    assert all(result.values())
    assert set(storefront.register_webhooks(receiver.url).values()) == {None}  # idempotent
    placed = shop.create_order([{"sku": "SEN-250", "quantity": 2}, {"title": "Gift wrap", "price": 350}])
    create = next(r for r in receiver.received if r.headers["X-Shopify-Topic"] == "orders/create")
    delivery = verify_webhook(create.body, create.headers, shop.api_secret, max_bytes=1_000_000)
    from_webhook = mapping.order_from_webhook(delivery.payload)
    (from_api,) = storefront.fetch_orders_since(None)
    assert from_webhook.external_id == from_api.external_id == str(placed.id)
    assert [(li.external_id, li.quantity, li.sku, li.variant_external_id) for li in from_webhook.lines] == [
        (li.external_id, li.quantity, li.sku, li.variant_external_id) for li in from_api.lines
    ]
    assert from_webhook.updated_at == from_api.updated_at
    levels = [r for r in receiver.received if r.headers["X-Shopify-Topic"] == "inventory_levels/update"]
    assert mapping.inventory_level_from_webhook(json.loads(levels[0].body)).available == -1


def test_push_variants_sets_policy_and_theme_metafields(shop, storefront):
    variants = {v.sku: v for v in storefront.fetch_variants()}
    sencha, matcha = variants["SEN-250"], variants["MAT-30"]
    storefront.push_variants(
        [
            VariantStatusPush(
                sencha.external_id,
                sencha.product_external_id,
                True,
                "backorder",
                date(2026, 4, 2),
                "Ships by 2 April",
            ),
            VariantStatusPush(
                matcha.external_id, matcha.product_external_id, True, "preorder", None, "Pre-order"
            ),
        ]
    )
    after = {v.sku: v for v in storefront.fetch_variants()}
    assert after["SEN-250"].allows_backorder and after["MAT-30"].allows_backorder
    assert not after["SEN-1000"].allows_backorder
    assert shop.metafield(sencha.graphql_id, NAMESPACE, "eta") == {
        "id": shop.metafield(sencha.graphql_id, NAMESPACE, "eta")["id"],
        "namespace": NAMESPACE,
        "key": "eta",
        "value": "2026-04-02",
        "type": "date",
    }
    assert shop.metafield(sencha.graphql_id, NAMESPACE, "status")["value"] == "backorder"
    assert shop.metafield(matcha.graphql_id, NAMESPACE, "text")["value"] == "Pre-order"
    assert shop.metafield(matcha.graphql_id, NAMESPACE, "eta") is None

    storefront.push_variants(
        [
            VariantStatusPush(
                sencha.external_id, sencha.product_external_id, False, "in_stock", None, "In stock"
            )
        ]
    )
    assert not {v.sku: v for v in storefront.fetch_variants()}["SEN-250"].allows_backorder
    assert shop.metafield(sencha.graphql_id, NAMESPACE, "eta") is None  # stale promise removed


def test_metafields_are_sent_in_batches_of_25(sandbox, storefront):
    product = sandbox.create_product("Many", [{"sku": f"M-{n}", "title": f"v{n}"} for n in range(20)])
    pushes = [
        VariantStatusPush(str(v.id), str(product.id), True, "backorder", date(2026, 5, 1), "Soon")
        for v in product.variants
    ]
    storefront.push_variants(pushes)
    sets = [m for m in sandbox.mutations if m["mutation"] == "metafieldsSet"]
    assert [len(m["args"]["metafields"]) for m in sets] == [25, 25, 10]  # 20 variants × 3 keys
    assert [m["mutation"] for m in sandbox.mutations].count("productVariantsBulkUpdate") == 1


def test_push_orders_tags_without_overwriting_and_stores_line_statuses(shop, storefront):
    placed = shop.create_order([{"sku": "MAT-30", "quantity": 2}], tags=["vip"])
    (order,) = storefront.fetch_orders_since(None)
    line = order.lines[0]
    storefront.push_orders(
        [
            OrderStatusPush(
                order.external_id,
                True,
                (LineStatusPush(line.external_id, line.sku, "backordered", date(2026, 4, 15)),),
            )
        ]
    )
    assert shop.shop().orders[placed.id].tags == ["vip", "backordered"]
    stored = shop.metafield(order.graphql_id, NAMESPACE, "line_statuses")
    assert stored["type"] == "json"
    assert json.loads(stored["value"]) == [
        {"line_id": line.external_id, "sku": "MAT-30", "status": "backordered", "eta": "2026-04-15"}
    ]
    storefront.push_orders(
        [
            OrderStatusPush(
                order.external_id, False, (LineStatusPush(line.external_id, line.sku, "allocated", None),)
            )
        ]
    )
    assert shop.shop().orders[placed.id].tags == ["vip"]
    names = [m["mutation"] for m in shop.mutations]
    assert "tagsAdd" in names and "tagsRemove" in names


def test_bulk_backfill_streams_orders_with_their_lines(shop, storefront):
    placed = [
        shop.create_order([{"sku": "SEN-250", "quantity": n + 1}, {"sku": "MAT-30"}], notify=False)
        for n in range(30)
    ]
    backfill = storefront.bulk_backfill_orders()
    first = next(backfill)  # a generator: orders arrive before the file is exhausted
    rest = list(backfill)
    orders = [first, *rest]
    assert [o.external_id for o in orders] == [str(o.id) for o in placed]
    assert all(len(o.lines) == 2 for o in orders)
    assert [o.lines[0].quantity for o in orders] == list(range(1, 31))
    assert any(op.status == "COMPLETED" for op in shop.bulk_ops.values())


def test_bulk_backfill_since_a_date_and_with_no_results(shop, storefront):
    shop.create_order([{"sku": "SEN-250"}], notify=False)
    cursor = next(storefront.fetch_orders_since(None)).updated_at
    later = shop.create_order([{"sku": "MAT-30"}], notify=False)
    assert [o.external_id for o in storefront.bulk_backfill_orders(cursor)][-1] == str(later.id)
    empty = ShopifyStorefront(storefront.client, bulk_poll_interval=0.01)
    from datetime import timedelta

    assert list(empty.bulk_backfill_orders(later.updated_at + timedelta(days=1))) == []


def test_bulk_rows_out_of_parent_order_are_refused(storefront):
    rows = [
        b'{"id": "gid://shopify/Order/1", "name": "#1", "createdAt": "2026-01-01T00:00:00Z", '
        b'"updatedAt": "2026-01-01T00:00:00Z"}',
        b'{"id": "gid://shopify/Order/2", "name": "#2", "createdAt": "2026-01-01T00:00:00Z", '
        b'"updatedAt": "2026-01-01T00:00:00Z"}',
        b'{"id": "gid://shopify/LineItem/9", "quantity": 1, "__parentId": "gid://shopify/Order/1"}',
    ]
    orders = storefront._orders_from_jsonl(rows)
    assert next(orders).external_id == "1"
    with pytest.raises(PlatformError, match="outside its parent"):
        next(orders)


def test_create_fulfillment_ships_units_with_tracking(shop, storefront):
    placed = shop.create_order([{"sku": "SEN-1000", "quantity": 3}, {"sku": "MAT-30", "quantity": 1}])
    (order,) = storefront.fetch_orders_since(None)
    tea, matcha = order.lines
    fulfillment_id = storefront.create_fulfillment(
        order.external_id, {tea.external_id: 2}, tracking_number="1Z999", tracking_company="UPS"
    )
    assert fulfillment_id.startswith("gid://shopify/Fulfillment/")
    (after,) = storefront.fetch_orders_since(None)
    assert [li.fulfilled_quantity for li in after.lines] == [2, 0]
    assert after.state is OrderState.OPEN
    stored = shop.shop().orders[placed.id].fulfillments[0]
    assert (stored.tracking_number, stored.tracking_company) == ("1Z999", "UPS")

    storefront.create_fulfillment(order.external_id, {tea.external_id: 1, matcha.external_id: 1})
    (done,) = storefront.fetch_orders_since(None)
    assert done.state is OrderState.FULFILLED


def test_fulfilling_more_than_remains_is_refused_before_sending(shop, storefront):
    shop.create_order([{"sku": "SEN-1000", "quantity": 1}])
    (order,) = storefront.fetch_orders_since(None)
    line = order.lines[0].external_id
    with pytest.raises(ValidationError) as exc:
        storefront.create_fulfillment(order.external_id, {line: 2})
    assert exc.value.field == f"quantities.{line}"
    assert "fulfillmentCreate" not in [m["mutation"] for m in shop.mutations]


def test_fulfillment_webhook_maps_partial_shipments(shop, storefront, receiver):
    storefront.register_webhooks(receiver.url, topics=["ORDERS_UPDATED"])
    placed = shop.create_order([{"sku": "SEN-1000", "quantity": 3}])
    shop.fulfill_order(placed.id, {placed.line_items[0].id: 1}, tracking_number="1Z1")
    (update,) = receiver.received
    order = mapping.order_from_webhook(json.loads(update.body))
    assert order.lines[0].fulfilled_quantity == 1
    assert order.state is OrderState.OPEN


def test_inventory_levels_at_many_locations_are_all_read(sandbox, storefront):
    sandbox.create_product("Spread", [{"sku": "SPREAD", "available": 1}])
    locations = [sandbox.add_location(f"Store {n}") for n in range(queries.LEVELS_PER_ITEM + 4)]
    for n, location in enumerate(locations):
        sandbox.set_inventory("SPREAD", n, location_id=location)
    levels = list(storefront.fetch_inventory_levels())
    assert len(levels) == len(locations) + 1
    by_location = {lv.location_external_id: lv.available for lv in levels}
    assert [by_location[str(loc)] for loc in locations] == list(range(len(locations)))
    assert len(operations(sandbox, "InventoryItemLevels")) == 1


def test_fetch_products_gives_every_product_with_all_variants(shop, storefront):
    big = shop.create_product(
        "Big",
        [{"sku": f"BIG-{n}", "title": f"v{n}"} for n in range(queries.VARIANTS_PER_PRODUCT + 5)],
        tags=["x"],
    )
    products = {p.title: p for p in storefront.fetch_products()}
    assert set(products) == {"Sencha", "Matcha", "Big"}
    sencha = products["Sencha"]
    assert [(v.sku, v.price_cents, v.product_external_id) for v in sencha.variants] == [
        ("SEN-250", 1450, sencha.external_id),
        ("SEN-1000", 4900, sencha.external_id),
    ]
    assert len(products["Big"].variants) == 30 and products["Big"].external_id == str(big.id)
    assert products["Big"].tags == ("x",)
    assert products["Big"].extra["status"] == "active"
    assert len(operations(shop, "ProductVariantsOfProduct")) == 1


def test_storefront_satisfies_the_connector_port(storefront):
    from connector.ports import Storefront

    for name in (
        "fetch_orders_since",
        "fetch_products",
        "fetch_inventory_levels",
        "push_variants",
        "push_orders",
    ):
        assert callable(getattr(storefront, name)), name
    _: Storefront = storefront  # checked by mypy where adapters are type-checked


def test_storefront_can_read_the_catalogue_incrementally_and_says_its_time_zone(storefront):
    from connector.services.sync import IncrementalCatalogue, KnowsTimezone

    assert isinstance(storefront, IncrementalCatalogue) and isinstance(storefront, KnowsTimezone)
    assert storefront.shop_timezone() == "America/New_York"


def test_a_cancellation_refunds_only_what_the_payment_has_left(shop, storefront):
    order = shop.create_order([{"sku": "SEN-1000", "quantity": 2}], notify=False)  # paid 98.00
    line = order.line_items[0]
    sale = order.transactions[0]
    # The merchant already gave 60.00 back by hand (a refund with money and no items).
    shop.shop().orders[order.id].transactions.append(
        type(sale)(id=sale.id + 1, kind="REFUND", amount_cents=6000, parent_id=sale.id))

    storefront.cancel_lines(str(order.id), {str(line.id): 2}, "Cancelled", "store_cancellation:k1")

    (refund,) = shop.shop().orders[order.id].refunds
    assert refund.quantities == {line.id: 2} and refund.amount_cents == 3800  # 98.00 - 60.00, not 98.00
    (money_back,) = refund.transactions
    assert money_back.parent_id == sale.id and money_back.gateway == "bogus"
    assert shop.shop().orders[order.id].financial_status == "refunded"


def test_a_refund_shopify_would_refuse_is_a_user_error_naming_the_field(shop, client):
    order = shop.create_order([{"sku": "SEN-250", "quantity": 1}], notify=False)  # paid 14.50
    owner = f"gid://shopify/Order/{order.id}"
    parent = f"gid://shopify/OrderTransaction/{order.transactions[0].id}"
    too_much = {"orderId": owner, "transactions": [
        {"orderId": owner, "parentId": parent, "gateway": "bogus", "amount": "14.51", "kind": "REFUND"}]}
    answer = client.execute(queries.REFUND_CREATE, {"input": too_much})["refundCreate"]
    assert answer["refund"] is None
    assert answer["userErrors"][0]["field"] == ["transactions", "0", "amount"]
    wrong_parent = {"orderId": owner, "transactions": [
        {"orderId": owner, "parentId": owner, "gateway": "bogus", "amount": "1.00", "kind": "REFUND"}]}
    answer = client.execute(queries.REFUND_CREATE, {"input": wrong_parent})["refundCreate"]
    assert answer["userErrors"][0]["field"] == ["transactions", "0", "parentId"]
    assert shop.shop().orders[order.id].refunds == [] and shop.shop().orders[order.id].financial_status == "paid"
