"""Plain inputs for supplier documents, filled by the delivery job from the database rows.

These are deliberately flat and frozen: the document builders are pure functions of them,
so the same PO always renders to the same CSV/JSON (and PDF content), whichever worker
retries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from connector.domain.records import Address


@dataclass(frozen=True, slots=True)
class PurchaseOrderLineDoc:
    supplier_sku: str
    sku: str
    title: str
    quantity: int
    unit_cost_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_cost_cents


@dataclass(frozen=True, slots=True)
class PurchaseOrderDoc:
    number: str
    created: date
    requested: date | None  # the delivery date we ask for; None = "as soon as possible"
    currency: str
    supplier_name: str
    supplier_email: str | None
    supplier_address: Address | None
    ship_to: Address
    lines: tuple[PurchaseOrderLineDoc, ...]
    buyer_name: str = ""  # the merchant's shop name, printed as the issuer
    notes: str = ""

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def total_units(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class DropshipLineDoc:
    order_number: str
    customer_name: str
    ship_to: Address
    sku: str
    supplier_sku: str
    quantity: int
    title: str = ""
    customer_email: str | None = None  # only if the merchant chose to share it with the supplier


@dataclass(frozen=True, slots=True)
class DropshipForwardDoc:
    number: str
    created: date
    supplier_name: str
    supplier_email: str | None
    lines: tuple[DropshipLineDoc, ...]
    buyer_name: str = ""
