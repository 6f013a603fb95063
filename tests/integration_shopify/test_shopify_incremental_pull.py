"""Pulls after the first read only what changed (products, stock, orders), re-read everything
once a day, backfill a big shop through one bulk operation, and take the shop's time zone from
Shopify. Real HTTP against the sandbox Shopify, whose request log shows what each pull asked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.shopify.gateway import ShopifyGateway
from connector.db.engine import Database
from connector.db.models import SalesOrder, Shop, StockLevel, Variant
from connector.db.uow import UnitOfWork
from connector.services import shops
from connector.services.merchant_pages import save_shop_settings
from connector.services.sync import PullReport, pull_store
from sandbox.shopify.server import SandboxShopify

API_VERSION = "2025-01"


class Store:
    """One installed Shopify shop and the pulls the job would run, at moments the test picks."""

    def __init__(self, sandbox: SandboxShopify, db: Database, bulk_backfill_orders: int = 2000) -> None:
        self.sb = sandbox
        self.db = db
        self.gateway = ShopifyGateway(sandbox.api_key, sandbox.api_secret, API_VERSION, lambda _: sandbox.base_url,
                                      timeout=5, client_options={"backoff_base": 0.01, "backoff_cap": 0.05},
                                      bulk_backfill_orders=bulk_backfill_orders)
        self.shop_id, _ = shops.install_shop(db, "shopify", sandbox.default_shop,
                                             {"access_token": sandbox.issue_token()}, datetime.now(UTC))
        self.seen = 0

    def pull(self, now: datetime) -> PullReport:
        self.seen = len(self.sb.requests)
        storefront = self.gateway.storefront_for(shops.shop_access(self.db, self.shop_id), self.db)
        return pull_store(self.db, self.shop_id, storefront, now)

    def asked(self) -> list[tuple[str, Any]]:
        """(operation, its search query) of each request the last pull had answered. An attempt the
        sandbox refused (THROTTLED when the bucket ran low on a slow run, an injected fault) is
        logged without an operation and sent again by the client, so it is not a query asked."""
        return [(r["operation"], (r.get("variables") or {}).get("query"))
                for r in self.sb.requests[self.seen:] if "operation" in r]

    def orders_held(self) -> int:
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            return int(uow.session.scalar(select(func.count(SalesOrder.id))) or 0)

    def variant(self, sku: str) -> Variant:
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            found = uow.session.scalars(select(Variant).where(Variant.sku == sku)).one()
            uow.session.expunge(found)
            return found

    def available(self, sku: str) -> int:
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            return int(uow.session.scalar(select(func.sum(StockLevel.available)).join(
                Variant, Variant.id == StockLevel.variant_id).where(Variant.sku == sku)) or 0)

    def timezone(self) -> str:
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            return str(uow.session.scalar(select(Shop.timezone).where(Shop.id == self.shop_id)))


@pytest.fixture
def sandbox() -> Iterator[SandboxShopify]:
    # bulk_polls=0: a bulk operation is COMPLETED at the first poll, so no test waits on a poll interval
    sb = SandboxShopify(restore_rate=100_000, bucket_size=1000, bulk_polls=0)
    sb.start()
    sb.create_product("Mug", [{"sku": "MUG-1", "price": 1200, "available": 0, "inventory_policy": "continue"}])
    sb.create_product("Cap", [{"sku": "CAP-1", "price": 900, "available": 4}])
    yield sb
    sb.stop()


def _since(asked: list[tuple[str, Any]], operation: str) -> list[Any]:
    return [query for op, query in asked if op == operation]


def test_a_second_pull_with_nothing_changed_sends_only_the_small_since_queries(
    sandbox: SandboxShopify, db: Database
) -> None:
    store = Store(sandbox, db)
    for _ in range(3):
        sandbox.create_order([{"sku": "MUG-1", "quantity": 1}], notify=False)
    t0 = datetime.now(UTC)

    first = store.pull(t0)
    assert first.full_catalogue and first.orders.applied == 3 and first.products.applied == 2
    assert [op for op, _ in store.asked()] == ["ShopTimezone", "ProductsPage", "OrdersCount", "OrdersPage",
                                               "VariantLevelsPage"]
    assert _since(store.asked(), "ProductsPage") == [None]  # the first pull reads the whole catalogue

    second = store.pull(t0 + timedelta(hours=1))
    assert not second.full_catalogue
    asked = store.asked()
    assert [op for op, _ in asked] == ["ShopTimezone", "ProductsPage", "OrdersPage", "InventoryItemsLevelsPage"]
    for operation in ("ProductsPage", "OrdersPage", "InventoryItemsLevelsPage"):
        (search,) = _since(asked, operation)
        assert search and search.startswith("updated_at:>='"), (operation, search)
    assert second.products.applied == second.orders.applied == second.inventory_levels.applied == 0
    # Only the records of the cursor's own second come back (the bound is inclusive), unchanged.
    products = sandbox.shop().products.values()
    newest = max(p.updated_at for p in products)
    assert second.products.unchanged == sum(len(p.variants) for p in products if p.updated_at == newest)
    assert second.orders.unchanged == 1  # the orders were created a second apart


def test_a_product_and_a_stock_change_arrive_in_the_next_incremental_pull(
    sandbox: SandboxShopify, db: Database
) -> None:
    store = Store(sandbox, db)
    t0 = datetime.now(UTC)
    store.pull(t0)
    assert store.variant("MUG-1").unit_value_cents == 1200 and store.available("CAP-1") == 4

    sandbox.update_variant("MUG-1", price=1500)
    sandbox.set_inventory("CAP-1", 9)
    report = store.pull(t0 + timedelta(hours=1))

    assert not report.full_catalogue
    assert report.products.applied == 1 and report.inventory_levels.applied >= 1
    assert store.variant("MUG-1").unit_value_cents == 1500
    assert store.available("CAP-1") == 9
    assert "VariantLevelsPage" not in [op for op, _ in store.asked()]  # no full stock read for that


def test_the_daily_full_pass_still_rereads_the_whole_catalogue(sandbox: SandboxShopify, db: Database) -> None:
    store = Store(sandbox, db)
    t0 = datetime.now(UTC)
    store.pull(t0)
    assert not store.pull(t0 + timedelta(hours=23)).full_catalogue

    daily = store.pull(t0 + timedelta(days=1))
    assert daily.full_catalogue
    asked = store.asked()
    assert _since(asked, "ProductsPage") == [None] and "VariantLevelsPage" in [op for op, _ in asked]
    assert daily.products.unchanged == 2  # every variant read again, none changed
    # The day is counted from that full pass: the next pull is incremental again.
    assert not store.pull(t0 + timedelta(days=1, hours=1)).full_catalogue


def test_a_first_pull_of_a_big_shop_backfills_its_orders_through_one_bulk_operation(
    sandbox: SandboxShopify, db: Database
) -> None:
    store = Store(sandbox, db, bulk_backfill_orders=4)
    for _ in range(5):
        sandbox.create_order([{"sku": "MUG-1", "quantity": 2}, {"sku": "CAP-1", "quantity": 1}], notify=False)
    t0 = datetime.now(UTC)

    report = store.pull(t0)
    operations = [op for op, _ in store.asked()]
    assert "BulkOperationRunQuery" in operations and "OrdersPage" not in operations
    assert report.orders.applied == 5 == store.orders_held()
    with UnitOfWork(db, store.shop_id, readonly=True) as uow:
        lines = uow.session.scalar(select(func.count()).select_from(SalesOrder).join(SalesOrder.lines))
    assert lines == 10  # every line came with its order out of the JSONL

    # The next pull has a cursor: a new order arrives by paging, not by another bulk operation.
    sandbox.create_order([{"sku": "MUG-1", "quantity": 1}], notify=False)
    store.pull(t0 + timedelta(hours=1))
    operations = [op for op, _ in store.asked()]
    assert "OrdersPage" in operations and "BulkOperationRunQuery" not in operations
    assert store.orders_held() == 6


def test_a_first_pull_of_a_small_shop_keeps_paging(sandbox: SandboxShopify, db: Database) -> None:
    store = Store(sandbox, db, bulk_backfill_orders=5)
    for _ in range(5):
        sandbox.create_order([{"sku": "MUG-1", "quantity": 1}], notify=False)

    report = store.pull(datetime.now(UTC))
    operations = [op for op, _ in store.asked()]
    assert "OrdersCount" in operations and "OrdersPage" in operations
    assert "BulkOperationRunQuery" not in operations
    assert report.orders.applied == 5 == store.orders_held()


def test_the_shop_time_zone_follows_shopify_until_the_merchant_chooses_one(
    sandbox: SandboxShopify, db: Database
) -> None:
    store = Store(sandbox, db)
    t0 = datetime.now(UTC)
    assert store.timezone() == "UTC"  # before Shopify was asked
    store.pull(t0)
    assert store.timezone() == "America/New_York"

    sandbox.shop().iana_timezone = "Europe/Paris"  # the merchant moved the shop in Shopify's admin
    store.pull(t0 + timedelta(hours=1))
    assert store.timezone() == "Europe/Paris"

    save_shop_settings(db, store.shop_id, {"timezone": "Asia/Tokyo"})  # our settings page
    sandbox.shop().iana_timezone = "Europe/Berlin"
    store.pull(t0 + timedelta(hours=2))
    assert store.timezone() == "Asia/Tokyo"


def test_a_time_zone_python_does_not_know_is_ignored_and_the_pull_goes_on(
    sandbox: SandboxShopify, db: Database
) -> None:
    store = Store(sandbox, db)
    sandbox.shop().iana_timezone = "Mars/Olympus_Mons"
    sandbox.create_order([{"sku": "MUG-1", "quantity": 1}], notify=False)

    report = store.pull(datetime.now(UTC))
    assert store.timezone() == "UTC" and report.orders.applied == 1 and report.skipped is None
