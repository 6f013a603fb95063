"""Read model of the shopper's backorder page (public), reused by the platform app proxies."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from connector.db.engine import Database
from connector.db.models import OrderLine, Shop, Variant
from connector.db.uow import UnitOfWork

MAX_RESULTS = 200
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOURS = {"primary_color": "#1f5f8b", "background_color": "#ffffff", "text_color": "#1d1d1d"}


def shop_for_domain(db: Database, domain: str) -> tuple[int, str, dict[str, str]] | None:
    """The installed shop with this domain: id, display name, storefront colours."""
    with UnitOfWork(db, readonly=True) as uow:
        shop = uow.session.scalars(
            select(Shop).where(Shop.domain == domain, Shop.status == "installed").order_by(Shop.id)
        ).first()
        if shop is None:
            return None
        colours = dict(DEFAULT_COLOURS)
        for key, value in (shop.settings or {}).get("storefront", {}).items():
            # Only #rrggbb reaches the page's <style>: settings written elsewhere are not trusted.
            if key in colours and isinstance(value, str) and COLOUR.match(value):
                colours[key] = value
        return shop.id, shop.name or shop.domain, colours


def storefront_backorders(db: Database, shop_id: int, query: str | None, today: date | None = None) -> list[dict[str, Any]]:
    """Variants a shopper can order now and receive later, with the date we expect them.

    A variant is listed while order lines wait for it (backorder or preorder) and it may still
    be sold past zero, or while its release date is in the future. ``eta`` is the earliest current ETA among its waiting lines,
    else its release date; ``query`` matches title or SKU (case-insensitive substring).
    """
    today = today or datetime.now(UTC).date()
    waiting_kinds = ("backorder", "preorder")
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        etas = (
            select(OrderLine.variant_id.label("variant_id"), func.min(OrderLine.current_eta).label("eta"),
                   func.sum(OrderLine.backordered).label("units"))
            .where(OrderLine.backordered > 0, OrderLine.kind.in_(waiting_kinds))
            .group_by(OrderLine.variant_id)
            .subquery()
        )
        stmt = (
            select(Variant.sku, Variant.title, Variant.release_date, etas.c.eta, etas.c.units)
            .outerjoin(etas, etas.c.variant_id == Variant.id)
            .where(or_(and_(etas.c.variant_id.is_not(None), Variant.backorders_allowed.is_(True)),
                       Variant.release_date > today))
            .order_by(Variant.title, Variant.sku)
            .limit(MAX_RESULTS)
        )
        if query and query.strip():
            q = query.strip().lower()[:100]
            stmt = stmt.where(
                or_(func.lower(Variant.title).contains(q, autoescape=True),
                    func.lower(Variant.sku).contains(q, autoescape=True))
            )
        results = []
        for sku, title, release, eta, _units in uow.session.execute(stmt):
            preorder = release is not None and release > today
            when = eta or release
            results.append({
                "sku": sku,
                "title": title or sku,
                "status": "preorder" if preorder else "backorder",
                "eta": when.isoformat() if when else None,
                "release_date": release.isoformat() if release else None,
            })
        return results
