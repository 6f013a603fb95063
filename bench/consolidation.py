"""Consolidation at scale: 100,000 open backordered lines across 5,000 SKUs and 50 suppliers.

Figures (SQLite and PostgreSQL): one consolidation, one no-op consolidation right after, one
full ETA recompute, each against the baseline measured in the same run: a single SQL
``GROUP BY supplier, sku`` over the same rows (the least work any consolidation must do).
Peak memory is the resident peak of the child process that runs the consolidation.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, fresh_database, postgres_available  # noqa: E402
from connector import crypto  # noqa: E402
from connector.config import DEMO_FERNET_KEY  # noqa: E402
from connector.db.engine import Database  # noqa: E402
from connector.db.models import OrderLine, SalesOrder, Shop, Supplier, SupplierItem, Variant  # noqa: E402

LINES = 100_000
SKUS = 5_000
SUPPLIERS = 50
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def seed(db: Database) -> int:
    """Bulk-insert the backlog through Core (the engine's services would take minutes)."""
    with db.engine.begin() as conn:
        shop_id = conn.execute(Shop.__table__.insert().values(  # type: ignore[attr-defined]
            platform="manual", domain="bench", name="Bench", created_at=NOW, settings={}, status="installed",
            scopes="", timezone="UTC", currency="USD", po_sequence=0, forward_sequence=0,
        )).inserted_primary_key[0]
        conn.execute(Supplier.__table__.insert(), [  # type: ignore[attr-defined]
            {"shop_id": shop_id, "name": f"Supplier {i:02d}", "lead_time_days": 7 + i % 14,
             "min_order_value_cents": 0, "delivery_method": "email", "currency": "USD", "auto_send": False,
             "dropship": False, "dropship_min_units": 0, "dropship_min_value_cents": 0}
            for i in range(SUPPLIERS)
        ])
        supplier_ids = [r[0] for r in conn.execute(select(Supplier.id).order_by(Supplier.id))]
        variants, items = [], []
        for i in range(SKUS):
            sup = supplier_ids[i % SUPPLIERS]
            sku = f"SKU-{i:05d}"
            variants.append({"shop_id": shop_id, "external_id": str(i), "sku": sku, "title": sku, "supplier_id": sup,
                             "backorders_allowed": True, "tracks_inventory": True, "dropship": False,
                             "unit_value_cents": 1000, "safety_stock": 0, "popular": False, "free_stock": 0})
            items.append({"shop_id": shop_id, "supplier_id": sup, "sku": sku, "supplier_sku": f"S-{sku}",
                          "unit_cost_cents": 500, "pack_size": (1, 4, 6, 12)[i % 4], "moq": (0, 0, 12, 24)[i % 4]})
        conn.execute(Variant.__table__.insert(), variants)  # type: ignore[attr-defined]
        conn.execute(SupplierItem.__table__.insert(), items)  # type: ignore[attr-defined]
        variant_ids = [r[0] for r in conn.execute(select(Variant.id).order_by(Variant.id))]
        eta_at_order = [NOW.date() + timedelta(days=7 + (i % SUPPLIERS) % 14 + 1) for i in range(SKUS)]
        orders = LINES // 2
        conn.execute(SalesOrder.__table__.insert(), [  # type: ignore[attr-defined]
            {"shop_id": shop_id, "external_id": str(o), "number": f"#{o}", "state": "open", "priority": 0,
             "placed_at": NOW + timedelta(seconds=o), "platform_updated_at": NOW, "created_at": NOW}
            for o in range(orders)
        ])
        order_ids = [r[0] for r in conn.execute(select(SalesOrder.id).order_by(SalesOrder.id))]
        rows = []
        for n in range(LINES):
            o = n // 2
            qty = 1 + n % 3
            rows.append({"shop_id": shop_id, "order_id": order_ids[o], "external_id": str(n),
                         "variant_id": variant_ids[(n * 7) % SKUS], "sku": None, "title": "", "unit_price_cents": 1000,
                         "kind": "backorder", "ordered": qty, "allocated": 0, "backordered": qty, "cancelled": 0,
                         "fulfilled": 0, "pegged": 0, "priority": 0, "placed_at": NOW + timedelta(seconds=o),
                         "waiting_since": NOW + timedelta(seconds=o),
                         # What order time promised: today + lead time + 1 handling day.
                         "promised_eta": eta_at_order[(n * 7) % SKUS], "notified_eta": eta_at_order[(n * 7) % SKUS],
                         "current_eta": eta_at_order[(n * 7) % SKUS]})
        conn.execute(OrderLine.__table__.insert(), rows)  # type: ignore[attr-defined]
    # A production database has been vacuumed and analysed (autovacuum); a bulk-loaded one has no
    # statistics yet, so PostgreSQL plans every UPDATE as a sequential scan, and autovacuum would
    # pick the fresh tables up in the middle of the measurement. Measure the realistic case.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if db.engine.dialect.name == "postgresql" else "ANALYZE")
    return int(shop_id)


def baseline(db: Database, shop_id: int) -> float:
    stmt = (
        select(Variant.supplier_id, Variant.sku, func.sum(OrderLine.backordered - OrderLine.pegged))
        .join(Variant, Variant.id == OrderLine.variant_id)
        .where(OrderLine.shop_id == shop_id, OrderLine.backordered > OrderLine.pegged)
        .group_by(Variant.supplier_id, Variant.sku)
    )
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        with db.engine.connect() as conn:
            conn.execute(stmt).all()
        best = min(best, time.perf_counter() - t0)
    return best


def _vm_hwm_mb() -> float:
    """This process's own resident peak. ru_maxrss survives exec on Linux, so a spawned child
    would report its parent's peak (the seeding); VmHWM starts afresh with the new program."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(url: str, shop_id: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from connector.services.consolidation import consolidate_backorders
    from connector.services.stock import recompute_all_etas

    crypto.configure_cipher([DEMO_FERNET_KEY])
    db = Database(url)
    rss_before = _vm_hwm_mb() * 1024
    t0 = time.perf_counter()
    first = consolidate_backorders(db, shop_id, NOW + timedelta(hours=1))
    t1 = time.perf_counter()
    second = consolidate_backorders(db, shop_id, NOW + timedelta(hours=1))
    t2 = time.perf_counter()
    etas = recompute_all_etas(db, shop_id, NOW + timedelta(hours=2))
    t3 = time.perf_counter()
    peak_mb = _vm_hwm_mb()
    queue.put({
        "consolidation": t1 - t0, "noop": t2 - t1, "etas": t3 - t2, "peak_mb": peak_mb,
        "rss_before_mb": rss_before / 1024, "pegged": first.pegged_to_drafts + first.pegged_to_open_pos,
        "noop_changed": second.changed, "eta_lines": etas.lines,
    })
    db.dispose()


def run(kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(kind, Path(tmp)) as db:
        t0 = time.perf_counter()
        shop_id = seed(db)
        seed_s = time.perf_counter() - t0
        base = baseline(db, shop_id)
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(db.url, shop_id, queue))
        proc.start()
        r = queue.get(timeout=600)
        proc.join()
        units = r["pegged"]
        emit("consolidation", f"{kind}.consolidation_s", r["consolidation"], "s", base, "<= 3 s and <= 5x baseline",
             r["consolidation"] <= 3 and r["consolidation"] <= 5 * base, lines=LINES, units_pegged=units,
             seed_s=round(seed_s, 2))
        emit("consolidation", f"{kind}.noop_consolidation_s", r["noop"], "s", base, "<= 1 s",
             r["noop"] <= 1 and not r["noop_changed"])
        emit("consolidation", f"{kind}.eta_recompute_s", r["etas"], "s", base, "reported", None,
             lines=r["eta_lines"])
        emit("consolidation", f"{kind}.peak_memory_mb", r["peak_mb"], "MB", r["rss_before_mb"], "<= 500 MB",
             r["peak_mb"] <= 500)


def main() -> None:
    run("sqlite")
    if postgres_available():
        run("postgres")
    else:
        print("# PostgreSQL not reachable: its figures are skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
