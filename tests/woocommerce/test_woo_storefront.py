"""WooStorefront against the sandbox store: syncs, pushes and the wc-auth connect flow."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from adapters.woocommerce.client import WooClient
from adapters.woocommerce.storefront import WooStorefront, authorize_url, parse_auth_callback
from connector.domain.records import LineStatusPush, OrderState, OrderStatusPush, VariantStatusPush
from connector.errors import MappingError, PlatformError, ValidationError


def test_incremental_sync_returns_only_orders_changed_after_the_cursor(sandbox, storefront):
    product = sandbox.create_product("Mug", sku="MUG", stock_quantity=50)
    old = [sandbox.create_order([(product["id"], 1)]) for _ in range(3)]
    first = list(storefront.fetch_orders_since(None))
    assert [o.external_id for o in first] == [str(o["id"]) for o in old]
    cursor = max(o.updated_at for o in first)

    sandbox.advance(60)
    sandbox.update_order(old[0]["id"], status="completed")
    new = sandbox.create_order([(product["id"], 2)], status="on-hold")
    sandbox.reset_counters()
    changed = list(storefront.fetch_orders_since(cursor))
    assert [(o.external_id, o.state) for o in changed] == [
        (str(old[0]["id"]), OrderState.FULFILLED),
        (str(new["id"]), OrderState.OPEN),
    ]
    assert all(o.updated_at > cursor for o in changed)
    call, trash_call = sandbox.request_log
    assert call.query["dates_are_gmt"] == "true" and call.query["orderby"] == "modified"
    assert call.query["order"] == "asc" and call.query["modified_after"] == cursor.strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    assert trash_call.query == {**call.query, "status": "trash"}


def test_trashed_orders_come_back_closed(sandbox, storefront):
    order = sandbox.create_order([])
    (seen,) = storefront.fetch_orders_since(None)
    sandbox.delete_order(order["id"])
    (trashed,) = storefront.fetch_orders_since(seen.updated_at)
    assert trashed.external_id == str(order["id"]) and trashed.state is OrderState.CLOSED


def test_the_cursor_is_compared_in_gmt_not_in_site_time(sandbox, storefront):
    # The sandbox site runs at UTC+1: without dates_are_gmt the cursor is read as site time, an hour off.
    sandbox.create_order([])
    (only,) = storefront.fetch_orders_since(None)
    sandbox.advance(1800)
    recent = sandbox.create_order([])
    assert [o.external_id for o in storefront.fetch_orders_since(only.updated_at)] == [str(recent["id"])]
    site_time = storefront.client.get(
        "orders", {"modified_after": only.updated_at.strftime("%Y-%m-%dT%H:%M:%S")}
    )
    assert {o["id"] for o in site_time} == {int(only.external_id), recent["id"]}


def test_naive_cursors_are_refused(storefront):
    with pytest.raises(ValidationError):
        list(storefront.fetch_orders_since(datetime(2026, 11, 1, 12, 0)))


def test_a_malformed_order_names_the_order_and_field(sandbox, storefront):
    order = sandbox.create_order([])
    sandbox.orders[order["id"]]["status"] = "wc-custom-status"
    with pytest.raises(MappingError) as caught:
        list(storefront.fetch_orders_since(None))
    assert caught.value.field == "status" and str(order["id"]) in caught.value.message


def test_fetch_products_expands_variable_products(sandbox, storefront):
    sandbox.create_product("Mug", sku="MUG", stock_quantity=3)
    shirt = sandbox.create_variable_product(
        "Shirt",
        [
            {"options": {"Size": size}, "sku": f"SH-{size}", "stock_quantity": 0, "backorders": "notify"}
            for size in ("S", "M", "L")
        ],
    )
    sandbox.reset_counters()
    mug, shirt_record = storefront.fetch_products()
    assert [v.sku for v in mug.variants] == ["MUG"]
    assert [v.sku for v in shirt_record.variants] == ["SH-S", "SH-M", "SH-L"]
    assert all(
        v.allows_backorder and v.product_external_id == str(shirt["id"]) for v in shirt_record.variants
    )
    assert [r.path for r in sandbox.request_log] == [
        "/wp-json/wc/v3/products",
        f"/wp-json/wc/v3/products/{shirt['id']}/variations",
    ]


def test_push_variants_sets_backorders_and_eta_meta_in_batches(sandbox, storefront):
    mug = sandbox.create_product("Mug", sku="MUG", stock_quantity=0)
    cup = sandbox.create_product("Cup", sku="CUP", stock_quantity=0, backorders="notify")
    shirt = sandbox.create_variable_product("Shirt", [{"options": {"Size": "M"}, "sku": "SH-M"}])
    variation_id = shirt["variations"][0]
    sandbox.reset_counters()
    storefront.push_variants(
        [
            VariantStatusPush(
                str(mug["id"]), str(mug["id"]), True, "backorder", date(2026, 12, 12), "Ships by 12 Dec"
            ),
            VariantStatusPush(str(cup["id"]), None, False, "in_stock", None, ""),
            VariantStatusPush(
                str(variation_id), str(shirt["id"]), True, "preorder", date(2027, 1, 5), "Pre-order"
            ),
        ]
    )
    mug_now, cup_now = sandbox.product(mug["id"]), sandbox.product(cup["id"])
    assert (mug_now["backorders"], mug_now["stock_status"]) == ("notify", "onbackorder")
    assert {m["key"]: m["value"] for m in mug_now["meta_data"]} == {
        "_backorder_eta": "2026-12-12",
        "_backorder_text": "Ships by 12 Dec",
    }
    assert (cup_now["backorders"], cup_now["stock_status"]) == ("no", "outofstock")
    variation = sandbox.variation(shirt["id"], variation_id)
    assert variation["backorders"] == "notify"
    assert {m["key"]: m["value"] for m in variation["meta_data"]}["_backorder_eta"] == "2027-01-05"
    assert [r.path for r in sandbox.request_log] == [
        "/wp-json/wc/v3/products/batch",
        f"/wp-json/wc/v3/products/{shirt['id']}/variations/batch",
    ]

    # pushing again updates the same meta entries instead of adding new ones
    storefront.push_variants(
        [
            VariantStatusPush(
                str(mug["id"]), str(mug["id"]), True, "backorder", date(2026, 12, 20), "Ships by 20 Dec"
            )
        ]
    )
    meta = sandbox.product(mug["id"])["meta_data"]
    assert len(meta) == 2 and {m["key"]: m["value"] for m in meta}["_backorder_eta"] == "2026-12-20"


def test_push_variants_sends_at_most_100_objects_per_call(sandbox, storefront):
    products = [sandbox.create_product(f"P{n}") for n in range(205)]
    sandbox.reset_counters()
    storefront.push_variants(
        [VariantStatusPush(str(p["id"]), str(p["id"]), True, "backorder", None, "Soon") for p in products]
    )
    assert len(sandbox.request_log) == 3
    assert all(sandbox.product(p["id"])["backorders"] == "notify" for p in products)


def test_push_variants_reports_refused_objects(sandbox, storefront):
    with pytest.raises(PlatformError) as caught:
        storefront.push_variants([VariantStatusPush("999999", None, True, "backorder", None, "")])
    assert caught.value.data["refused"] == [999999]


def test_push_orders_writes_a_private_note_a_customer_note_and_meta(sandbox, storefront):
    product = sandbox.create_product("Mug", sku="MUG", stock_quantity=0, backorders="notify")
    order = sandbox.create_order([(product["id"], 2)])
    line_id = str(order["line_items"][0]["id"])
    storefront.push_orders(
        [
            OrderStatusPush(
                order_external_id=str(order["id"]),
                backordered=True,
                lines=(LineStatusPush(line_id, "MUG", "backordered", date(2026, 12, 12)),),
                note="Waiting on supplier PO-17.",
                customer_note="Your mug is on backorder and should ship by 12 December.",
            )
        ]
    )
    notes = sandbox.order_notes(order["id"])
    private = [n for n in notes if not n["customer_note"] and "MUG" in n["note"] and n["author"] != "system"]
    customer = [n for n in notes if n["customer_note"]]
    assert len(private) == 1 and "backordered, ETA 2026-12-12" in private[0]["note"]
    assert "PO-17" in private[0]["note"]
    assert [n["note"] for n in customer] == ["Your mug is on backorder and should ship by 12 December."]
    assert [(e["kind"], e["to"]) for e in sandbox.emails] == [("customer_note", "ada@example.com")]
    meta = {m["key"]: m["value"] for m in sandbox.order(order["id"])["meta_data"]}
    assert json.loads(meta["_backorder_status"]) == [
        {"line": line_id, "sku": "MUG", "status": "backordered", "eta": "2026-12-12"}
    ]


def test_push_orders_without_customer_note_stays_private(sandbox, storefront):
    order = sandbox.create_order([])
    storefront.push_orders([OrderStatusPush(str(order["id"]), False, ())])
    assert not any(n["customer_note"] for n in sandbox.order_notes(order["id"]))


def test_complete_order_with_tracking(sandbox, storefront):
    order = sandbox.create_order([])
    storefront.complete_order_with_tracking(str(order["id"]), "Tracking: DHL 00340434161094042557")
    done = sandbox.order(order["id"])
    assert done["status"] == "completed" and done["date_completed_gmt"] is not None
    assert any(n["customer_note"] and "DHL" in n["note"] for n in sandbox.order_notes(order["id"]))
    assert [e["kind"] for e in sandbox.emails] == ["customer_note", "customer_completed_order"]


def test_fetch_variants_flattens_products(sandbox, storefront):
    sandbox.create_product("Mug", sku="MUG")
    sandbox.create_variable_product("Shirt", [{"options": {"Size": s}, "sku": f"SH-{s}"} for s in "SM"])
    assert [v.sku for v in storefront.fetch_variants()] == ["MUG", "SH-S", "SH-M"]


def test_the_demo_store_seeds_and_syncs(sandbox, storefront):
    from sandbox.woocommerce import seed_demo_store

    seeded = seed_demo_store(sandbox)
    orders = list(storefront.fetch_orders_since(None))
    assert len(orders) == len(seeded["orders"]) == 3
    assert {o.state for o in orders} == {OrderState.OPEN, OrderState.PENDING}
    mug_line = orders[0].lines[0]
    assert mug_line.sku == "MUG-ENAMEL" and mug_line.backordered_hint == 1


def test_register_webhooks_is_idempotent(sandbox, storefront, receiver):
    first = storefront.register_webhooks(receiver.url, "secret")
    second = storefront.register_webhooks(receiver.url, "secret")
    assert first == second and len(sandbox.webhooks) == 4
    assert sorted(h["topic"] for h in sandbox.webhooks.values()) == sorted(first)
    assert sandbox.webhook_secret(first["order.updated"]) == "secret"


# ---------------------------------------------------------------------- connect flow


def test_wc_auth_connect_flow_end_to_end(sandbox, receiver):
    url = authorize_url(
        sandbox.base_url,
        "Backorder Connector",
        "pending-7f3a",
        receiver.url + "/woo/return",
        receiver.url + "/woo/callback",
    )
    assert (
        WooStorefront.authorize_url(
            sandbox.base_url,
            "Backorder Connector",
            "pending-7f3a",
            receiver.url + "/woo/return",
            receiver.url + "/woo/callback",
        )
        == url
    )
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["read_write"] and query["user_id"] == ["pending-7f3a"]

    merchant = requests.get(url, allow_redirects=False, timeout=5)
    assert merchant.status_code == 302
    back = urlsplit(merchant.headers["Location"])
    assert back.path == "/woo/return"
    assert parse_qs(back.query) == {"success": ["1"], "user_id": ["pending-7f3a"]}

    (callback,) = [r for r in receiver.received if r.path == "/woo/callback"]
    assert callback.method == "POST"
    keys = parse_auth_callback(callback.body)
    assert keys.user_id == "pending-7f3a" and keys.key_permissions == "read_write"
    assert "cs_" not in repr(keys)
    # the new keys work against the store
    client = WooClient(sandbox.base_url, keys.consumer_key, keys.consumer_secret)
    assert client.get("orders") == []


def test_wc_auth_keys_are_dropped_when_the_callback_fails(sandbox, receiver):
    from werkzeug.wrappers import Response

    receiver.answer = lambda r: Response("nope", status=500)
    url = authorize_url(sandbox.base_url, "App", "u1", receiver.url + "/r", receiver.url + "/cb")
    assert requests.get(url, allow_redirects=False, timeout=5).status_code == 401
    assert len(sandbox.keys) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"key_id": 1}',
        b'{"key_id": 1, "user_id": "u", "consumer_key": "x", "consumer_secret": "y",'
        b' "key_permissions": "read_write"}',
    ],
)
def test_bad_auth_callbacks_raise_mapping_error(body):
    with pytest.raises(MappingError):
        parse_auth_callback(body)


def test_authorize_url_refuses_plain_http_stores():
    with pytest.raises(ValidationError):
        authorize_url("http://shop.example", "App", "u", "https://app/r", "https://app/cb")


def test_backordered_stock_in_the_sandbox_matches_woocommerce(sandbox):
    product = sandbox.create_product("Mug", sku="MUG", stock_quantity=1, backorders="notify")
    order = sandbox.create_order([(product["id"], 3)])
    assert sandbox.product(product["id"])["stock_quantity"] == -2
    assert sandbox.product(product["id"])["stock_status"] == "onbackorder"
    sandbox.update_order(order["id"], status="cancelled")
    assert sandbox.product(product["id"])["stock_quantity"] == 1
    assert sandbox.product(product["id"])["stock_status"] == "instock"
    assert sandbox.now() - sandbox.now() == timedelta(0)


def test_an_order_changed_mid_paging_does_not_make_another_slip_through(sandbox, storefront):
    orders = [sandbox.create_order([]) for _ in range(150)]
    sandbox.reset_counters()
    pull = storefront.fetch_orders_since(None)
    first_page = [next(pull) for _ in range(100)]
    sandbox.update_order(orders[0]["id"], status="completed")  # moves to the end, shifts the rest back
    rest = list(pull)
    seen = {o.external_id for o in first_page + rest}
    assert seen == {str(o["id"]) for o in orders}
    # 2 pages, the same 2 again after the skip was noticed, then the trash pass
    assert len(sandbox.request_log) == 5


def test_a_store_changing_faster_than_we_page_is_reported_not_lost(sandbox, storefront):
    orders = [sandbox.create_order([]) for _ in range(150)]
    pull = storefront.fetch_orders_since(None, max_repeats=0)
    for _ in range(100):
        next(pull)
    sandbox.update_order(orders[0]["id"], status="completed")
    with pytest.raises(PlatformError) as caught:
        list(pull)
    assert caught.value.retryable and "149 of 150" in caught.value.message


def _mug_push(order: dict, line_id: str, eta: date) -> OrderStatusPush:
    return OrderStatusPush(
        order_external_id=str(order["id"]), backordered=True,
        lines=(LineStatusPush(line_id, "MUG", "backordered", eta),),
        customer_note=f"Your mug should ship by {eta.isoformat()}.",
    )


def test_a_push_retried_after_its_answer_was_lost_adds_no_second_note(sandbox, storefront):
    product = sandbox.create_product("Mug", sku="MUG", stock_quantity=0, backorders="notify")
    order = sandbox.create_order([(product["id"], 2)])
    push = _mug_push(order, str(order["line_items"][0]["id"]), date(2026, 12, 12))
    # The push reads the private notes, adds one, reads the customer notes, adds one: the store
    # saves that customer note, then the connection drops. The push fails retryable (it may have
    # been applied) and the outbox delivers it again.
    sandbox.drop_next(1, after_apply=True, skip=3)
    with pytest.raises(PlatformError) as caught:
        storefront.push_orders([push])
    assert caught.value.retryable and sandbox.connections_dropped == 1
    storefront.push_orders([push])

    notes = sandbox.order_notes(order["id"])
    assert len([n for n in notes if n["customer_note"]]) == 1
    assert len([n for n in notes if not n["customer_note"] and "MUG" in n["note"] and n["author"] != "system"]) == 1
    assert [e["kind"] for e in sandbox.emails] == ["customer_note"]  # the customer is told once


def test_a_new_eta_is_a_new_note_but_the_same_one_again_is_not(sandbox, storefront):
    product = sandbox.create_product("Mug", sku="MUG", stock_quantity=0, backorders="notify")
    order = sandbox.create_order([(product["id"], 2)])
    line_id = str(order["line_items"][0]["id"])
    first, second = _mug_push(order, line_id, date(2026, 12, 12)), _mug_push(order, line_id, date(2027, 1, 9))
    for push in (first, first, second, first):
        storefront.push_orders([push])
    customer = [n["note"] for n in sandbox.order_notes(order["id"]) if n["customer_note"]]
    assert customer == [first.customer_note, second.customer_note, first.customer_note]  # newest first
