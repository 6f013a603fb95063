"""Orders reach the engine by webhook (stored, then processed) and by poll; bad deliveries are
refused before anything is stored; duplicates and late deliveries change nothing."""

from __future__ import annotations

import json

import requests
from integration_shopify_helpers import event_count, lines_of, order_row
from sqlalchemy import select

from connector.db.models import WebhookEvent
from connector.db.uow import UnitOfWork
from sandbox.shopify import store


def test_orders_by_webhook_are_backordered(harness, installed):
    sb = harness.sandbox
    order = sb.create_order([{"sku": "MUG-1", "quantity": 3}, {"sku": "CAP-1", "quantity": 3}])
    mine = [d for d in sb.deliveries if d.url == harness.webhook_url]
    assert mine and all(d.status == 200 for d in mine)
    assert {d.topic for d in mine} == {"orders/create", "inventory_levels/update"}
    assert ("shopify", installed) in harness.kicks
    assert event_count(harness.db, installed, "orders/create") == 1

    report = harness.process(installed)
    assert report.failed == 0 and report.processed >= 1
    lines = lines_of(harness.db, installed, order.id)
    assert lines["MUG-1"] == {"ordered": 3, "allocated": 0, "backordered": 3, "kind": "backorder"}
    assert lines["CAP-1"] == {"ordered": 3, "allocated": 2, "backordered": 1, "kind": "backorder"}

    # the poll afterwards sees the same versions and changes nothing
    pulled = harness.pull(installed)
    assert pulled.orders.applied == 0 and pulled.orders.unchanged >= 1
    assert lines_of(harness.db, installed, order.id) == lines


def test_orders_by_poll_when_the_webhook_never_came(harness, installed):
    order = harness.sandbox.create_order([{"sku": "MUG-1", "quantity": 4}], notify=False)
    assert event_count(harness.db, installed) == 0
    pulled = harness.pull(installed)
    assert pulled.orders.applied == 1
    assert lines_of(harness.db, installed, order.id)["MUG-1"]["backordered"] == 4
    again = harness.pull(installed)
    assert again.orders.applied == 0 and again.products.applied == 0


def test_cancellation_by_webhook_releases_the_backorder(harness, installed):
    order = harness.sandbox.create_order([{"sku": "MUG-1", "quantity": 2}])
    harness.process(installed)
    harness.sandbox.cancel_order(order.id)
    harness.process(installed)
    assert order_row(harness.db, installed, order.id).state == "closed"
    assert lines_of(harness.db, installed, order.id)["MUG-1"]["backordered"] == 0


def test_a_replayed_event_is_stored_and_processed_once(harness, installed):
    sb = harness.sandbox
    order = sb.create_order([{"sku": "MUG-1", "quantity": 1}])
    created = next(d for d in sb.deliveries if d.topic == "orders/create" and d.url == harness.webhook_url)
    assert sb.redeliver(created) == 200
    r = requests.post(harness.webhook_url, data=created.body, headers=created.headers, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert event_count(harness.db, installed, "orders/create") == 1
    harness.process(installed)
    assert sb.redeliver(created) == 200  # after processing too
    assert harness.process(installed).processed == 0
    assert lines_of(harness.db, installed, order.id)["MUG-1"]["ordered"] == 1


def test_updates_out_of_order_end_at_the_newest(harness, installed):
    sb = harness.sandbox
    order = sb.create_order([{"sku": "MUG-1", "quantity": 1}])
    harness.process(installed)
    shop = sb.shop()
    saved = list(shop.subscriptions)
    shop.subscriptions.clear()  # hold the deliveries back, send them in the wrong order below
    older = store.rest_order(shop, sb.update_order(order.id, email="older@example.com"))
    newer = store.rest_order(shop, sb.update_order(order.id, email="newer@example.com"))
    shop.subscriptions.extend(saved)
    assert older["updated_at"] < newer["updated_at"]

    assert harness.send("orders/updated", newer).status == 200
    assert harness.send("orders/updated", older).status == 200
    harness.process(installed)
    row = order_row(harness.db, installed, order.id)
    assert row.customer_email == "newer@example.com"
    assert row.platform_updated_at.isoformat().replace("+00:00", "Z") == newer["updated_at"]
    with UnitOfWork(harness.db, installed, readonly=True) as uow:
        statuses = list(uow.session.scalars(select(WebhookEvent.status).where(WebhookEvent.topic == "orders/updated")))
    assert statuses == ["processed", "processed"]


def test_bad_deliveries_are_refused_and_nothing_is_stored(harness, installed):
    sb = harness.sandbox
    payload = {"id": 1, "updated_at": "2026-01-01T00:00:00Z"}

    forged = harness.send("orders/create", payload, secret="not-the-app-secret")
    assert forged.status == 401
    no_hmac = harness.send("orders/create", payload, headers={"X-Shopify-Hmac-Sha256": None})
    assert no_hmac.status == 401
    no_shop = harness.send("orders/create", payload, headers={"X-Shopify-Shop-Domain": None})
    assert no_shop.status == 400
    no_topic = harness.send("orders/create", payload, headers={"X-Shopify-Topic": None})
    assert no_topic.status == 400
    bad_json = harness.send("orders/create", b"{not json", )
    assert bad_json.status == 400
    not_object = harness.send("orders/create", b"[1, 2]")
    assert not_object.status == 400
    big = harness.send("orders/create", {"id": 1, "note": "x" * 30_000})
    assert big.status == 413
    unknown = harness.send("orders/create", payload, shop="never-installed.myshopify.com")
    assert unknown.status == 404
    for topic in ("customers/redact", "shop/redact", "customers/data_request", "app/uninstalled"):
        assert harness.send(topic, {"shop_domain": harness.shop}, secret="forged").status == 401

    assert event_count(harness.db, installed) == 0
    assert sb.shop().domain == harness.shop
    assert json.loads(forged.body) == payload


def test_a_payload_that_does_not_map_fails_alone(harness, installed):
    harness.send("orders/create", {"id": 5, "updated_at": "2026-01-01T00:00:00Z"})  # no line_items
    good = harness.sandbox.create_order([{"sku": "MUG-1", "quantity": 1}])
    report = harness.process(installed)
    assert report.failed == 1
    assert lines_of(harness.db, installed, good.id)["MUG-1"]["backordered"] == 1
