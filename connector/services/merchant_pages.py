"""Use cases behind the merchant pages that the engine services do not already cover:
suppliers, the supplier-terms CSV, per-variant settings, shop settings and e-mail templates.
Each function is one transaction scoped to one shop.

Shop settings live in ``Shop.settings`` (JSON). Keys written here, besides the engine's
(``handling_days``, ``tolerance_days``, ``tolerance_bands``, ``default_lead_time_days``):
``emails`` ({kind: bool}, a missing kind means on), ``retention_days``, ``storefront``
({primary_color, background_color, text_color}), ``templates`` ({kind: {language: {part: source}}})
and the keys checked by :mod:`connector.services.settings_schema` (schedules, language, branding,
cancellation mode, ship-to address, thirty-day auto-cancel, notify_by, storefront ETA format).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from connector.db.engine import Database
from connector.db.models import PurchaseOrder, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.supplier_csv import (
    ImportResult,
    SupplierTermsRow,
    export_supplier_csv,
    parse_supplier_csv,
)
from connector.errors import ValidationError
from connector.messages import (
    KINDS,
    LANGUAGES,
    PARTS,
    RenderedEmail,
    check_override,
    default_source,
    render,
    sample_context,
)
from connector.services.settings_schema import validate_settings
from connector.services.shop_settings import engine_settings

SUPPLIER_FIELDS = (
    "name", "email", "address", "delivery_method", "webhook_url", "currency", "lead_time_days",
    "min_order_value_cents", "max_wait_days", "auto_send", "dropship", "dropship_min_units",
    "dropship_min_value_cents", "dropship_max_wait_days",
)
VARIANT_PAGE_SIZE = 100


# Suppliers ----------------------------------------------------------------------------------


def list_suppliers(db: Database, shop_id: int) -> list[dict[str, Any]]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        counts = dict(
            uow.session.execute(
                select(SupplierItem.supplier_id, func.count()).group_by(SupplierItem.supplier_id)
            ).tuples().all()
        )
        return [
            {**{f: getattr(s, f) for f in SUPPLIER_FIELDS}, "id": s.id, "items": int(counts.get(s.id, 0))}
            for s in uow.all(select(Supplier).order_by(Supplier.name))
        ]


def supplier_values(db: Database, shop_id: int, supplier_id: int) -> dict[str, Any]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        s = uow.get(Supplier, supplier_id)
        return {**{f: getattr(s, f) for f in SUPPLIER_FIELDS}, "id": s.id}


def _check_supplier(uow: UnitOfWork, values: dict[str, Any], supplier_id: int | None) -> None:
    clash = uow.session.scalar(
        select(Supplier.id).where(func.lower(Supplier.name) == values["name"].lower(), Supplier.id != (supplier_id or 0))
    )
    if clash is not None:
        raise ValidationError("another supplier already has this name", field="name")
    if values["delivery_method"] == "email" and not values.get("email"):
        raise ValidationError("an e-mail address is needed to send purchase orders by e-mail", field="email")
    if values["delivery_method"] == "webhook" and not values.get("webhook_url"):
        raise ValidationError("a webhook URL is needed to send purchase orders by webhook", field="webhook_url")


def save_supplier(db: Database, shop_id: int, values: dict[str, Any], supplier_id: int | None = None) -> int:
    """Create (``supplier_id`` None) or update a supplier from validated form ``values``."""
    with UnitOfWork(db, shop_id) as uow:
        _check_supplier(uow, values, supplier_id)
        supplier = uow.get(Supplier, supplier_id) if supplier_id is not None else uow.add(Supplier(shop_id=shop_id))
        for f in SUPPLIER_FIELDS:
            setattr(supplier, f, values.get(f))
        uow.commit()
        return int(supplier.id)


def delete_supplier(db: Database, shop_id: int, supplier_id: int) -> None:
    with UnitOfWork(db, shop_id) as uow:
        supplier = uow.get(Supplier, supplier_id)
        if uow.session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.supplier_id == supplier.id).limit(1)):
            raise ValidationError("this supplier has purchase orders and cannot be deleted", field="supplier")
        uow.session.delete(supplier)
        try:
            uow.commit()
        except IntegrityError as exc:
            raise ValidationError("this supplier is still referenced and cannot be deleted", field="supplier") from exc


# Supplier terms CSV -------------------------------------------------------------------------


def import_supplier_terms(db: Database, shop_id: int, text: str) -> ImportResult:
    """Validate the whole file; save nothing unless every row is valid.

    Suppliers are matched by name (created when new), items by (supplier, SKU); each SKU's
    variant is mapped to the supplier of its row.
    """
    with UnitOfWork(db, shop_id) as uow:
        known = set(uow.session.scalars(select(Variant.sku)))
        result = parse_supplier_csv(text, known_skus=known)
        if not result.ok:
            return result
        suppliers = {s.name.casefold(): s for s in uow.all(select(Supplier))}
        for row in result.rows:
            supplier = suppliers.get(row.supplier.casefold())
            if supplier is None:
                supplier = uow.add(Supplier(shop_id=shop_id, name=row.supplier))
                suppliers[row.supplier.casefold()] = supplier
            supplier.email = row.email
            supplier.delivery_method = row.delivery_method
            supplier.webhook_url = row.webhook_url
            supplier.lead_time_days = row.lead_time_days
            supplier.min_order_value_cents = row.min_order_value_cents
            supplier.currency = row.currency
            supplier.max_wait_days = row.max_wait_days
            supplier.auto_send = row.auto_send
            supplier.dropship = row.dropship
            supplier.dropship_min_units = row.dropship_min_units
            supplier.dropship_min_value_cents = row.dropship_min_value_cents
            if "dropship_max_wait_days" in result.columns:  # a file without the column leaves it as it is
                supplier.dropship_max_wait_days = row.dropship_max_wait_days
            uow.session.flush()
            item = uow.find(SupplierItem, supplier_id=supplier.id, sku=row.sku)
            if item is None:
                item = uow.add(SupplierItem(shop_id=shop_id, supplier_id=supplier.id, sku=row.sku))
            item.supplier_sku = row.supplier_sku
            item.unit_cost_cents = row.unit_cost_cents
            item.pack_size = row.pack_size
            item.moq = row.moq
            for variant in uow.all(select(Variant).where(Variant.sku == row.sku)):
                variant.supplier_id = supplier.id
        uow.commit()
        return result


def export_supplier_terms(db: Database, shop_id: int) -> str:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = [
            SupplierTermsRow(
                supplier=s.name, email=s.email, delivery_method=s.delivery_method, webhook_url=s.webhook_url,
                lead_time_days=s.lead_time_days, min_order_value_cents=s.min_order_value_cents, currency=s.currency,
                max_wait_days=s.max_wait_days, auto_send=s.auto_send, dropship=s.dropship,
                dropship_min_units=s.dropship_min_units, dropship_min_value_cents=s.dropship_min_value_cents,
                dropship_max_wait_days=s.dropship_max_wait_days,
                sku=i.sku, supplier_sku=i.supplier_sku or i.sku, unit_cost_cents=i.unit_cost_cents,
                pack_size=i.pack_size, moq=i.moq,
            )
            for s, i in uow.session.execute(
                select(Supplier, SupplierItem).join(SupplierItem, SupplierItem.supplier_id == Supplier.id)
                .order_by(Supplier.name, SupplierItem.sku)
            ).tuples()
        ]
    return export_supplier_csv(rows)


# Variants -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariantSettings:
    backorders_allowed: bool
    release_date: date | None
    dropship: bool
    popular: bool
    safety_stock: int
    supplier_id: int | None


def list_variants(db: Database, shop_id: int, query: str | None, page: int = 1) -> tuple[list[dict[str, Any]], int]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        stmt = select(Variant).order_by(Variant.sku, Variant.id)
        if query:
            q = query.strip().lower()
            stmt = stmt.where(or_(func.lower(Variant.sku).contains(q, autoescape=True),
                                  func.lower(Variant.title).contains(q, autoescape=True)))
        total = int(uow.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
        rows = uow.all(stmt.limit(VARIANT_PAGE_SIZE).offset((max(page, 1) - 1) * VARIANT_PAGE_SIZE))
        return [_variant_dict(v) for v in rows], total


def variant_values(db: Database, shop_id: int, variant_id: int) -> dict[str, Any]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        v = uow.get(Variant, variant_id)
        return _variant_dict(v)


def _variant_dict(v: Variant) -> dict[str, Any]:
    return {"id": v.id, "sku": v.sku, "title": v.title, "backorders_allowed": v.backorders_allowed,
            "release_date": v.release_date, "dropship": v.dropship, "popular": v.popular,
            "safety_stock": v.safety_stock, "supplier_id": v.supplier_id, "free_stock": v.free_stock}


def update_variant_settings(db: Database, shop_id: int, variant_id: int, values: VariantSettings) -> None:
    if values.safety_stock < 0:
        raise ValidationError("safety stock must be >= 0", field="safety_stock")
    with UnitOfWork(db, shop_id) as uow:
        variant = uow.get(Variant, variant_id)
        if values.supplier_id is not None:
            uow.get(Supplier, values.supplier_id)  # another shop's supplier is NotFound
        variant.backorders_allowed = values.backorders_allowed
        variant.release_date = values.release_date
        variant.dropship = values.dropship
        variant.popular = values.popular
        variant.safety_stock = values.safety_stock
        variant.supplier_id = values.supplier_id
        uow.commit()


# Shop settings and templates ----------------------------------------------------------------


def shop_settings(db: Database, shop_id: int) -> dict[str, Any]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        return {"name": shop.name, "domain": shop.domain, "currency": shop.currency, "timezone": shop.timezone,
                **dict(shop.settings or {})}


def save_shop_settings(db: Database, shop_id: int, changes: dict[str, Any]) -> None:
    """Merge ``changes`` into the shop's settings once every key checks out, or save nothing.

    Raises ValidationError naming the bad key (``settings_schema`` for the merchant's keys, the
    engine for its own). ``timezone`` goes to the shop's column, the rest to the JSON settings.
    """
    checked = validate_settings(changes)
    timezone = checked.pop("timezone", None)
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        merged = {**(shop.settings or {}), **checked}
        engine_settings(merged)
        shop.settings = merged  # a new dict: the JSON column is not mutation-tracked
        if timezone is not None:
            shop.timezone = timezone
        uow.commit()


def _check_template_key(kind: str, language: str) -> None:
    if kind not in KINDS:
        raise ValidationError(f"unknown e-mail {kind!r}", field="kind")
    if language not in LANGUAGES:
        raise ValidationError(f"unknown language {language!r}", field="language")


def template_sources(db: Database, shop_id: int, kind: str, language: str) -> dict[str, tuple[str, bool]]:
    """Each part's source as the shop sends it, and whether it is the shop's own edit."""
    _check_template_key(kind, language)
    overrides = shop_settings(db, shop_id).get("templates", {}).get(kind, {}).get(language, {})
    return {
        part: (overrides[part], True) if part in overrides else (default_source(kind, language, part), False)
        for part in PARTS
    }


def preview_template(kind: str, language: str, parts: dict[str, str]) -> RenderedEmail:
    """Render ``parts`` against a sample order; a broken template raises ValidationError."""
    _check_template_key(kind, language)
    ctx = sample_context(kind, language)
    return render(ctx, {p: src for p, src in parts.items() if src != default_source(kind, language, p)} or None)


def save_template(db: Database, shop_id: int, kind: str, language: str, parts: dict[str, str]) -> None:
    """Store the parts that differ from the shipped ones; each must render on a sample order."""
    _check_template_key(kind, language)
    edited = {}
    for part, source in parts.items():
        if part not in PARTS:
            raise ValidationError(f"unknown part {part!r}", field="part")
        if source.replace("\r\n", "\n").strip() == default_source(kind, language, part).strip():
            continue
        check_override(kind, language, part, source)
        edited[part] = source.replace("\r\n", "\n")
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        settings = dict(shop.settings or {})
        templates = {k: {lang: dict(p) for lang, p in v.items()} for k, v in settings.get("templates", {}).items()}
        templates.setdefault(kind, {})[language] = edited
        if not edited:
            templates[kind].pop(language)
            if not templates[kind]:
                templates.pop(kind)
        settings["templates"] = templates
        shop.settings = settings
        uow.commit()


def reset_template(db: Database, shop_id: int, kind: str, language: str) -> None:
    save_template(db, shop_id, kind, language, {})
