"""Stock reports from the store: "available" already subtracts the orders placed before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import OrderLine, Shop, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import InventoryLevelRecord, OrderLineRecord, OrderRecord, OrderState
from connector.services.catalog import apply_inventory_level
from connector.services.events import Changes
from connector.services.orders import record_order

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _order(db: Database, shop_id: int, number: str, qty: int, at: datetime) -> None:
    record_order(db, shop_id, OrderRecord(
        external_id=number, number=number, state=OrderState.OPEN, placed_at=at, updated_at=at,
        lines=(OrderLineRecord(external_id=f"{number}-1", quantity=qty, sku="CHAIR", variant_external_id="v1"),),
    ), at)


def _report(db: Database, shop_id: int, available: int, as_of: datetime) -> None:
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.session.get(Shop, shop_id)
        assert shop is not None
        apply_inventory_level(uow.session, shop, InventoryLevelRecord("inv-1", "loc-1", available, updated_at=as_of),
                              Changes(as_of))
        uow.commit()


def _state(db: Database, shop_id: int) -> tuple[int, list[tuple[int, int]]]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        free = uow.session.scalar(select(Variant.free_stock))
        lines = [(ln.allocated, ln.backordered) for ln in uow.session.scalars(select(OrderLine).order_by(OrderLine.id))]
        return int(free or 0), lines


def test_a_late_stock_report_does_not_count_later_orders_twice(db: Database, shop_id: int) -> None:
    with UnitOfWork(db, shop_id) as uow:
        uow.add(Variant(external_id="v1", inventory_item_external_id="inv-1", sku="CHAIR", free_stock=2))
        uow.commit()
    _order(db, shop_id, "1", 3, T0)  # 2 from stock, 1 waits
    _order(db, shop_id, "2", 4, T0 + timedelta(minutes=5))  # all 4 wait
    # The store's report sent right after order 1 (available 2 - 3 = -1) arrives after order 2.
    _report(db, shop_id, -1, T0 + timedelta(minutes=1))
    assert _state(db, shop_id) == (0, [(2, 1), (0, 4)])  # no phantom units
    # The report after order 2 (available -5) agrees too.
    _report(db, shop_id, -5, T0 + timedelta(minutes=6))
    assert _state(db, shop_id) == (0, [(2, 1), (0, 4)])


def test_a_restock_in_the_store_admin_goes_to_the_oldest_waiting_order(db: Database, shop_id: int) -> None:
    with UnitOfWork(db, shop_id) as uow:
        uow.add(Variant(external_id="v1", inventory_item_external_id="inv-1", sku="CHAIR", free_stock=0))
        uow.commit()
    _order(db, shop_id, "1", 1, T0)
    _order(db, shop_id, "2", 2, T0 + timedelta(minutes=5))
    # The merchant adds 2 units in the store: available goes from -3 to -1.
    _report(db, shop_id, -1, T0 + timedelta(hours=1))
    assert _state(db, shop_id) == (0, [(1, 0), (1, 1)])


def test_orders_and_a_report_of_the_same_second_never_invent_units(db: Database, shop_id: int) -> None:
    with UnitOfWork(db, shop_id) as uow:
        uow.add(Variant(external_id="v1", inventory_item_external_id="inv-1", sku="CHAIR", free_stock=2))
        uow.commit()
    _order(db, shop_id, "1", 3, T0)
    _order(db, shop_id, "2", 4, T0)  # same second: the report below may or may not include it
    _report(db, shop_id, -1, T0)  # the store's report right after order 1
    assert _state(db, shop_id) == (0, [(2, 1), (0, 4)])  # neither phantom units nor units taken back
