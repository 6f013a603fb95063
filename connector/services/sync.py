"""Pull a store (the safety net behind webhooks, and the initial backfill after install).

Order of resources matters: products first (variants exist before anything refers to them),
then orders (demand), then inventory levels. Stores report *available* units that already
subtract open orders, so applying levels after the orders lets ``apply_available`` count the
units those orders hold and arrive at the true shelf count.

Each resource keeps a :class:`SyncCursor` (the newest ``updated_at`` applied, ISO 8601). Orders
are fetched since that cursor (inclusive) and applied in batches, each batch in one transaction
together with the cursor, so a pull that breaks off resumes where it stopped. A record whose
``updated_at`` equals what we hold is skipped (the webhook already brought it); an older one is
stale and ignored by the ingest services.

Products and inventory levels are incremental too when the storefront can search them by
``updated_at`` (:class:`IncrementalCatalogue`; Shopify can, WooCommerce is read in full), with a
full re-read at most once a day (``FULL_PASS_EVERY``, see there for why).

An uninstall may land in the middle of a pull (``app/uninstalled`` arrives on another thread or
process). The pull re-reads the shop's status between the storefront's page requests and inside
every batch's transaction, so it stops before the next request and commits nothing after the
uninstall (the batch being collected is dropped; the cursor never passes what was committed).
The request already in flight may come back 401 (the token is gone): a stop, not an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Protocol, TypeVar, runtime_checkable

from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import Location, SalesOrder, Shop, StockLevel, SyncCursor, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import InventoryLevelRecord, OrderRecord, ProductRecord
from connector.errors import AuthError, ConnectorError, NotFound
from connector.ports import Storefront
from connector.services import events, shops
from connector.services.catalog import apply_inventory_level, upsert_variant
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.orders import ingest_order
from connector.services.shop_settings import engine_settings

log = logging.getLogger(__name__)

BATCH = 100
INSTALLED, UNINSTALLED = "installed", "uninstalled"
STATUS_EVERY = 0.02  # seconds between two reads of the shop's status during a pull
# Incremental reads cannot see everything: a deleted product or variant never matches an
# ``updated_at`` search, Shopify does not document that a stock change moves the inventory item's
# ``updated_at`` (the levels search goes through items), and a record written in the second of
# the cursor by a clock a little behind can slip past it. Webhooks cover most of that; a full
# re-read once a day bounds how long anything they miss can stay wrong, at one day's cost.
FULL_PASS_EVERY = timedelta(days=1)
FULL_PASS = "catalogue_full_pass"  # SyncCursor resource: when the last full re-read finished
T = TypeVar("T")


@runtime_checkable
class IncrementalCatalogue(Protocol):
    """A storefront that can read products and stock changed since a moment (None: everything)."""

    def fetch_products_since(self, updated_after: datetime | None) -> Iterator[ProductRecord]: ...

    def fetch_inventory_levels_since(self, updated_after: datetime | None) -> Iterator[InventoryLevelRecord]: ...


@runtime_checkable
class KnowsTimezone(Protocol):
    """A storefront that can say the shop's time zone as set on the platform (IANA name)."""

    def shop_timezone(self) -> str: ...


@dataclass
class ResourceReport:
    applied: int = 0
    unchanged: int = 0
    stale: int = 0


@dataclass
class PullReport:
    products: ResourceReport = field(default_factory=ResourceReport)
    orders: ResourceReport = field(default_factory=ResourceReport)
    inventory_levels: ResourceReport = field(default_factory=ResourceReport)
    skipped: str | None = None  # why nothing was pulled (shop not installed)
    full_catalogue: bool = True  # products and levels re-read in full (False: only what changed)


