"""Storefront pushes from the outbox, against the sandbox WooCommerce store over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from comms_support import Clock, deliver, mail_dispatcher, messages

from adapters.mail.sink import SmtpSink
from adapters.woocommerce.client import WooClient
from adapters.woocommerce.storefront import WooStorefront
from connector.db.engine import Database
from connector.db.uow import UnitOfWork
from connector.services import events
from connector.services.catalog import apply_product
from connector.services.events import Changes
from connector.services.orders import cancel_order_units, record_order
from connector.services.stock import set_stock_on_hand
from connector.services.storefront_push import eta_text, pushes_for_order
from sandbox.woocommerce import SandboxWoo

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[SandboxWoo]:
    with SandboxWoo() as store:
        yield store


@pytest.fixture
def storefront(sandbox: SandboxWoo) -> WooStorefront:
    client = WooClient(sandbox.base_url, sandbox.consumer_key, sandbox.consumer_secret, timeout=5,
                       sleep=lambda _: None, max_retries=0)
    return WooStorefront(client)


@pytest.fixture
def woo_shop(db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront) -> dict[str, Any]:
    """A lamp sold past zero in the store, synced into the engine, and one order for two."""
    lamp = sandbox.create_product("Oak table lamp", sku="LAMP-1", price="40.00", stock_quantity=0,
                                  backorders="notify")
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        shop.settings = {"handling_days": 1, "tolerance_days": 2, "default_lead_time_days": 10}
        changes = Changes(NOW)
        for product in storefront.fetch_products():
            apply_product(uow.session, shop, product, changes)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
    order = sandbox.create_order([(lamp["id"], 2)], email="camille@example.com")
    for record in storefront.fetch_orders_since(None):
        record_order(db, shop_id, record, NOW)
    return {"lamp": lamp["id"], "order": order["id"]}


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return {m["key"]: m["value"] for m in obj["meta_data"]}


def test_eta_changes_push_the_orders_status_and_the_variants_date_to_the_store(
    db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront, woo_shop: dict[str, Any],
    smtp_sink: SmtpSink,
) -> None:
    clock = Clock(NOW)
    report = deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock, lambda _: storefront), NOW)
    assert report.dead == report.retried == 0
    (eta_changed,) = messages(db, shop_id, "eta_changed")
    assert eta_changed.state == "sent"

    promised = date(2026, 11, 16)  # today + 10 days lead time + 1 handling day + 2 days tolerance
    status = json.loads(_meta(sandbox.order(woo_shop["order"]))["_backorder_status"])
    assert [(s["sku"], s["status"], s["eta"]) for s in status] == [("LAMP-1", "backordered", promised.isoformat())]
    (note,) = [n for n in sandbox.order_notes(woo_shop["order"]) if n["author"] != "system"]
    assert "LAMP-1: backordered, ETA 2026-11-16" in note["note"] and not note["customer_note"]
    lamp = sandbox.product(woo_shop["lamp"])
    assert lamp["backorders"] == "notify"
    assert _meta(lamp) == {"_backorder_eta": "2026-11-16", "_backorder_text": "Ships by November 16, 2026"}
    assert len(smtp_sink.messages) == 1  # and the customer's confirmation went out


def test_a_push_describes_the_current_state_so_repeating_it_changes_nothing(
    db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront, woo_shop: dict[str, Any],
) -> None:
    first = pushes_for_order(db, shop_id, str(woo_shop["order"]), NOW.date())
    assert first == pushes_for_order(db, shop_id, str(woo_shop["order"]), NOW.date())
    order_push, variant_pushes = first
    assert order_push is not None
    for _ in range(2):
        storefront.push_orders([order_push])
        storefront.push_variants(variant_pushes)
    assert json.loads(_meta(sandbox.order(woo_shop["order"]))["_backorder_status"])[0]["status"] == "backordered"
    assert _meta(sandbox.product(woo_shop["lamp"]))["_backorder_eta"] == "2026-11-16"

    # Stock arrives and covers the order: the next push (from any message) says so.
    set_stock_on_hand(db, shop_id, "LAMP-1", 2, NOW + timedelta(days=1))
    order_push, variant_pushes = pushes_for_order(db, shop_id, str(woo_shop["order"]), (NOW + timedelta(days=1)).date())
    assert order_push is not None and not order_push.backordered
    assert [(ln.status, ln.eta) for ln in order_push.lines] == [("allocated", None)]
    storefront.push_orders([order_push])
    status = json.loads(_meta(sandbox.order(woo_shop["order"]))["_backorder_status"])
    assert [(s["status"], s["eta"]) for s in status] == [("allocated", None)]


def test_an_older_message_delivered_late_pushes_the_current_state(
    db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront, woo_shop: dict[str, Any],
    smtp_sink: SmtpSink,
) -> None:
    cancel_order_units(db, shop_id, str(woo_shop["order"]), NOW, sku="LAMP-1", qty=2)
    clock = Clock(NOW)
    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock, lambda _: storefront), NOW)
    status = json.loads(_meta(sandbox.order(woo_shop["order"]))["_backorder_status"])
    assert [s["status"] for s in status] == ["cancelled"]  # not the "backordered" the message was about
    assert smtp_sink.messages == []  # and no confirmation for a line nobody waits for any more


def test_a_store_that_answers_503_gets_the_push_again_later(
    db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront, woo_shop: dict[str, Any],
    smtp_sink: SmtpSink,
) -> None:
    clock = Clock(NOW)
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, clock, lambda _: storefront)
    sandbox.fail_next(1, status=503, retry_after=None)
    deliver(db, shop_id, dispatcher, NOW)
    (eta_changed,) = messages(db, shop_id, "eta_changed")
    assert eta_changed.state == "pending" and eta_changed.last_error and "503" in eta_changed.last_error
    deliver(db, shop_id, dispatcher, NOW + timedelta(hours=1))
    assert messages(db, shop_id, "eta_changed")[0].state == "sent"
    assert "_backorder_status" in _meta(sandbox.order(woo_shop["order"]))


@pytest.mark.parametrize(
    ("eta_setting", "language", "text"),
    [
        (None, "en", "Ships by November 16, 2026"),  # no setting: the date, as before
        ({"format": "weeks"}, "en", "Ships in about 2 weeks"),  # 13 days, rounded up
        ({"format": "weeks"}, "fr", "Expédié dans environ 2 semaines"),
        ({"format": "hidden"}, "en", ""),
    ],
)
def test_the_shops_eta_format_decides_the_text_the_store_shows_and_the_date_is_still_pushed(
    db: Database, shop_id: int, sandbox: SandboxWoo, storefront: WooStorefront, woo_shop: dict[str, Any],
    eta_setting: dict[str, str] | None, language: str, text: str,
) -> None:
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        extra: dict[str, Any] = {"language": language}
        if eta_setting is not None:
            extra["storefront_eta"] = eta_setting
        shop.settings = {**shop.settings, **extra}
        uow.commit()
    _, variant_pushes = pushes_for_order(db, shop_id, str(woo_shop["order"]), NOW.date())
    storefront.push_variants(variant_pushes)
    # The theme's sentence follows the setting; the status and date fields stay for older snippets.
    assert _meta(sandbox.product(woo_shop["lamp"])) == {"_backorder_eta": "2026-11-16", "_backorder_text": text}
    assert [(p.status, p.eta) for p in variant_pushes] == [("backorder", date(2026, 11, 16))]


def test_a_release_a_week_away_reads_one_week_not_one_weeks() -> None:
    assert eta_text("preorder", date(2026, 11, 9), date(2026, 11, 3), "weeks", "en") == "Pre-order: released in about 1 week"
    assert eta_text("backorder", date(2026, 11, 3), date(2026, 11, 3), "weeks", "fr") == "Expédié dans environ 1 semaine"
    assert eta_text("backorder", date(2026, 11, 25), date(2026, 11, 3), "weeks", "en") == "Ships in about 4 weeks"
