"""Read-back helpers for the Shopify integration tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from connector.db.engine import Database
from connector.db.models import OrderLine, SalesOrder, Shop, WebhookEvent
from connector.db.uow import UnitOfWork


def lines_of(db: Database, shop_id: int, order_external_id: int | str) -> dict[str, dict[str, Any]]:
    """SKU → the line's numbers, for one order."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        order = uow.session.scalars(select(SalesOrder).where(SalesOrder.external_id == str(order_external_id))).first()
        assert order is not None, f"order {order_external_id} not in the database"
        return {
            str(ln.sku): {"ordered": ln.ordered, "allocated": ln.allocated, "backordered": ln.backordered,
                          "kind": ln.kind}
            for ln in uow.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
        }


def order_row(db: Database, shop_id: int, order_external_id: int | str) -> SalesOrder:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        order = uow.session.scalars(select(SalesOrder).where(SalesOrder.external_id == str(order_external_id))).first()
        assert order is not None
        uow.session.expunge(order)
        return order


def shop_row(db: Database, shop_id: int) -> Shop:
    with UnitOfWork(db, readonly=True) as uow:
        shop = uow.session.get(Shop, shop_id)
        assert shop is not None
        uow.session.expunge(shop)
        return shop


def creds(db: Database, shop_id: int) -> dict[str, Any]:
    """The shop's decrypted credentials (empty when dropped)."""
    return dict(shop_row(db, shop_id).credentials or {})


def event_count(db: Database, shop_id: int, topic: str | None = None) -> int:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        stmt = select(func.count(WebhookEvent.id))
        if topic:
            stmt = stmt.where(WebhookEvent.topic == topic)
        return int(uow.session.scalar(stmt) or 0)
