"""A cancellation that overtakes the order's creation (webhooks arrive in any order).

The cancelled version is stored with its lines, all cancelled and nothing allocated; the late
``create`` (older ``updated_at``) is then stale and ignored, so no unit is taken from stock, no
line waits, and no customer is told about a wait. Both platforms, from payloads shaped exactly
like theirs (the recorded fixtures of the mapping tests).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.shopify.mapping import order_from_webhook
from adapters.woocommerce.mapping import order_from_payload
from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, SalesOrder, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderRecord
from connector.services.orders import record_order

TESTS = Path(__file__).resolve().parents[1]


def _shopify_versions() -> tuple[OrderRecord, OrderRecord]:
    created = json.loads((TESTS / "shopify/fixtures/orders_create.json").read_text())
    created["financial_status"] = "paid"
    cancelled = copy.deepcopy(created)
    cancelled.update(cancelled_at="2026-03-05T11:00:00-05:00", updated_at="2026-03-05T11:00:02-05:00",
                     cancel_reason="customer", financial_status="refunded")
    for line in cancelled["line_items"]:
        line["current_quantity"] = 0  # a cancelled Shopify order keeps `quantity`, current drops to 0
    return order_from_webhook(created), order_from_webhook(cancelled)


def _woocommerce_versions() -> tuple[OrderRecord, OrderRecord]:
    created = json.loads((TESTS / "woocommerce/payloads/order_727_de.json").read_text())
    created.update(status="processing", date_modified_gmt="2026-03-29T01:05:40")
    cancelled = dict(created, status="cancelled", date_modified_gmt="2026-03-29T09:12:00")
    return order_from_payload(created), order_from_payload(cancelled)


VERSIONS = {"shopify": _shopify_versions, "woocommerce": _woocommerce_versions}


def _stock(db: Database, shop_id: int, record: OrderRecord, units: int) -> None:
    """Every SKU of the order in stock (``units`` each), so an allocation would show in free_stock."""
    with UnitOfWork(db, shop_id) as uow:
        for line in record.lines:
            if line.sku:
                uow.add(Variant(external_id=line.variant_external_id, sku=line.sku, title=line.title or "",
                                free_stock=units, backorders_allowed=True))
        uow.commit()


def _state(db: Database, shop_id: int) -> dict[str, Any]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        s = uow.session
        order = s.scalars(select(SalesOrder)).one()
        lines = {ln.external_id: (ln.ordered, ln.allocated, ln.backordered, ln.cancelled)
                 for ln in s.scalars(select(OrderLine))}
        return {
            "state": order.state,
            "updated_at": order.platform_updated_at,
            "lines": lines,
            # Lines without a SKU get a placeholder variant (no stock); only the stocked SKUs count.
            "free_stock": {v.sku: v.free_stock for v in s.scalars(select(Variant)) if not v.sku.startswith("variant-")},
            "messages": s.scalar(select(func.count()).select_from(OutboxMessage)),
        }


@pytest.mark.parametrize("platform", sorted(VERSIONS))
def test_a_cancellation_before_the_create_stores_the_lines_cancelled_and_the_late_create_changes_nothing(
        db: Database, shop_id: int, now: datetime, platform: str) -> None:
    created, cancelled = VERSIONS[platform]()
    assert created.updated_at < cancelled.updated_at
    _stock(db, shop_id, created, units=5)

    assert record_order(db, shop_id, cancelled, now).outcome == "created"
    first = _state(db, shop_id)
    assert record_order(db, shop_id, created, now + timedelta(seconds=5)).outcome == "stale"
    after_create = _state(db, shop_id)

    assert first == after_create
    assert first["state"] == "closed" and first["updated_at"] == cancelled.updated_at
    # Every line of the order is there, cancelled, holding nothing.
    assert set(first["lines"]) == {line.external_id for line in cancelled.lines}
    for ext_id, (ordered, allocated, backordered, cancelled_units) in first["lines"].items():
        expected = next(line.quantity for line in cancelled.lines if line.external_id == ext_id)
        assert (ordered, allocated, backordered, cancelled_units) == (expected, 0, 0, expected), ext_id
    assert set(first["free_stock"].values()) == {5}  # nothing was allocated
    assert first["messages"] == 0  # no customer hears about a wait, no storefront push


@pytest.mark.parametrize("platform", sorted(VERSIONS))
def test_in_the_usual_order_the_cancellation_gives_the_stock_back(
        db: Database, shop_id: int, now: datetime, platform: str) -> None:
    created, cancelled = VERSIONS[platform]()
    _stock(db, shop_id, created, units=5)
    record_order(db, shop_id, created, now)
    taken = _state(db, shop_id)
    assert any(stock < 5 for stock in taken["free_stock"].values())

    assert record_order(db, shop_id, cancelled, now + timedelta(minutes=1)).outcome == "updated"
    state = _state(db, shop_id)
    assert state["state"] == "closed" and set(state["free_stock"].values()) == {5}
    assert all(allocated == backordered == 0 for _, allocated, backordered, _ in state["lines"].values())
    # The late replay of the create is stale here too.
    assert record_order(db, shop_id, created, now + timedelta(minutes=2)).outcome == "stale"
    assert _state(db, shop_id) == state
