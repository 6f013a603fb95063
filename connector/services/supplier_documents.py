"""Read models of what a supplier is sent: one purchase order or one dropship forward.

Plain frozen dataclasses, detached from the session, so the supplier adapters (which the
connector never imports) can build their documents from them in the composition root. Every
read is scoped to one shop by the unit of work: another shop's id reads as not found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.db.engine import Database
from connector.db.models import (
    DropshipForward,
    OrderLine,
    PurchaseOrder,
    SalesOrder,
    Supplier,
    SupplierItem,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.records import Address

ADDRESS_FIELDS = ("name", "company", "address1", "address2", "city", "province", "zip", "country_code", "phone")


@dataclass(frozen=True, slots=True)
class SupplierContact:
    """How one supplier receives documents (from the supplier settings)."""

    id: int
    name: str
    email: str | None
    address: Address | None
    delivery_method: str  # email | webhook
    webhook_url: str | None
    webhook_secret: str | None = field(repr=False)  # never in logs or tracebacks
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class PurchaseOrderLineData:
    id: int
    sku: str
    supplier_sku: str
    title: str
    quantity: int
    received: int
    unit_cost_cents: int


@dataclass(frozen=True, slots=True)
class PurchaseOrderData:
    id: int
    shop_id: int
    number: str
    status: str
    created_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None
    expected_date: date
    expected_date_source: str
    currency: str
    buyer_name: str
    ship_to: Address  # the merchant's receiving address: shop setting ``ship_to``, else the shop name
    notes: str
    supplier: SupplierContact
    lines: tuple[PurchaseOrderLineData, ...]
    link_generation: int = 1  # the supplier link's generation; older links are refused
    link_issued_at: datetime | None = None  # set when the merchant issued a new link
    link_revoked: bool = False


@dataclass(frozen=True, slots=True)
class DropshipLineData:
    id: int
    order_id: int
    order_external_id: str
    order_number: str
    customer_name: str
    customer_email: str | None
    ship_to: Address
    sku: str
    supplier_sku: str
    title: str
    quantity: int  # units the supplier ships for this line
    shipped: bool


@dataclass(frozen=True, slots=True)
class DropshipForwardData:
    id: int
    shop_id: int
    number: str
    status: str
    reason: str
    created_at: datetime
    sent_at: datetime | None
    tracking: dict[str, Any] | None
    buyer_name: str
    supplier: SupplierContact
    lines: tuple[DropshipLineData, ...]
    link_generation: int = 1
    link_issued_at: datetime | None = None
    link_revoked: bool = False


def address_from(data: Any) -> Address | None:
    """An :class:`Address` from a stored dict (unknown keys ignored), or None."""
    if not isinstance(data, dict):
        return None
    return Address(**{k: (str(data[k]) if data.get(k) is not None else None) for k in ADDRESS_FIELDS if k in data})


def _supplier_address(name: str, text: str | None) -> Address | None:
    """The supplier's address is free text in the settings: first line as street, rest joined."""
    parts = [p.strip() for p in (text or "").splitlines() if p.strip()]
    if not parts:
        return None
    return Address(name=name, address1=parts[0], address2=", ".join(parts[1:]) or None)


def _contact(supplier: Supplier) -> SupplierContact:
    return SupplierContact(
        id=supplier.id,
        name=supplier.name,
        email=supplier.email,
        address=_supplier_address(supplier.name, supplier.address),
        delivery_method=supplier.delivery_method,
        webhook_url=supplier.webhook_url,
        webhook_secret=supplier.webhook_secret,
        currency=supplier.currency,
    )


