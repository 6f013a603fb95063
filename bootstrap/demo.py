"""``backorders demo``: the product's main job end to end on the embedded default.

A fresh SQLite database under ``./var/``, no account and no network: a small outdoor-furniture
shop sells past its stock, the engine backorders what stock cannot cover, consolidates one
purchase order per supplier, the supplier's date slips (customers get one apology each), and a
receipt fills the oldest orders first. ``--once --json`` prints one summary line and exits;
otherwise the web app keeps serving the result on 127.0.0.1:5000 until Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bootstrap.wiring import build_database
from connector.config import load_settings
from connector.db import migrate
from connector.db.engine import Database
from connector.db.models import OrderLine, OutboxMessage, PurchaseOrder, Shop, Supplier, SupplierItem, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.services.consolidation import consolidate_backorders
from connector.services.orders import record_order
from connector.services.purchasing import receive_purchase_order, send_purchase_order, set_expected_date

DEMO_DB = Path("var/demo.sqlite3")


@dataclass
class DemoLog:
    lines: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def say(self, text: str) -> None:
        self.lines.append(text)


def _fresh_database(url: str | None) -> tuple[Database, Any]:
    settings = load_settings(demo=True, dotenv_path=None, **({"database_url": url} if url else {
        "database_url": f"sqlite:///{DEMO_DB}"}))
    if settings.is_sqlite and url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
    db = build_database(settings)
    migrate.upgrade(db)
    return db, settings


def _seed_catalogue(db: Database, now: datetime) -> int:
    with UnitOfWork(db) as uow:
        shop = Shop(platform="manual", domain="demo-outdoor", name="Demo Outdoor Co.", created_at=now,
                    settings={"handling_days": 1, "tolerance_days": 2})
        uow.add(shop)
        uow.commit()
        shop_id = shop.id
    with UnitOfWork(db, shop_id) as uow:
        acme = uow.add(Supplier(name="Acme Furniture", email="orders@acme.example", lead_time_days=14,
                                min_order_value_cents=50_000, max_wait_days=3))
        lumen = uow.add(Supplier(name="Lumen Lights", email="po@lumen.example", lead_time_days=10))
        uow.session.flush()
        uow.add(SupplierItem(supplier_id=acme.id, sku="CHAIR-OAK", supplier_sku="AC-1001", pack_size=6, moq=12,
                             unit_cost_cents=4_000))
        uow.add(SupplierItem(supplier_id=acme.id, sku="TABLE-OAK", supplier_sku="AC-2001", pack_size=1, moq=2,
                             unit_cost_cents=15_000))
        uow.add(SupplierItem(supplier_id=lumen.id, sku="LAMP-BRASS", supplier_sku="LL-77", pack_size=4, moq=0,
                             unit_cost_cents=2_500))
        uow.add(Variant(external_id="v-chair", sku="CHAIR-OAK", title="Oak chair", supplier_id=acme.id,
                        free_stock=2, unit_value_cents=12_000))
        uow.add(Variant(external_id="v-table", sku="TABLE-OAK", title="Oak table", supplier_id=acme.id,
                        free_stock=1, unit_value_cents=45_000))
        uow.add(Variant(external_id="v-lamp", sku="LAMP-BRASS", title="Brass lamp", supplier_id=lumen.id,
                        free_stock=0, unit_value_cents=6_000, release_date=(now + timedelta(days=20)).date()))
        uow.commit()
    return shop_id


ORDERS = [
    ("1001", "Ada Lovelace", [("CHAIR-OAK", 3)]),
    ("1002", "Grace Hopper", [("CHAIR-OAK", 4), ("TABLE-OAK", 1)]),
    ("1003", "Alan Turing", [("TABLE-OAK", 2)]),
    ("1004", "Edsger Dijkstra", [("LAMP-BRASS", 2)]),
    ("1005", "Barbara Liskov", [("CHAIR-OAK", 2), ("LAMP-BRASS", 1)]),
]


def run_engine_story(db: Database, shop_id: int, start: datetime, log: DemoLog) -> None:
    now = start
    for number, customer, lines in ORDERS:
        now += timedelta(hours=1)
        record = OrderRecord(
            external_id=number, number=f"#{number}", state=OrderState.OPEN, placed_at=now, updated_at=now,
            customer_email=f"{customer.split()[0].lower()}@example.com", customer_name=customer,
            lines=tuple(OrderLineRecord(external_id=f"{number}-{i}", quantity=q, sku=sku,
                                        variant_external_id=None) for i, (sku, q) in enumerate(lines, 1)),
        )
        result = record_order(db, shop_id, record, now)
        log.counts["orders"] += 1
        log.say(f"order #{number} from {customer}: {result.backordered_units} unit(s) wait")
    now += timedelta(hours=1)
    result = consolidate_backorders(db, shop_id, now)
    log.say(f"consolidation: {result.drafts_created} draft PO(s), {result.pegged_to_drafts} unit(s) pegged, "
            f"ready: {', '.join(result.drafts_ready) or 'none'}")
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        pos = [(po.id, po.number, po.status) for po in uow.all(select(PurchaseOrder).order_by(PurchaseOrder.id))]
    now += timedelta(hours=2)
    for po_id, number, status in pos:
        if status in ("draft", "ready"):
            send_purchase_order(db, shop_id, po_id, now)
            log.counts["purchase_orders_sent"] += 1
            log.say(f"{number} sent")
    # The supplier confirms a later date for the first PO: every waiting customer is told once.
    now += timedelta(days=1)
    first_po = pos[0][0]
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        expected = uow.get(PurchaseOrder, first_po).expected_date
    set_expected_date(db, shop_id, first_po, expected + timedelta(days=5), now, source="supplier",
                      reason="factory backlog")
    log.say(f"{pos[0][1]}: supplier moved the date to {expected + timedelta(days=5)}")
    # A partial receipt: the oldest orders are filled first.
    now += timedelta(days=6)
    receive_purchase_order(db, shop_id, first_po, {"CHAIR-OAK": 6}, now)
    log.say(f"{pos[0][1]}: received 6 x CHAIR-OAK")


def summary(db: Database, shop_id: int) -> dict[str, Any]:
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        s = uow.session
        events = Counter(dict(s.execute(select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind)).all()))
        waiting = s.execute(
            select(func.count(), func.coalesce(func.sum(OrderLine.backordered), 0)).where(OrderLine.backordered > 0)
        ).one()
        pos = Counter(dict(s.execute(select(PurchaseOrder.status, func.count()).group_by(PurchaseOrder.status)).all()))
        return {
            "orders": int(s.scalar(select(func.count(func.distinct(OrderLine.order_id)))) or 0),
            "lines_backordered_at_order_time": int(events.get("backordered", 0) + events.get("preorder", 0)),
            "purchase_orders": dict(pos),
            "lines_still_waiting": int(waiting[0]),
            "units_still_waiting": int(waiting[1]),
            "delay_notices": int(events.get("delayed", 0)),
            "ready_notices": int(events.get("allocated", 0)),
            "outbox_messages": int(sum(events.values())),
        }


def run_demo(*, once: bool, as_json: bool, host: str, port: int, database_url: str | None = None) -> int:
    db, settings = _fresh_database(database_url)
    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    log = DemoLog()
    shop_id = _seed_catalogue(db, start)
    run_engine_story(db, shop_id, start, log)
    result = summary(db, shop_id)
    if as_json:
        print(json.dumps({"demo": "ok", **result}, sort_keys=True))
    else:
        for line in log.lines:
            print(f"  {line}")
        print(json.dumps(result, indent=2, sort_keys=True))
    if once:
        db.dispose()
        return 0
    from connector.web import create_app

    app = create_app(settings, db)
    print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr)
    app.run(host=host, port=port, debug=False, use_reloader=False)
    return 0
