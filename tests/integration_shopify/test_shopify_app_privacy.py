"""app/uninstalled and the mandatory compliance topics, sent as signed webhooks."""

from __future__ import annotations

from integration_shopify_helpers import event_count, lines_of, order_row, shop_row
from sqlalchemy import func, select, text

from connector.db.models import OutboxMessage, WebhookEvent
from connector.db.uow import UnitOfWork


def test_uninstall_drops_credentials_and_ignores_further_webhooks(harness, installed):
    sb = harness.sandbox
    sb.uninstall_app()
    assert any(d.topic == "app/uninstalled" and d.status == 200 for d in sb.deliveries)
    shop = shop_row(harness.db, installed)
    assert shop.status == "uninstalled" and shop.credentials is None and shop.uninstalled_at is not None

    late = harness.send("orders/create", {"id": 7, "updated_at": "2026-01-01T00:00:00Z", "line_items": []})
    assert late.status == 200 and late.payload["id"] == 7
    assert event_count(harness.db, installed) == 0
    assert harness.pull(installed).skipped == "shop is uninstalled"
    token = sb.sign_session_token()
    r = harness.browser.get(f"{harness.url}/shopify/api/backorders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401

    # installing again brings the shop back with its data
    harness.browser.cookies.clear()
    assert harness.install() == installed
    assert shop_row(harness.db, installed).status == "installed"


def test_customers_redact_erases_pii_and_keeps_quantities(harness, installed):
    sb = harness.sandbox
    order = sb.create_order([{"sku": "MUG-1", "quantity": 2}], email="ada@example.com")
    other = sb.create_order([{"sku": "MUG-1", "quantity": 1}], email="grace@example.com", first_name="Grace",
                            last_name="Hopper")
    harness.process(installed)
    before = lines_of(harness.db, installed, order.id)
    customer_id = order.customer["id"]

    r = harness.send("customers/redact", {
        "shop_id": sb.shop().id, "shop_domain": harness.shop,
        "customer": {"id": customer_id, "email": "ada@example.com", "phone": None},
        "orders_to_redact": [order.id],
    })
    assert r.status == 200

    row = order_row(harness.db, installed, order.id)
    assert (row.customer_email, row.customer_name, row.ship_to, row.customer_external_id) == (None, None, None, None)
    assert lines_of(harness.db, installed, order.id) == before
    kept = order_row(harness.db, installed, other.id)
    assert kept.customer_email == "grace@example.com" and kept.ship_to is not None
    with UnitOfWork(harness.db, installed, readonly=True) as uow:
        payloads = list(uow.session.scalars(
            select(WebhookEvent.payload).where(WebhookEvent.resource_id == str(order.id))))
    assert payloads and all(p is None for p in payloads)
    with harness.db.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM sales_orders")) for v in row)
        dump += " ".join(str(v) for row in conn.execute(text("SELECT * FROM webhook_events")) for v in row)
    assert "ada@example.com" not in dump and "Lovelace" not in dump


def test_customers_data_request_queues_the_customers_data_for_the_merchant(harness, installed):
    sb = harness.sandbox
    order = sb.create_order([{"sku": "MUG-1", "quantity": 2}], email="ada@example.com")
    harness.process(installed)
    payload = {"shop_id": sb.shop().id, "shop_domain": harness.shop,
               "customer": {"id": order.customer["id"], "email": "ada@example.com"},
               "orders_requested": [order.id], "data_request": {"id": 9999}}
    first = harness.send("customers/data_request", payload, event_id="data-request-1")
    again = harness.send("customers/data_request", payload, event_id="data-request-1")
    assert first.status == 200 and again.status == 200
    with UnitOfWork(harness.db, installed, readonly=True) as uow:
        reports = list(uow.session.scalars(select(OutboxMessage.payload).where(
            OutboxMessage.kind == "customer_data_report")))
    assert len(reports) == 1
    report = reports[0]
    assert report["data_request"] == {"id": 9999}
    assert [o["external_id"] for o in report["orders"]] == [str(order.id)]
    assert report["orders"][0]["email"] == "ada@example.com"
    assert report["orders"][0]["lines"][0]["ordered"] == 2


def test_shop_redact_deletes_every_row_of_the_shop(harness, installed):
    sb = harness.sandbox
    sb.create_order([{"sku": "MUG-1", "quantity": 2}])
    harness.process(installed)
    sb.uninstall_app()
    r = harness.send("shop/redact", {"shop_id": sb.shop().id, "shop_domain": harness.shop})
    assert r.status == 200
    with UnitOfWork(harness.db, readonly=True) as uow:
        for table in ("shops", "variants", "sales_orders", "order_lines", "webhook_events", "sync_cursors",
                      "stock_levels", "locations"):
            assert uow.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
        assert uow.session.scalar(select(func.count(OutboxMessage.id))) == 0
    # the store is unknown now
    assert harness.send("orders/create", {"id": 1, "updated_at": "2026-01-01T00:00:00Z"}).status == 404


def test_a_late_retry_of_an_old_uninstall_does_not_remove_a_reinstall(harness, installed):
    sb = harness.sandbox
    old_uninstall = "2020-01-01T00:00:00Z"  # triggered long before the current install
    r = harness.send("app/uninstalled", {"domain": harness.shop},
                     headers={"X-Shopify-Triggered-At": old_uninstall})
    assert r.status == 200
    assert shop_row(harness.db, installed).status == "installed"
    assert sb.shop().subscriptions  # still subscribed; a current uninstall still works:
    sb.uninstall_app()
    assert shop_row(harness.db, installed).status == "uninstalled"


def test_privacy_webhooks_for_a_shop_we_hold_nothing_of_still_get_200(harness, installed):
    sb = harness.sandbox
    harness.process(installed)
    sb.uninstall_app()
    first = harness.send("shop/redact", {"shop_id": sb.shop().id, "shop_domain": harness.shop})
    assert first.status == 200
    # Shopify retries, and may send the compliance topics for a shop that is already gone
    again = harness.send("shop/redact", {"shop_id": sb.shop().id, "shop_domain": harness.shop})
    assert again.status == 200
    stranger = "never-installed.myshopify.com"
    for topic in ("shop/redact", "customers/redact", "customers/data_request", "app/uninstalled"):
        r = harness.send(topic, {"shop_domain": stranger, "customer": {"id": 1}}, shop=stranger)
        assert r.status == 200, topic
        # still only after the signature: a forged one is refused as for any store
        assert harness.send(topic, {"shop_domain": stranger}, shop=stranger, secret="forged").status == 401, topic
    # ordinary topics for an unknown store are still refused
    assert harness.send("orders/create", {"id": 1, "updated_at": "2026-01-01T00:00:00Z"}, shop=stranger).status == 404
    with UnitOfWork(harness.db, readonly=True) as uow:
        assert uow.session.execute(text("SELECT count(*) FROM shops")).scalar_one() == 0