class ShopLeft(Exception):
    """The shop stopped being installed while it was being pulled (internal to this module)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def _status(db: Database, shop_id: int) -> str | None:
    with UnitOfWork(db, readonly=True) as uow:
        return uow.session.scalar(select(Shop.status).where(Shop.id == shop_id))


def _while_installed(db: Database, shop_id: int, items: Iterable[T]) -> Iterator[T]:
    """``items`` for as long as the shop stays installed; raises :class:`ShopLeft` otherwise.

    Asking for the next record may send the storefront's next page request, so the status is
    read before asking, at most every ``STATUS_EVERY`` seconds: records served from a page in
    memory arrive in microseconds and a read per record would cost more than the page, while a
    page request takes longer than the interval, so the check always falls between two pages.
    """
    it = iter(items)
    checked = float("-inf")
    while True:
        if time.monotonic() - checked >= STATUS_EVERY:
            status = _status(db, shop_id)
            if status != INSTALLED:
                raise ShopLeft(status or "deleted")
            checked = time.monotonic()
        try:
            item = next(it)
        except StopIteration:
            return
        yield item


def _installed_shop(uow: UnitOfWork) -> Shop:
    """The shop, inside a batch's transaction; an uninstall that won the race voids the batch."""
    try:
        shop = uow.shop()
    except NotFound:
        raise ShopLeft("deleted") from None
    if shop.status != INSTALLED:
        raise ShopLeft(shop.status)
    return shop


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def read_cursor(db: Database, shop_id: int, resource: str) -> datetime | None:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        row = uow.find(SyncCursor, resource=resource)
        return datetime.fromisoformat(row.cursor) if row is not None and row.cursor else None


def _advance(uow: UnitOfWork, resource: str, seen: datetime | None, now: datetime) -> None:
    row = uow.find(SyncCursor, resource=resource)
    if row is None:
        row = uow.add(SyncCursor(resource=resource, cursor=None, updated_at=now))
    current = datetime.fromisoformat(row.cursor) if row.cursor else None
    if seen is not None and (current is None or seen > current):
        row.cursor = seen.isoformat()
    row.updated_at = now


def _newest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _apply_products(db: Database, shop_id: int, products: Iterable[ProductRecord], now: datetime,
                    report: ResourceReport) -> None:
    for batch in _batches(products, BATCH):
        with UnitOfWork(db, shop_id) as uow:
            shop = _installed_shop(uow)
            changes = Changes(now)
            newest: datetime | None = None
            for product in batch:
                newest = _newest(newest, product.updated_at)
                for rec in product.variants:
                    newest = _newest(newest, rec.updated_at)
                    held = uow.session.scalars(select(Variant).where(Variant.external_id == rec.external_id)).first()
                    if held is not None and rec.updated_at is not None and held.platform_updated_at is not None:
                        if rec.updated_at == held.platform_updated_at:
                            report.unchanged += 1
                            continue
                        if rec.updated_at < held.platform_updated_at:
                            report.stale += 1
                            continue
                    upsert_variant(uow.session, shop, rec, product.external_id, changes)
                    report.applied += 1
            recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
            events.flush(uow.session, shop.id, changes)
            _advance(uow, "products", newest, now)
            uow.commit()


def _apply_orders(db: Database, shop_id: int, orders: Iterable[OrderRecord], now: datetime,
                  report: ResourceReport) -> None:
    for batch in _batches(orders, BATCH):
        with UnitOfWork(db, shop_id) as uow:
            shop = _installed_shop(uow)
            changes = Changes(now)
            newest: datetime | None = None
            for record in batch:
                newest = _newest(newest, record.updated_at)
                held = uow.session.scalar(
                    select(SalesOrder.platform_updated_at).where(SalesOrder.external_id == record.external_id)
                )
                if held is not None and held == record.updated_at:
                    report.unchanged += 1
                    continue
                result = ingest_order(uow.session, shop, record, changes)
                if result.outcome == "stale":
                    report.stale += 1
                else:
                    report.applied += 1
            recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
            events.flush(uow.session, shop.id, changes)
            _advance(uow, "orders", newest, now)
            uow.commit()


def _apply_levels(db: Database, shop_id: int, levels: Iterable[InventoryLevelRecord], now: datetime,
                  report: ResourceReport) -> None:
    for batch in _batches(levels, BATCH):
        with UnitOfWork(db, shop_id) as uow:
            shop = _installed_shop(uow)
            changes = Changes(now)
            newest: datetime | None = None
            for rec in batch:
                newest = _newest(newest, rec.updated_at)
                if rec.updated_at is not None:
                    held = uow.session.scalar(
                        select(StockLevel.updated_at)
                        .join(Variant, Variant.id == StockLevel.variant_id)
                        .join(Location, Location.id == StockLevel.location_id)
                        .where(Variant.inventory_item_external_id == rec.inventory_item_external_id,
                               Location.external_id == rec.location_external_id)
                    )
                    if held is not None and held == rec.updated_at:
                        report.unchanged += 1
                        continue
                if apply_inventory_level(uow.session, shop, rec, changes):
                    report.applied += 1
                else:
                    report.stale += 1  # stale, or an item we do not know (no variant)
            recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
            events.flush(uow.session, shop.id, changes)
            _advance(uow, "inventory_levels", newest, now)
            uow.commit()


