"""What the store should show for an order and its variants, built from the current state.

A push never replays the event that caused it: it reads the order, its lines and their
variants as they are now, so pushing twice (a retried outbox message, two events for the same
order) writes the same values, and an older message delivered late cannot roll the store back.

A variant push carries ``status`` and ``eta`` (the date, for themes that format it themselves)
and ``text``, the sentence themes print as is. The shop's ``storefront_eta`` setting picks how
that sentence gives the date: ``date`` ("Ships by 12 March"), ``weeks`` ("Ships in about 3
weeks") or ``hidden`` (empty text). ``status`` and ``eta`` are pushed whatever the choice, so
theme snippets written against them keep working.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date

from sqlalchemy import func, select

from connector.db.engine import Database
from connector.db.models import OrderLine, SalesOrder, Supplier, Variant
from connector.db.uow import UnitOfWork
from connector.domain.allocation import LineKind
from connector.domain.eta import promise, unpegged_eta
from connector.domain.records import LineStatusPush, OrderStatusPush, VariantStatusPush
from connector.messages import format_date
from connector.services.notifications import shop_language
from connector.services.settings_schema import eta_format
from connector.services.shop_settings import engine_settings

_WAITING_STATUS = {LineKind.PREORDER.value: "preorder", LineKind.DROPSHIP.value: "dropship"}


def line_status(line: OrderLine) -> str:
    """allocated | backordered | preorder | dropship | cancelled | shipped."""
    wanted = line.ordered - line.cancelled
    if wanted <= 0:
        return "cancelled"
    if line.backordered > 0:
        return _WAITING_STATUS.get(line.kind, "backordered")
    if line.fulfilled >= wanted:
        return "shipped"
    return "allocated"


def order_push(order: SalesOrder) -> OrderStatusPush:
    lines = tuple(
        LineStatusPush(
            line_external_id=ln.external_id,
            sku=ln.sku,
            status=line_status(ln),
            # What the customer was told (tolerance included), the same date as the e-mails.
            eta=ln.notified_eta if ln.backordered > 0 else None,
        )
        for ln in order.lines
    )
    return OrderStatusPush(order.external_id, any(ln.backordered > 0 for ln in order.lines), lines)


# The short text themes show next to the button, per shop language and ETA format.
VARIANT_TEXTS = {
    "en": {"backorder": "Ships by {date}", "preorder": "Pre-order: released on {date}",
           "backorder_weeks": "Ships in about {weeks}", "preorder_weeks": "Pre-order: released in about {weeks}",
           "week": "1 week", "weeks": "{n} weeks"},
    "fr": {"backorder": "Expédié d'ici le {date}", "preorder": "Précommande : sortie le {date}",
           "backorder_weeks": "Expédié dans environ {weeks}", "preorder_weeks": "Précommande : sortie dans environ {weeks}",
           "week": "1 semaine", "weeks": "{n} semaines"},
}


def eta_text(status: str, eta: date, today: date, fmt: str, language: str) -> str:
    """The theme's sentence for a ``backorder`` or ``preorder`` variant in the shop's format."""
    texts = VARIANT_TEXTS[language]
    if fmt == "hidden":
        return ""
    if fmt == "weeks":
        # Rounded up: "about 3 weeks" for 15 days keeps the promise; "about 2" would break it.
        n = max(1, math.ceil((eta - today).days / 7))
        weeks = texts["week"] if n == 1 else texts["weeks"].format(n=n)
        return texts[f"{status}_weeks"].format(weeks=weeks)
    return texts[status].format(date=format_date(eta, language))


def variant_pushes(db: Database, shop_id: int, variant_ids: list[int], today: date) -> list[VariantStatusPush]:
    """Backorder policy, status and the date a new order would be promised, per variant.

    The date: the last ETA among the lines already waiting (a new order queues behind them),
    or, when none waits, today + the supplier's lead time + handling; plus the shop's tolerance
    for the variant's value, like every promise. Variants without a platform id are skipped.
    """
    if not variant_ids:
        return []
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        settings = engine_settings(shop.settings)
        language = shop_language(shop.settings)
        fmt = eta_format(shop.settings)
        rows = uow.session.execute(
            select(Variant, Supplier.lead_time_days)
            .outerjoin(Supplier, Supplier.id == Variant.supplier_id)
            .where(Variant.id.in_(variant_ids), Variant.external_id.is_not(None))
            .order_by(Variant.id)
        ).all()
        latest: dict[int, date] = defaultdict(lambda: date.min)
        for variant_id, eta in uow.session.execute(
            select(OrderLine.variant_id, func.max(OrderLine.current_eta))
            .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
            .where(OrderLine.variant_id.in_(variant_ids), OrderLine.backordered > 0, SalesOrder.state == "open")
            .group_by(OrderLine.variant_id)
        ).tuples():
            if eta is not None and variant_id is not None:
                latest[variant_id] = eta
        pushes = []
        for variant, lead_time in rows:
            assert variant.external_id is not None
            status, eta, text = "in_stock", None, ""
            if variant.release_date is not None and variant.release_date > today:
                status, eta = "preorder", variant.release_date
                text = eta_text(status, eta, today, fmt, language)
            elif variant.free_stock <= 0 and variant.backorders_allowed and variant.tracks_inventory:
                lead = lead_time if lead_time is not None else settings.default_lead_time_days
                estimate = max(latest[variant.id], unpegged_eta(today, lead, settings.handling_days))
                status = "backorder"
                eta = promise(estimate, settings.tolerance_for(variant.unit_value_cents))
                text = eta_text(status, eta, today, fmt, language)
            pushes.append(VariantStatusPush(variant.external_id, variant.product_external_id,
                                            variant.backorders_allowed, status, eta, text))
        return pushes


def pushes_for_order(
    db: Database, shop_id: int, order_external_id: str, today: date
) -> tuple[OrderStatusPush | None, list[VariantStatusPush]]:
    """The order's current status push (None if unknown) and its variants' pushes."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        order = uow.find(SalesOrder, external_id=order_external_id)
        if order is None:
            return None, []
        push = order_push(order)
        variant_ids = sorted({ln.variant_id for ln in order.lines if ln.variant_id is not None})
    return push, variant_pushes(db, shop_id, variant_ids, today)


__all__ = ["eta_text", "line_status", "order_push", "pushes_for_order", "variant_pushes"]
