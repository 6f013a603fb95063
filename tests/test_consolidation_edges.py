"""Consolidation edge cases that the scenario format cannot express."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from connector import crypto
from connector.config import DEMO_FERNET_KEY
from connector.db import migrate
from connector.db.engine import Database
from connector.db.models import (
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    Shop,
    Supplier,
    SupplierItem,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.services.consolidation import consolidate_backorders
from connector.services.orders import record_order

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _order(db: Database, shop_id: int, order_id: str, qty: int, at: datetime) -> None:
    record_order(db, shop_id, OrderRecord(
        external_id=order_id, number=order_id, state=OrderState.OPEN, placed_at=at, updated_at=at,
        lines=(OrderLineRecord(external_id=f"{order_id}-1", quantity=qty, sku="CHAIR", variant_external_id="CHAIR"),),
    ), at)


def _shop(tmp_path: Path) -> tuple[Database, int]:
    """A fresh SQLite database with one shop (handling 1 day); returns it and the shop's id."""
    crypto.configure_cipher([DEMO_FERNET_KEY])
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate.upgrade(db)
    with UnitOfWork(db) as uow:
        shop = uow.add(Shop(platform="manual", domain="edges", created_at=START, settings={"handling_days": 1}))
        uow.commit()
        return db, shop.id


def test_a_sku_moved_to_another_supplier_is_ordered_from_the_new_supplier_only(tmp_path: Path) -> None:
    db, shop_id = _shop(tmp_path)
    with UnitOfWork(db, shop_id) as uow:
        old = uow.add(Supplier(name="Old", lead_time_days=7, min_order_value_cents=10**9))
        new = uow.add(Supplier(name="New", lead_time_days=3, min_order_value_cents=10**9))
        uow.session.flush()
        uow.add(SupplierItem(supplier_id=old.id, sku="CHAIR", pack_size=1, moq=0, unit_cost_cents=100))
        uow.add(SupplierItem(supplier_id=new.id, sku="CHAIR", pack_size=1, moq=0, unit_cost_cents=100))
        uow.add(Variant(external_id="CHAIR", sku="CHAIR", supplier_id=old.id, free_stock=0))
        uow.commit()
        old_id, new_id = old.id, new.id

    _order(db, shop_id, "1001", 2, START)
    consolidate_backorders(db, shop_id, START + timedelta(hours=1))  # Old's draft: CHAIR x2, all pegged
    with UnitOfWork(db, shop_id) as uow:
        variant = uow.find(Variant, sku="CHAIR")
        assert variant is not None
        variant.supplier_id = new_id
        uow.commit()
    _order(db, shop_id, "1002", 3, START + timedelta(hours=2))
    consolidate_backorders(db, shop_id, START + timedelta(hours=3))

    with UnitOfWork(db, shop_id, readonly=True) as uow:
        ordered = {
            supplier: qty for supplier, qty in uow.session.execute(
                select(PurchaseOrder.supplier_id, PurchaseOrderLine.ordered)
                .join(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
            )
        }
        assert ordered == {old_id: 2, new_id: 3}, "the old draft keeps its 2, the new supplier gets the 3 new units"
        line = uow.find(OrderLine, external_id="1002-1")
        assert line is not None and line.pegged == 3
        pegs = uow.session.execute(select(Peg.po_line_id, Peg.units).where(Peg.order_line_id == line.id)).all()
        assert len(pegs) == 1 and pegs[0].units == 3, "pegged once, to the new supplier's line"
    db.dispose()


def test_a_line_edited_upward_after_pegging_grows_its_peg_on_the_same_draft_line(tmp_path: Path) -> None:
    """A partly pegged line meets its own peg again: the two must add up, not collide or vanish."""
    db, shop_id = _shop(tmp_path)
    with UnitOfWork(db, shop_id) as uow:
        acme = uow.add(Supplier(name="Acme", lead_time_days=7, min_order_value_cents=10**9))
        uow.session.flush()
        uow.add(SupplierItem(supplier_id=acme.id, sku="CHAIR", pack_size=1, moq=0, unit_cost_cents=100))
        uow.add(Variant(external_id="CHAIR", sku="CHAIR", supplier_id=acme.id, free_stock=0))
        uow.commit()

    _order(db, shop_id, "1001", 2, START)
    consolidate_backorders(db, shop_id, START + timedelta(hours=1))  # draft CHAIR x2, pegged 2
    _order(db, shop_id, "1001", 5, START + timedelta(hours=2))  # the customer now wants 5
    consolidate_backorders(db, shop_id, START + timedelta(hours=3))

    with UnitOfWork(db, shop_id, readonly=True) as uow:
        line = uow.find(OrderLine, external_id="1001-1")
        assert line is not None and (line.backordered, line.pegged) == (5, 5)
        pegs = uow.session.execute(select(Peg.units).where(Peg.order_line_id == line.id)).scalars().all()
        assert pegs == [5], "one peg on the draft line, grown from 2 to 5"
        assert uow.session.scalars(select(PurchaseOrderLine.ordered)).all() == [5]
    db.dispose()