def _record_full_pass(db: Database, shop_id: int, now: datetime) -> None:
    """Remember when the last full re-read finished (only after it did: a broken one is redone)."""
    with UnitOfWork(db, shop_id) as uow:
        _installed_shop(uow)
        row = uow.find(SyncCursor, resource=FULL_PASS)
        if row is None:
            row = uow.add(SyncCursor(resource=FULL_PASS, cursor=None, updated_at=now))
        row.cursor = now.isoformat()
        row.updated_at = now
        uow.commit()


def _adopt_timezone(db: Database, shop_id: int, storefront: Storefront) -> None:
    """Take the shop's time zone from the platform (schedules and dates follow it) unless the
    merchant chose another on the settings page. A refused token stops the pull as any request
    would (AuthError); any other failure to read the zone is logged and the pull goes on."""
    if not isinstance(storefront, KnowsTimezone):
        return
    try:
        zone = storefront.shop_timezone()
    except AuthError:
        raise
    except ConnectorError as exc:
        log.warning("shop %s: could not read its time zone: %s", shop_id, exc)
        return
    shops.adopt_platform_timezone(db, shop_id, zone)


def pull_store(db: Database, shop_id: int, storefront: Storefront, now: datetime) -> PullReport:
    """Pull products, orders updated since the cursor, and inventory levels into the engine.

    Products and levels are read since their cursors when the storefront allows it, in full on
    the first pull and then once every ``FULL_PASS_EVERY``; the shop's time zone is read first.

    Platform errors (``PlatformError``/``AuthError``) propagate: what was committed before the
    failure stays, and the next pull resumes from the cursors.
    """
    report = PullReport()
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        try:
            status = uow.shop().status
        except NotFound:
            report.skipped = "unknown shop"
            return report
    if status != INSTALLED:
        report.skipped = f"shop is {status}"
        return report
    last_full = read_cursor(db, shop_id, FULL_PASS)
    catalogue = storefront if isinstance(storefront, IncrementalCatalogue) else None
    if last_full is None or now - last_full >= FULL_PASS_EVERY:
        catalogue = None  # the daily full re-read
    report.full_catalogue = catalogue is None
    try:
        _adopt_timezone(db, shop_id, storefront)
        if catalogue is not None:
            products = catalogue.fetch_products_since(read_cursor(db, shop_id, "products"))
        else:
            products = storefront.fetch_products()
        _apply_products(db, shop_id, _while_installed(db, shop_id, products), now, report.products)
        since = read_cursor(db, shop_id, "orders")
        _apply_orders(db, shop_id, _while_installed(db, shop_id, storefront.fetch_orders_since(since)), now,
                      report.orders)
        if catalogue is not None:
            levels = catalogue.fetch_inventory_levels_since(read_cursor(db, shop_id, "inventory_levels"))
        else:
            levels = storefront.fetch_inventory_levels()
        _apply_levels(db, shop_id, _while_installed(db, shop_id, levels), now, report.inventory_levels)
        if report.full_catalogue:
            _record_full_pass(db, shop_id, now)
    except ShopLeft as exc:
        report.skipped = f"shop was {exc.status} during the pull"
    except AuthError:
        # Refused because the uninstall dropped our token a moment ago: a stop, not a failure.
        # (A refusal of an installed shop's token is a real error and propagates.)
        now_status = _status(db, shop_id)
        if now_status not in (UNINSTALLED, None):
            raise
        report.skipped = f"shop was {now_status or 'deleted'} during the pull"
    if report.skipped:
        log.info("pull of shop %s stopped: %s (%s)", shop_id, report.skipped, report)
        return report
    log.info("pulled shop %s: %s", shop_id, report)
    return report
