"""Merchant pages at scale: dashboard and worklist for a shop with 10,000 open backorder lines.

Figures (SQLite and PostgreSQL): server time (median of 15 requests after a warm-up, measured
around the WSGI call, so no network or browser) and page weight (HTML bytes, plus the one shared
stylesheet). Statistics are refreshed (``ANALYZE``) after the bulk load. The baseline is a trivial page (``/healthz``) served by the same app in the same run.
Targets: < 300 ms and < 500 KB.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, fresh_database, postgres_available  # noqa: E402
from connector.config import Settings  # noqa: E402
from connector.db.engine import Database  # noqa: E402
from connector.db.models import (  # noqa: E402
    MerchantUser,
    OrderLine,
    SalesOrder,
    Shop,
    Supplier,
    SupplierItem,
    Variant,
)
from connector.services.consolidation import consolidate_backorders  # noqa: E402
from connector.web import create_app  # noqa: E402
from connector.web.pages import register_pages  # noqa: E402

OPEN_LINES = 10_000
COVERED_LINES = 10_000  # history for the two charts
SKUS = 1_000
SUPPLIERS = 20
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RUNS = 15
TARGET_MS = 300.0
TARGET_BYTES = 500_000


def _insert(conn, model, rows):  # type: ignore[no-untyped-def]
    conn.execute(model.__table__.insert(), rows)


def seed(db: Database) -> tuple[int, int]:
    """Bulk-insert the backlog through Core, then consolidate it once (so lines have pegs)."""
    with db.engine.begin() as conn:
        shop_id = conn.execute(Shop.__table__.insert().values(  # type: ignore[attr-defined]
            platform="manual", domain="bench-pages", name="Bench", created_at=NOW, settings={}, status="installed",
            scopes="", timezone="UTC", currency="USD", po_sequence=0, forward_sequence=0,
        )).inserted_primary_key[0]
        _insert(conn, Supplier, [
            {"shop_id": shop_id, "name": f"Supplier {i:02d}", "lead_time_days": 7 + i % 14, "min_order_value_cents": 0,
             "delivery_method": "email", "currency": "USD", "auto_send": False, "dropship": False,
             "dropship_min_units": 0, "dropship_min_value_cents": 0}
            for i in range(SUPPLIERS)
        ])
        supplier_ids = [r[0] for r in conn.execute(select(Supplier.id).order_by(Supplier.id))]
        variants, items = [], []
        for i in range(SKUS):
            sup = supplier_ids[i % SUPPLIERS]
            sku = f"SKU-{i:05d}"
            variants.append({"shop_id": shop_id, "external_id": str(i), "sku": sku, "title": f"Product {i}",
                             "supplier_id": sup, "backorders_allowed": True, "tracks_inventory": True,
                             "dropship": False, "unit_value_cents": 1000, "safety_stock": 0, "popular": False,
                             "free_stock": 0})
            items.append({"shop_id": shop_id, "supplier_id": sup, "sku": sku, "supplier_sku": f"S-{sku}",
                          "unit_cost_cents": 500, "pack_size": 1, "moq": 0})
        _insert(conn, Variant, variants)
        _insert(conn, SupplierItem, items)
        variant_ids = [r[0] for r in conn.execute(select(Variant.id).order_by(Variant.id))]
        total = OPEN_LINES + COVERED_LINES
        orders = total // 2
        _insert(conn, SalesOrder, [
            {"shop_id": shop_id, "external_id": str(o), "number": f"#{o}", "state": "open", "priority": 0,
             "customer_name": f"Customer {o}", "placed_at": NOW - timedelta(days=60) + timedelta(minutes=4 * o),
             "platform_updated_at": NOW, "created_at": NOW}
            for o in range(orders)
        ])
        order_ids = [r[0] for r in conn.execute(select(SalesOrder.id).order_by(SalesOrder.id))]
        rows = []
        for n in range(total):
            o = n // 2
            placed = NOW - timedelta(days=60) + timedelta(minutes=4 * o)
            qty = 1 + n % 3
            covered = n < COVERED_LINES
            v = (n * 7) % SKUS
            promised = (placed + timedelta(days=10)).date()
            rows.append({
                "shop_id": shop_id, "order_id": order_ids[o], "external_id": str(n), "variant_id": variant_ids[v],
                "sku": f"SKU-{v:05d}", "title": f"Product {v}", "unit_price_cents": 1000, "kind": "backorder",
                "ordered": qty, "allocated": qty if covered else 0, "backordered": 0 if covered else qty,
                "cancelled": 0, "fulfilled": 0, "pegged": 0, "priority": 0, "placed_at": placed,
                "waiting_since": None if covered else placed,
                "last_covered_at": placed + timedelta(days=6 + n % 9) if covered else None,
                "promised_eta": promised, "notified_eta": promised, "current_eta": promised,
            })
        for i in range(0, len(rows), 5_000):
            _insert(conn, OrderLine, rows[i : i + 5_000])
        user_id = conn.execute(MerchantUser.__table__.insert().values(  # type: ignore[attr-defined]
            shop_id=shop_id, email="bench@example.com", password_hash="-", created_at=NOW,
        )).inserted_primary_key[0]
    consolidate_backorders(db, shop_id, NOW)
    # A bulk load leaves the planner without statistics until autovacuum runs (a minute later
    # in production); without them PostgreSQL picks nested loops and pages take seconds.
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return shop_id, user_id


def measure(db: Database, kind: str) -> None:
    shop_id, user_id = seed(db)
    app = create_app(Settings(secret_key="bench"), db, clock=lambda: NOW)
    register_pages(app)
    client = app.test_client()
    with client.session_transaction() as session:
        session.update(user_id=user_id, shop_id=shop_id)
    css = len(client.get("/merchant/pages-static/pages.css").data)

    def serve(url: str) -> tuple[float, int]:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times), len(response.data)

    base_ms, base_bytes = serve("/healthz")
    for page, url in (("dashboard", "/merchant/"), ("worklist", "/merchant/worklist")):
        ms, size = serve(url)
        emit("pages", f"{page}_server_time_{kind}", ms, "ms", base_ms, f"< {TARGET_MS:.0f} ms", ms < TARGET_MS,
             open_lines=OPEN_LINES)
        weight = size + css
        emit("pages", f"{page}_page_weight_{kind}", weight, "bytes", base_bytes, f"< {TARGET_BYTES} bytes",
             weight < TARGET_BYTES, html_bytes=size, css_bytes=css)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        with fresh_database("sqlite", Path(tmp)) as db:
            measure(db, "sqlite")
        if postgres_available():
            with fresh_database("postgres", Path(tmp)) as db:
                measure(db, "postgres")
        else:
            print("# PostgreSQL not reachable: its figures are skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
