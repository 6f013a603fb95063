"""Property-based tests of the engine: random orders, edits, cancellations, consolidations,
sends, receipts and PO cancellations, with the invariants checked after every step."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from connector import crypto
from connector.config import DEMO_FERNET_KEY
from connector.db import migrate
from connector.db.engine import Database
from connector.db.models import (
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Shop,
    Supplier,
    SupplierItem,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.services.consolidation import consolidate_backorders
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.orders import cancel_order_units, record_order
from connector.services.purchasing import cancel_purchase_order, receive_purchase_order, send_purchase_order
from connector.services.shop_settings import engine_settings

SKUS = {"A": ("S1", 6, 12, 500), "B": ("S1", 1, 0, 1_000), "C": ("S2", 4, 0, 200)}
INITIAL_STOCK = {"A": 2, "B": 0, "C": 5}
_TEMPLATE: Path | None = None


def template() -> Path:
    global _TEMPLATE
    if _TEMPLATE is None:
        path = Path(tempfile.mkdtemp(prefix="engine-props-")) / "template.sqlite3"
        crypto.configure_cipher([DEMO_FERNET_KEY])
        db = Database(f"sqlite:///{path}")
        migrate.upgrade(db)
        db.dispose()
        _TEMPLATE = path
    return _TEMPLATE


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        crypto.configure_cipher([DEMO_FERNET_KEY])
        self.dir = Path(tempfile.mkdtemp(prefix="engine-run-"))
        shutil.copy(template(), self.dir / "db.sqlite3")
        self.db = Database(f"sqlite:///{self.dir / 'db.sqlite3'}")
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
        self.orders: dict[str, dict[str, int]] = {}
        self.received = 0
        self.counter = 0

    def teardown(self) -> None:
        self.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def tick(self) -> datetime:
        self.now += timedelta(hours=3)
        return self.now

    @initialize()
    def seed(self) -> None:
        with UnitOfWork(self.db) as uow:
            shop = Shop(platform="manual", domain="props", created_at=self.now, settings={"handling_days": 1})
            uow.add(shop)
            uow.commit()
            self.shop_id = shop.id
        with UnitOfWork(self.db, self.shop_id) as uow:
            suppliers = {}
            for name, min_value in (("S1", 0), ("S2", 50_000)):
                suppliers[name] = uow.add(Supplier(name=name, lead_time_days=7, min_order_value_cents=min_value,
                                                   max_wait_days=2))
            uow.session.flush()
            for sku, (sup, pack, moq, cost) in SKUS.items():
                uow.add(SupplierItem(supplier_id=suppliers[sup].id, sku=sku, pack_size=pack, moq=moq,
                                     unit_cost_cents=cost))
                uow.add(Variant(external_id=sku, sku=sku, supplier_id=suppliers[sup].id, free_stock=INITIAL_STOCK[sku]))
            uow.commit()

    def _record(self, order_id: str, lines: dict[str, int], placed: datetime) -> None:
        record = OrderRecord(
            external_id=order_id, number=order_id, state=OrderState.OPEN, placed_at=placed, updated_at=self.now,
            lines=tuple(OrderLineRecord(external_id=f"{order_id}-{sku}", quantity=q, sku=sku, variant_external_id=sku)
                        for sku, q in lines.items()),
        )
        record_order(self.db, self.shop_id, record, self.now)

    @rule(lines=st.dictionaries(st.sampled_from(sorted(SKUS)), st.integers(1, 7), min_size=1, max_size=3),
          priority=st.integers(0, 2))
    def place_order(self, lines: dict[str, int], priority: int) -> None:
        self.counter += 1
        order_id = f"o{self.counter}"
        self.tick()
        record = OrderRecord(
            external_id=order_id, number=order_id, state=OrderState.OPEN, placed_at=self.now, updated_at=self.now,
            lines=tuple(OrderLineRecord(external_id=f"{order_id}-{sku}", quantity=q, sku=sku, variant_external_id=sku)
                        for sku, q in lines.items()),
        )
        record_order(self.db, self.shop_id, record, self.now, priority=priority)
        self.orders[order_id] = dict(lines)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), qty=st.integers(0, 9))
    def edit_order(self, data: st.DataObject, qty: int) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        sku = data.draw(st.sampled_from(sorted(self.orders[order_id])))
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            order = uow.find(SalesOrder, external_id=order_id)
            assert order is not None
            if order.state != "open":
                return
            placed = order.placed_at
            current = {ln.sku: ln.ordered - ln.cancelled for ln in order.lines}
        current[sku] = max(qty, 0)
        self.tick()
        self._record(order_id, {k: v for k, v in current.items() if k is not None}, placed)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), whole=st.booleans(), qty=st.integers(1, 4))
    def cancel(self, data: st.DataObject, whole: bool, qty: int) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.orders)))
        self.tick()
        if whole:
            cancel_order_units(self.db, self.shop_id, order_id, self.now)
        else:
            sku = data.draw(st.sampled_from(sorted(self.orders[order_id])))
            cancel_order_units(self.db, self.shop_id, order_id, self.now, sku=sku, qty=qty)

    @rule()
    def consolidate_twice(self) -> None:
        self.tick()
        consolidate_backorders(self.db, self.shop_id, self.now)
        before = self.snapshot()
        second = consolidate_backorders(self.db, self.shop_id, self.now)
        assert self.snapshot() == before, "a second consolidation right after the first changed something"
        assert not second.pegged_to_open_pos and not second.pegged_to_drafts
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            unpegged = uow.session.scalar(
                select(func.coalesce(func.sum(OrderLine.backordered - OrderLine.pegged), 0)).where(
                    OrderLine.kind.in_(("backorder", "preorder", "oversold"))
                )
            )
        assert unpegged == 0, "a backordered unit is still unpegged after a consolidation"
        # Consolidation recomputes only the lines whose ETA can move: a full recompute at the
        # same moment must find every stored ETA already right.
        with UnitOfWork(self.db, self.shop_id) as uow:
            shop = uow.shop()
            full = recompute_etas(uow.session, shop.id, engine_settings(shop.settings), Changes(self.now))
            assert full.changed == 0, f"{full.changed} line ETAs were stale after a consolidation"
            uow.rollback()

    @rule(sku=st.sampled_from(sorted(SKUS)))
    def move_to_other_supplier(self, sku: str) -> None:
        """The merchant moves a SKU to the other supplier (its old draft line stays as it is)."""
        self.tick()
        with UnitOfWork(self.db, self.shop_id) as uow:
            variant = uow.find(Variant, sku=sku)
            assert variant is not None
            others = [s.id for s in uow.session.scalars(select(Supplier)) if s.id != variant.supplier_id]
            variant.supplier_id = others[0]
            uow.commit()

    def _pos(self, statuses: tuple[str, ...]) -> list[int]:
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            return list(uow.session.scalars(
                select(PurchaseOrder.id).where(PurchaseOrder.status.in_(statuses)).order_by(PurchaseOrder.id)))

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        drafts = self._pos(("draft", "ready"))
        if drafts:
            self.tick()
            send_purchase_order(self.db, self.shop_id, data.draw(st.sampled_from(drafts)), self.now)

    @rule(data=st.data(), qty=st.integers(1, 15))
    def receive(self, data: st.DataObject, qty: int) -> None:
        sent = self._pos(("sent", "confirmed", "partially_received"))
        if not sent:
            return
        po_id = data.draw(st.sampled_from(sent))
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            skus = sorted(pol.sku for pol in uow.get(PurchaseOrder, po_id).lines)
        sku = data.draw(st.sampled_from(skus))
        self.tick()
        receive_purchase_order(self.db, self.shop_id, po_id, {sku: qty}, self.now)
        self.received += qty

    @rule(data=st.data())
    def cancel_po(self, data: st.DataObject) -> None:
        open_pos = self._pos(("draft", "ready", "sent"))
        if open_pos:
            self.tick()
            cancel_purchase_order(self.db, self.shop_id, data.draw(st.sampled_from(open_pos)), self.now)

    def snapshot(self) -> tuple[object, ...]:
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            s = uow.session
            return (
                sorted(s.execute(select(PurchaseOrder.id, PurchaseOrder.status)).all()),
                sorted(s.execute(select(PurchaseOrderLine.id, PurchaseOrderLine.ordered)).all()),
                sorted(s.execute(select(Peg.order_line_id, Peg.po_line_id, Peg.units)).all()),
            )

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "shop_id"):
            return
        with UnitOfWork(self.db, self.shop_id, readonly=True) as uow:
            s = uow.session
            for line in s.scalars(select(OrderLine)):
                assert line.ordered == line.allocated + line.backordered + line.cancelled
                assert 0 <= line.pegged <= line.backordered
                pegged = s.scalar(select(func.coalesce(func.sum(Peg.units), 0)).where(Peg.order_line_id == line.id))
                assert pegged == line.pegged
            for pol in s.scalars(select(PurchaseOrderLine)):
                assert pol.received_to_lines <= pol.received
                on_it = s.scalar(select(func.coalesce(func.sum(Peg.units), 0)).where(Peg.po_line_id == pol.id))
                if pol.purchase_order.status == "cancelled":
                    assert on_it == 0
                else:
                    assert on_it <= max(0, pol.ordered - pol.received)
            allocated = s.scalar(select(func.coalesce(func.sum(OrderLine.allocated), 0)))
            stock = s.scalar(select(func.coalesce(func.sum(Variant.free_stock), 0)))
            assert sum(INITIAL_STOCK.values()) + self.received == allocated + stock, "a unit was lost or created"
            drafts = s.execute(
                select(PurchaseOrder.supplier_id, func.count())
                .where(PurchaseOrder.status.in_(("draft", "ready")))
                .group_by(PurchaseOrder.supplier_id)
            ).all()
            assert all(n <= 1 for _, n in drafts)


EngineMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_engine_invariants_hold_under_random_operations = EngineMachine.TestCase
