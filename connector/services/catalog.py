"""Catalogue and stock from the store: variants (SKU, backorder policy) and stock levels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.db.models import Location, OrderLine, SalesOrder, Shop, StockLevel, Variant
from connector.domain.records import InventoryLevelRecord, ProductRecord, VariantRecord
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.stock_flow import held_units, set_on_hand


def upsert_variant(session: Session, shop: Shop, rec: VariantRecord, product_id: str | None, changes: Changes) -> Variant:
    variant = session.scalars(select(Variant).where(Variant.external_id == rec.external_id)).first()
    if variant is None and rec.sku:
        # A placeholder made from an order line before the catalogue arrived.
        variant = session.scalars(select(Variant).where(Variant.sku == rec.sku, Variant.external_id.is_(None))).first()
    if variant is not None and rec.updated_at and variant.platform_updated_at and rec.updated_at < variant.platform_updated_at:
        return variant  # a late delivery: we already hold newer data
    if variant is None:
        variant = Variant(shop_id=shop.id, external_id=rec.external_id, sku=rec.sku or f"variant-{rec.external_id}",
                          free_stock=0)
        session.add(variant)
    variant.external_id = rec.external_id
    variant.product_external_id = rec.product_external_id or product_id
    variant.inventory_item_external_id = rec.inventory_item_external_id or variant.inventory_item_external_id
    if rec.sku:
        variant.sku = rec.sku
    variant.title = rec.title
    variant.tracks_inventory = rec.tracks_inventory
    if rec.price_cents:
        variant.unit_value_cents = rec.price_cents
    if rec.updated_at:
        variant.platform_updated_at = rec.updated_at
    # The merchant decides backorderability in our settings; a store that already sells past
    # zero (CONTINUE / backorders allowed) tells us the merchant wants it.
    if rec.allows_backorder:
        variant.backorders_allowed = True
    session.flush()
    if rec.stock_quantity is not None and rec.tracks_inventory:
        # WooCommerce keeps one stock number that already subtracts open orders.
        apply_available(session, variant, rec.stock_quantity, changes, as_of=rec.updated_at)
    return variant


def apply_product(session: Session, shop: Shop, rec: ProductRecord, changes: Changes) -> int:
    for v in rec.variants:
        upsert_variant(session, shop, v, rec.external_id, changes)
    return len(rec.variants)


def reserved_units(session: Session, variant_id: int, as_of: datetime | None) -> int:
    """Units of open orders the store had reserved when it reported ``as_of``: every unit not
    yet shipped, allocated or still waiting, of orders placed by then."""
    stmt = (
        select(func.coalesce(func.sum(OrderLine.allocated - OrderLine.fulfilled + OrderLine.backordered), 0))
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .where(OrderLine.variant_id == variant_id, SalesOrder.state.in_(("open", "pending")))
    )
    if as_of is not None:
        # Strictly before: stores stamp reports and orders to the second, so an order of the same
        # second may or may not be in the report. Counting it when it was not would invent units;
        # leaving it out when it was can only under-count, which the floor below and the next
        # report correct.
        stmt = stmt.where(OrderLine.placed_at < as_of)
    return int(session.scalar(stmt) or 0)


def apply_available(
    session: Session, variant: Variant, available: int, changes: Changes, as_of: datetime | None = None
) -> None:
    """Stores report *available* units, which already subtract every unfulfilled order unit
    (ours included, backordered ones too) placed before the report. The shelf therefore holds
    ``available + reserved`` units, counting only orders placed by ``as_of``: a report that
    arrives after later orders were ingested must not count their units twice. A count that
    differs from ours is handed out (waiting lines first) or shrinks free stock."""
    on_hand = max(0, available + reserved_units(session, variant.id, as_of))
    # An "available" number cannot prove that units already given to customers are gone (orders of
    # the same second, late reports): it never takes them back. Real shrinkage shows in on-hand
    # counts (pulls, stock counts), which go through set_on_hand directly.
    on_hand = max(on_hand, held_units(session, variant.id))
    set_on_hand(session, variant, on_hand, changes)


def apply_inventory_level(session: Session, shop: Shop, rec: InventoryLevelRecord, changes: Changes) -> bool:
    """One location's level changed; the engine uses the sum over fulfilling locations."""
    variant = session.scalars(
        select(Variant).where(Variant.inventory_item_external_id == rec.inventory_item_external_id)
    ).first()
    if variant is None:
        return False
    location = session.scalars(select(Location).where(Location.external_id == rec.location_external_id)).first()
    if location is None:
        fulfilling = engine_settings(shop.settings).fulfilling_locations
        location = Location(shop_id=shop.id, external_id=rec.location_external_id,
                            fulfilling=fulfilling is None or rec.location_external_id in fulfilling)
        session.add(location)
        session.flush()
    level = session.scalars(
        select(StockLevel).where(StockLevel.variant_id == variant.id, StockLevel.location_id == location.id)
    ).first()
    if level is None:
        level = StockLevel(shop_id=shop.id, variant_id=variant.id, location_id=location.id)
        session.add(level)
    if rec.updated_at and level.updated_at and rec.updated_at < level.updated_at:
        return False  # late delivery
    level.available = rec.available
    level.on_hand = max(0, rec.on_hand) if rec.on_hand is not None else max(0, rec.available)
    level.incoming = max(0, rec.incoming or 0)
    level.updated_at = rec.updated_at or changes.now
    session.flush()
    rows = session.execute(
        select(StockLevel.available, StockLevel.on_hand, Location.fulfilling)
        .join(Location, Location.id == StockLevel.location_id)
        .where(StockLevel.variant_id == variant.id)
    ).all()
    if rec.on_hand is not None:
        set_on_hand(session, variant, sum(on_hand for _, on_hand, f in rows if f), changes)
    else:
        apply_available(session, variant, sum(avail for avail, _, f in rows if f), changes, as_of=rec.updated_at)
    return True
