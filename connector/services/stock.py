"""Stock use cases: a stock count or adjustment, and the full ETA recompute."""

from __future__ import annotations

from datetime import datetime

from connector.db.engine import Database
from connector.db.models import Variant
from connector.db.uow import UnitOfWork
from connector.errors import NotFound, ValidationError
from connector.services import events
from connector.services.etas import EtaResult, recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.stock_flow import set_on_hand


def set_stock_on_hand(db: Database, shop_id: int, sku: str, on_hand: int, now: datetime) -> None:
    """A stock count (or a store-side adjustment) says the shelf holds ``on_hand`` units."""
    if on_hand < 0:
        raise ValidationError("on_hand must be >= 0", field="on_hand")
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        variant = uow.find(Variant, sku=sku)
        if variant is None:
            raise NotFound(f"no variant with SKU {sku}", field="sku")
        changes = Changes(now)
        set_on_hand(uow.session, variant, on_hand, changes)
        recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
        events.flush(uow.session, shop.id, changes)
        uow.commit()


def recompute_all_etas(db: Database, shop_id: int, now: datetime) -> EtaResult:
    """The daily pass: every open line's ETA, with delays detected and recorded."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        changes = Changes(now)
        result = recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, None)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
        return result
