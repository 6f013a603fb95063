"""In "storefront" mode a customer's cancellation is also cancelled and refunded on the store,
through the outbox, against the sandbox stores over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from comms_support import (
    SETTINGS,
    Clock,
    cancel_link_token,
    days,
    deliver,
    line,
    mail_dispatcher,
    make_pending_again,
    messages,
    sync_store,
)

from adapters.mail.sink import SmtpSink
from adapters.shopify.storefront import ShopifyStorefront
from adapters.woocommerce.storefront import WooStorefront
from connector.db.engine import Database
from connector.services.cancellation import cancel_from_link
from sandbox.shopify.server import SandboxShopify
from sandbox.woocommerce import SandboxWoo

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)  # the day after the sandbox store opened


def _woo_order(db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront, **settings: Any) -> int:
    """One order for two lamps the store has none of, known to the engine (both units wait)."""
    lamp = sandbox.create_product("Oak table lamp", sku="LAMP-1", price="40.00", stock_quantity=0,
                                  backorders="notify")
    order = sandbox.create_order([(lamp["id"], 2)], email="camille@example.com")
    sync_store(db, shop_id, storefront, NOW, **settings)
    return int(order["id"])


def _store_cancellations(db: Database, shop_id: int) -> list[Any]:
    return messages(db, shop_id, "store_cancellation")


def test_a_storefront_mode_cancellation_refunds_the_units_on_woocommerce_once(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    order_id = _woo_order(db, shop_id, woo_sandbox, woo_storefront, cancellation_mode="storefront")
    line_item = woo_sandbox.order(order_id)["line_items"][0]
    result = cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order_id)), NOW)
    assert (result.cancelled_units, result.mode) == (2, "storefront")
    assert line(db, shop_id, str(line_item["id"])).cancelled == 2

    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: woo_storefront)
    report = deliver(db, shop_id, dispatcher, NOW)
    assert report.dead == report.retried == 0
    (refund,) = woo_sandbox.order_refunds(order_id)
    assert refund["amount"] == "80.00" and refund["refunded_payment"] is True
    assert [(r["quantity"], r["total"]) for r in refund["line_items"]] == [(-2, "-80.00")]
    (store_cancellation,) = _store_cancellations(db, shop_id)
    assert store_cancellation.state == "sent"
    assert f"[{store_cancellation.idempotency_key}]" in refund["reason"]
    assert woo_sandbox.order(order_id)["refunds"][0]["total"] == "-80.00"
    assert woo_sandbox.product(line_item["product_id"])["stock_quantity"] == 0  # the two units went back

    # A crash after the store said yes: the outbox delivers again, the store is not refunded twice.
    make_pending_again(db, shop_id, store_cancellation.id)
    deliver(db, shop_id, dispatcher, NOW + timedelta(minutes=5))
    assert len(woo_sandbox.order_refunds(order_id)) == 1
    assert _store_cancellations(db, shop_id)[0].state == "sent"


def test_dashboard_mode_leaves_the_store_alone(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    order_id = _woo_order(db, shop_id, woo_sandbox, woo_storefront)
    cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order_id)), NOW)
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: woo_storefront), NOW)
    assert woo_sandbox.order_refunds(order_id) == []
    assert _store_cancellations(db, shop_id) == []
    (task,) = messages(db, shop_id, "cancellation_requested")
    assert task.payload["mode"] == "dashboard" and task.state == "sent"


def test_a_store_that_fails_gets_the_refund_again_later(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    order_id = _woo_order(db, shop_id, woo_sandbox, woo_storefront, cancellation_mode="storefront")
    cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order_id)), NOW)
    # Everything else is delivered first, so the failure hits the refund.
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW)), NOW)
    make_pending_again(db, shop_id, _store_cancellations(db, shop_id)[0].id)
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: woo_storefront)

    woo_sandbox.fail_next(1, status=503, retry_after=None)
    deliver(db, shop_id, dispatcher, NOW)
    (pending,) = _store_cancellations(db, shop_id)
    assert pending.state == "pending" and pending.last_error and "503" in pending.last_error
    assert woo_sandbox.order_refunds(order_id) == []

    deliver(db, shop_id, dispatcher, NOW + timedelta(hours=1))
    assert _store_cancellations(db, shop_id)[0].state == "sent"
    assert len(woo_sandbox.order_refunds(order_id)) == 1


def test_a_store_that_keeps_refusing_leaves_a_dead_letter_and_a_task_for_the_merchant(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    order_id = _woo_order(db, shop_id, woo_sandbox, woo_storefront, cancellation_mode="storefront")
    item = woo_sandbox.order(order_id)["line_items"][0]
    # The merchant already refunded both units by hand: the store refuses a second refund.
    woo_sandbox.create_refund(order_id, {"amount": "80.00", "reason": "by hand",
                                         "line_items": [{"id": item["id"], "quantity": 2, "refund_total": "80.00"}]})
    cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order_id)), NOW)
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: woo_storefront)

    moment = NOW
    for _ in range(12):  # the outbox's back-off, a day apart: past every attempt
        deliver(db, shop_id, dispatcher, moment)
        moment += days(1)
    (dead,) = _store_cancellations(db, shop_id)
    assert dead.state == "dead" and dead.attempts == 8 and "refund" in (dead.last_error or "").lower()
    (task,) = messages(db, shop_id, "store_cancellation_failed")
    assert task.target == "merchant" and task.payload["todo"] == "cancel and refund these items in the store"
    assert task.payload["lines"] == [{"sku": "LAMP-1", "line": str(item["id"]), "units": 2}]
    assert len(woo_sandbox.order_refunds(order_id)) == 1  # only the merchant's own


def test_a_storefront_mode_cancellation_refunds_the_units_on_shopify_once(
    db: Database, shop_id: int, shopify_sandbox: SandboxShopify, shopify_storefront: ShopifyStorefront,
    smtp_sink: SmtpSink,
) -> None:
    shopify_sandbox.create_product("Oak table lamp", [{"sku": "LAMP-1", "price": 4000, "available": 0,
                                                       "inventory_policy": "continue"}])
    order = shopify_sandbox.create_order([{"sku": "LAMP-1", "quantity": 2}], email="camille@example.com",
                                         notify=False)
    sync_store(db, shop_id, shopify_storefront, NOW, cancellation_mode="storefront")
    assert line(db, shop_id, str(order.line_items[0].id)).backordered == 2

    cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order.id)), NOW)
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: shopify_storefront)
    report = deliver(db, shop_id, dispatcher, NOW)
    assert report.dead == report.retried == 0

    shop = shopify_sandbox.shop()
    (refund,) = shop.orders[order.id].refunds
    (store_cancellation,) = _store_cancellations(db, shop_id)
    assert refund.quantities == {order.line_items[0].id: 2}
    assert refund.restock_type == {order.line_items[0].id: "CANCEL"} and refund.amount_cents == 8000
    assert refund.note and f"[{store_cancellation.idempotency_key}]" in refund.note
    assert shop.orders[order.id].line_items[0].current == 0 and shop.orders[order.id].financial_status == "refunded"

    make_pending_again(db, shop_id, store_cancellation.id)
    deliver(db, shop_id, dispatcher, NOW + timedelta(minutes=5))
    assert len(shop.orders[order.id].refunds) == 1
    assert [m["mutation"] for m in shopify_sandbox.mutations].count("refundCreate") == 1


ORDER_MONEY = """
query OrderMoney($id: ID!) {
  order(id: $id) {
    displayFinancialStatus
    totalRefundedSet { shopMoney { amount currencyCode } }
    transactions(first: 10) { kind }
    refunds(first: 10) {
      note
      totalRefundedSet { shopMoney { amount } }
      transactions(first: 10) {
        nodes { kind status gateway amountSet { shopMoney { amount } } parentTransaction { id kind } }
      }
    }
  }
}
"""


def test_a_shopify_cancellation_returns_the_cancelled_units_price_and_nothing_more(
    db: Database, shop_id: int, shopify_sandbox: SandboxShopify, shopify_storefront: ShopifyStorefront,
    smtp_sink: SmtpSink,
) -> None:
    # A lamp the shop has none of (backordered) and a vase on the shelf, in one paid order.
    shopify_sandbox.create_product("Oak table lamp", [{"sku": "LAMP-1", "price": 4250, "available": 0,
                                                       "inventory_policy": "continue"}])
    shopify_sandbox.create_product("Stone vase", [{"sku": "VASE-1", "price": 1999, "available": 5}])
    order = shopify_sandbox.create_order([{"sku": "LAMP-1", "quantity": 3}, {"sku": "VASE-1", "quantity": 1}],
                                         notify=False)
    sync_store(db, shop_id, shopify_storefront, NOW, cancellation_mode="storefront")
    lamp, vase = order.line_items
    assert (line(db, shop_id, str(lamp.id)).backordered, line(db, shop_id, str(vase.id)).backordered) == (3, 0)

    cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order.id)), NOW)
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: shopify_storefront), NOW)

    # Shopify's flow: the suggested refund for the three lamps, then refundCreate with its transaction.
    refund_calls = [m["args"]["input"] for m in shopify_sandbox.mutations if m["mutation"] == "refundCreate"]
    (sent,) = refund_calls
    (transaction,) = sent["transactions"]
    assert (transaction["kind"], transaction["amount"], transaction["gateway"]) == ("REFUND", "127.50", "bogus")
    assert transaction["parentId"] == f"gid://shopify/OrderTransaction/{order.transactions[0].id}"

    seen = shopify_storefront.client.execute(ORDER_MONEY, {"id": f"gid://shopify/Order/{order.id}"})["order"]
    assert seen["totalRefundedSet"]["shopMoney"] == {"amount": "127.50", "currencyCode": "USD"}
    assert seen["displayFinancialStatus"] == "PARTIALLY_REFUNDED"  # the vase stays paid
    (refund,) = seen["refunds"]
    assert refund["totalRefundedSet"]["shopMoney"]["amount"] == "127.50"
    (money_back,) = refund["transactions"]["nodes"]
    assert money_back["kind"] == "REFUND" and money_back["status"] == "SUCCESS"
    assert money_back["amountSet"]["shopMoney"]["amount"] == "127.50"
    assert money_back["parentTransaction"]["kind"] == "SALE"
    assert [t["kind"] for t in seen["transactions"]] == ["SALE", "REFUND"]

    # A crash after Shopify said yes: the retry finds the refund by its note and sends nothing.
    (store_cancellation,) = _store_cancellations(db, shop_id)
    make_pending_again(db, shop_id, store_cancellation.id)
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: shopify_storefront),
            NOW + timedelta(minutes=5))
    again = shopify_storefront.client.execute(ORDER_MONEY, {"id": f"gid://shopify/Order/{order.id}"})["order"]
    assert again["totalRefundedSet"]["shopMoney"]["amount"] == "127.50"
    assert [m["mutation"] for m in shopify_sandbox.mutations].count("refundCreate") == 1


def test_an_unpaid_shopify_order_gets_its_units_cancelled_without_money_moving(
    db: Database, shop_id: int, shopify_sandbox: SandboxShopify, shopify_storefront: ShopifyStorefront,
    smtp_sink: SmtpSink,
) -> None:
    shopify_sandbox.create_product("Oak table lamp", [{"sku": "LAMP-1", "price": 4000, "available": 0,
                                                       "inventory_policy": "continue"}])
    order = shopify_sandbox.create_order([{"sku": "LAMP-1", "quantity": 2}], financial_status="pending",
                                         notify=False)
    sync_store(db, shop_id, shopify_storefront, NOW, cancellation_mode="storefront")
    cancel_from_link(db, SETTINGS.secret_key, cancel_link_token(shop_id, str(order.id)), NOW)
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: shopify_storefront), NOW)

    (refund,) = shopify_sandbox.shop().orders[order.id].refunds
    assert refund.quantities == {order.line_items[0].id: 2} and refund.transactions == []
    assert refund.amount_cents == 0 and shopify_sandbox.shop().orders[order.id].financial_status == "pending"
    assert _store_cancellations(db, shop_id)[0].state == "sent"
