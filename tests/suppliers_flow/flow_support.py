"""Real situations for the supplier flow, built through the engine's own services."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from bootstrap.dispatch_suppliers import handlers
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import OutboxMessage, PurchaseOrder, Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import Address, OrderLineRecord, OrderRecord, OrderState
from connector.ports import OutboxEnvelope

SETTINGS = Settings(
    secret_key="flow-test-secret", app_url="https://connector.test", mail_from="Bois <orders@bois.test>", demo=True
)
SUPPLIER_EMAIL = "orders@atelier-nord.test"
WEBHOOK_SECRET = "whsec_flow_5f2c"
WAREHOUSE = {"name": "Bois & Lumière", "address1": "12 rue des Tanneurs", "city": "Lyon", "zip": "69002",
             "country_code": "FR"}


@dataclass(frozen=True)
class Seeded:
    supplier_id: int
    variants: dict[str, int]  # sku -> variant id


@dataclass
class SupplierApi:
    """A supplier's order API: records every request and answers with the queued statuses."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            self.requests.append((dict(request.headers), request.get_data()))
            status = self.statuses.pop(0) if self.statuses else 200
        response = Response(json.dumps({"ok": status < 300}), status=status, content_type="application/json")
        return response(environ, start_response)


def seed_supplier(
    db: Database,
    shop_id: int,
    *,
    skus: dict[str, tuple[str, int]],  # sku -> (title, unit cost cents)
    dropship: bool = False,
    delivery_method: str = "email",
    webhook_url: str | None = None,
    lead_time_days: int = 10,
    dropship_min_units: int = 0,
    dropship_min_value_cents: int = 0,
    dropship_max_wait_days: int | None = None,
) -> Seeded:
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        shop.name = "Bois & Lumière"
        shop.settings = {**(shop.settings or {}), "ship_to": WAREHOUSE}
        supplier = uow.add(
            Supplier(
                shop_id=shop_id, name="Atelier Nord", email=SUPPLIER_EMAIL, address="3 Industriestraße\n50667 Köln",
                delivery_method=delivery_method, webhook_url=webhook_url,
                webhook_secret=WEBHOOK_SECRET if delivery_method == "webhook" else None,
                currency="EUR", lead_time_days=lead_time_days, dropship=dropship,
                dropship_min_units=dropship_min_units, dropship_min_value_cents=dropship_min_value_cents,
                dropship_max_wait_days=dropship_max_wait_days,
            )
        )
        uow.session.flush()
        variants = {}
        for n, (sku, (title, cost)) in enumerate(skus.items(), start=1):
            uow.add(SupplierItem(shop_id=shop_id, supplier_id=supplier.id, sku=sku, supplier_sku=f"AN-{sku}",
                                 unit_cost_cents=cost))
            variant = uow.add(
                Variant(shop_id=shop_id, external_id=f"v{n}", sku=sku, title=title, supplier_id=supplier.id,
                        dropship=dropship, unit_value_cents=cost * 2, free_stock=0)
            )
            uow.session.flush()
            variants[sku] = variant.id
        uow.commit()
        return Seeded(supplier.id, variants)


def order_record(
    number: int, lines: dict[str, int], placed_at: datetime, variants: dict[str, int], *, city: str = "Boston"
) -> OrderRecord:
    skus = list(variants)
    return OrderRecord(
        external_id=f"o{number}",
        number=f"#{number}",
        state=OrderState.OPEN,
        placed_at=placed_at,
        updated_at=placed_at,
        lines=tuple(
            OrderLineRecord(
                external_id=f"o{number}-{sku}", quantity=qty, sku=sku, variant_external_id=f"v{skus.index(sku) + 1}",
                title=None, unit_price_cents=2500,
            )
            for sku, qty in lines.items()
        ),
        customer_email=f"customer{number}@example.com",
        customer_name=f"Customer {number}",
        ship_to=Address(name=f"Customer {number}", address1=f"{number} Main Street", city=city, zip="02110",
                        country_code="US"),
        currency="EUR",
    )


@dataclass
class Router:
    """The dispatcher ``deliver_due`` calls: supplier kinds to our handlers, the rest recorded
    (customer e-mails and storefront pushes belong to other dispatchers)."""

    routes: dict[str, Any]
    others: list[OutboxEnvelope] = field(default_factory=list)

    def __call__(self, message: OutboxEnvelope) -> None:
        handler = self.routes.get(message.kind)
        if handler is None:
            self.others.append(message)
            return
        handler(message)


def router(db: Database, mailer: Any, **kwargs: Any) -> Router:
    return Router(handlers(db, SETTINGS, mailer, **kwargs))


def outbox(db: Database, shop_id: int, kind: str | None = None) -> list[OutboxMessage]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            stmt = stmt.where(OutboxMessage.kind == kind)
        rows = list(uow.all(stmt))
        uow.session.expunge_all()
        return rows


def only_po(db: Database, shop_id: int) -> PurchaseOrder:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        [po] = uow.all(select(PurchaseOrder))
        _ = po.lines
        uow.session.expunge_all()
        return po


def shop_row(db: Database, shop_id: int) -> Shop:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        shop = uow.shop()
        uow.session.expunge_all()
        return shop


def dead_port() -> int:
    """A loopback port nobody listens on (an SMTP server that is down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def later(now: datetime, **delta: float) -> datetime:
    return now + timedelta(**delta)
