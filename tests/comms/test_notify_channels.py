"""Per-kind channel: ``notify_by[kind]`` is "email", "store_note" or "off"."""

from __future__ import annotations

from datetime import UTC, datetime

from comms_support import (
    Clock,
    crash_after_delivery,
    customer_mails,
    deliver,
    mail_dispatcher,
    messages,
    place_order,
    seed_catalogue,
    sync_store,
)

from adapters.mail.sink import SmtpSink
from adapters.shopify.storefront import ShopifyStorefront
from adapters.woocommerce.storefront import WooStorefront
from connector.db.engine import Database
from connector.services.notifications import channel_for
from sandbox.shopify.server import SandboxShopify
from sandbox.woocommerce import SandboxWoo

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def test_the_channel_is_read_per_kind_and_the_old_switch_still_turns_a_notice_off() -> None:
    assert channel_for({}, "delay_notice") == "email"
    assert channel_for({"notify_by": {"delay_notice": "store_note"}}, "delay_notice") == "store_note"
    assert channel_for({"notify_by": {"delay_notice": "store_note"}}, "ready_notice") == "email"
    assert channel_for({"notify_by": {"delay_notice": "off"}}, "delay_notice") == "off"
    assert channel_for({"notify_by": {"delay_notice": "carrier pigeon"}}, "delay_notice") == "email"
    assert channel_for({"emails": {"delay_notice": False}, "notify_by": {"delay_notice": "email"}},
                       "delay_notice") == "off"


def test_store_note_sends_a_woocommerce_customer_note_and_no_email(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    lamp = woo_sandbox.create_product("Oak <script>lamp</script>", sku="LAMP-1", price="40.00", stock_quantity=0,
                                      backorders="notify")
    order = woo_sandbox.create_order([(lamp["id"], 2)], email="camille@example.com")
    sync_store(db, shop_id, woo_storefront, NOW, notify_by={"backorder_confirmation": "store_note"})

    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: woo_storefront)
    report = deliver(db, shop_id, dispatcher, NOW)
    assert report.dead == report.retried == 0
    assert customer_mails(smtp_sink) == []
    (note,) = [n for n in woo_sandbox.order_notes(order["id"]) if n["customer_note"]]
    assert note["note"].startswith(f"Your order {order['id']}: estimated shipping date")
    assert "2 x Oak <script>lamp</script>" in note["note"]  # plain text: the store escapes it on display
    assert [e["kind"] for e in woo_sandbox.emails if e["order_id"] == order["id"]] == ["customer_note"]
    (confirmation,) = messages(db, shop_id, "backordered")
    assert confirmation.state == "sent"

    # Claimed again after a crash: the delivery receipt keeps the store from noting it twice.
    crash_after_delivery(db, shop_id, confirmation.id)
    deliver(db, shop_id, dispatcher, NOW)
    assert messages(db, shop_id, "backordered")[0].attempts == 2
    assert len([n for n in woo_sandbox.order_notes(order["id"]) if n["customer_note"]]) == 1


def test_off_sends_nothing_at_all(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    lamp = woo_sandbox.create_product("Oak table lamp", sku="LAMP-1", price="40.00", stock_quantity=0,
                                      backorders="notify")
    order = woo_sandbox.create_order([(lamp["id"], 1)], email="camille@example.com")
    sync_store(db, shop_id, woo_storefront, NOW, notify_by={"backorder_confirmation": "off"})
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: woo_storefront), NOW)
    assert customer_mails(smtp_sink) == []
    assert [n for n in woo_sandbox.order_notes(order["id"]) if n["customer_note"]] == []
    assert messages(db, shop_id, "backordered")[0].state == "sent"  # done with, not retried


def test_store_note_on_shopify_falls_back_to_email(
    db: Database, shop_id: int, shopify_sandbox: SandboxShopify, shopify_storefront: ShopifyStorefront,
    smtp_sink: SmtpSink,
) -> None:
    shopify_sandbox.create_product("Oak table lamp", [{"sku": "LAMP-1", "price": 4000, "available": 0,
                                                       "inventory_policy": "continue"}])
    shopify_sandbox.create_order([{"sku": "LAMP-1", "quantity": 1}], email="camille@example.com", notify=False)
    sync_store(db, shop_id, shopify_storefront, NOW, notify_by={"backorder_confirmation": "store_note"})
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, Clock(NOW), lambda _: shopify_storefront), NOW)
    (mail,) = customer_mails(smtp_sink)
    assert "camille@example.com" in str(mail["To"]) and "#1001" in str(mail["Subject"])


def test_a_shop_without_a_store_sends_store_notes_by_email(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id, notify_by={"backorder_confirmation": "store_note"})
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), clock.now)
    (mail,) = customer_mails(smtp_sink)
    assert "#1001" in str(mail["Subject"])