def purchase_order_data(db: Database, shop_id: int, po_id: int) -> PurchaseOrderData:
    """One purchase order as its supplier sees it; raises ``NotFound`` for a missing PO."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        po = uow.get(PurchaseOrder, po_id)
        supplier = uow.get(Supplier, po.supplier_id)
        titles = dict(
            uow.session.execute(
                select(Variant.id, Variant.title).where(Variant.id.in_([pol.variant_id for pol in po.lines]))
            ).tuples().all()
        )
        lines = tuple(
            PurchaseOrderLineData(
                id=pol.id,
                sku=pol.sku,
                supplier_sku=pol.supplier_sku or pol.sku,
                title=titles.get(pol.variant_id) or "",
                quantity=pol.ordered,
                received=pol.received,
                unit_cost_cents=pol.unit_cost_cents,
            )
            for pol in po.lines
        )
        ship_to = address_from((shop.settings or {}).get("ship_to")) or Address(name=shop.name or shop.domain)
        return PurchaseOrderData(
            id=po.id,
            shop_id=shop.id,
            number=po.number,
            status=po.status,
            created_at=po.created_at,
            sent_at=po.sent_at,
            confirmed_at=po.confirmed_at,
            expected_date=po.expected_date,
            expected_date_source=po.expected_date_source,
            currency=supplier.currency,
            buyer_name=shop.name,
            ship_to=ship_to,
            notes=po.notes or "",
            supplier=_contact(supplier),
            lines=lines,
            link_generation=po.link_generation,
            link_issued_at=po.link_issued_at,
            link_revoked=po.link_revoked_at is not None,
        )


def forward_lines(session: Session, forward_id: int) -> list[tuple[OrderLine, SalesOrder]]:
    """The order lines a forward carries, with their orders, in order-then-line order."""
    return list(
        session.execute(
            select(OrderLine, SalesOrder)
            .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
            .where(OrderLine.dropship_forward_id == forward_id)
            .order_by(SalesOrder.placed_at, SalesOrder.id, OrderLine.id)
        ).tuples()
    )


def dropship_forward_data(db: Database, shop_id: int, forward_id: int) -> DropshipForwardData:
    """One dropship forward with every customer's ship-to; raises ``NotFound`` when missing."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        forward = uow.get(DropshipForward, forward_id)
        supplier = uow.get(Supplier, forward.supplier_id)
        rows = forward_lines(uow.session, forward.id)
        skus = {line.sku for line, _ in rows if line.sku}
        supplier_skus = dict(
            uow.session.execute(
                select(SupplierItem.sku, SupplierItem.supplier_sku).where(
                    SupplierItem.supplier_id == supplier.id, SupplierItem.sku.in_(skus)
                )
            ).tuples().all()
        )
        shipped_units = _shipped_units(forward.tracking)
        lines = []
        for line, order in rows:
            ship_to = address_from(order.ship_to) or Address(name=order.customer_name)
            sku = line.sku or ""
            lines.append(
                DropshipLineData(
                    id=line.id,
                    order_id=order.id,
                    order_external_id=order.external_id,
                    order_number=order.number,
                    customer_name=order.customer_name or ship_to.name or "",
                    customer_email=order.customer_email,
                    ship_to=ship_to,
                    sku=sku,
                    supplier_sku=supplier_skus.get(sku) or sku,
                    title=line.title,
                    quantity=shipped_units.get(line.id, line.backordered),
                    shipped=line.id in shipped_units,
                )
            )
        return DropshipForwardData(
            id=forward.id,
            shop_id=shop.id,
            number=forward.number,
            status=forward.status,
            reason=forward.reason,
            created_at=forward.created_at,
            sent_at=forward.sent_at,
            tracking=dict(forward.tracking) if forward.tracking else None,
            buyer_name=shop.name,
            supplier=_contact(supplier),
            lines=tuple(lines),
            link_generation=forward.link_generation,
            link_issued_at=forward.link_issued_at,
            link_revoked=forward.link_revoked_at is not None,
        )


def _shipped_units(tracking: dict[str, Any] | None) -> dict[int, int]:
    """Line id → units already shipped, from the forward's tracking record."""
    out: dict[int, int] = {}
    for parcel in (tracking or {}).get("parcels", []):
        for item in parcel.get("lines", []):
            out[int(item["id"])] = out.get(int(item["id"]), 0) + int(item["quantity"])
    return out
