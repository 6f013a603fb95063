"""Shopify order sync against the sandbox, at a real restore rate, and a bulk backfill.

Figures:

* ``sync.wall_s``: the incremental pull of every order (``ShopifyStorefront.fetch_orders_since``
  with an ``updated_at`` cursor a day before the first order, as the periodic pull sends it:
  GraphQL pages) from a sandbox throttled at ``BENCH_SHOPIFY_RESTORE_RATE`` points/s (default
  1,000, Shopify Plus). Not a first pull (no cursor): for a shop above
  ``SHOPIFY_BULK_BACKFILL_ORDERS`` (2,000) that one goes through a bulk operation instead, which
  ``bulk.*`` below measures, and at the issue's 5,000 orders this figure would not page at all.
  The floor is measured in the same run: the sum of ``extensions.cost.actualQueryCost`` of every
  answered query ÷ the restore rate (what the bucket lets through at best). Target: wall
  ≤ 1.15 × floor. The bucket is ``BENCH_SHOPIFY_BUCKET`` points (default 1,000: one maximal
  query; a bigger bucket gives the first points away for free and hides pacing overhead).
* ``sync.throttled_to_caller``: THROTTLED errors that reached the caller (a ``ThrottledError``
  out of the storefront). Target 0. The throttled answers the client absorbed itself are
  reported beside it.
* ``bulk.peak_rss_mb``: a bulk backfill (``bulk_backfill_orders``) of
  ``BENCH_SHOPIFY_BULK_ORDERS`` orders streamed from the JSONL file, in a child process whose
  resident peak (``VmHWM``) is measured. Target ≤ 200 MB.

Both pulls run in a spawned child (the client side); the sandbox serves from this process.
Issue sizes: 5,000 orders × 3 lines, 50,000 for the backfill. At 1,000 points/s the
5,000-order pull alone is ~4.5 minutes (53 points an order), so the default is
``BENCH_SHOPIFY_ORDERS=2000``; set it to 5000 for the issue's size.

Run ``python -m bench.shopify_sync``; one JSON line per figure on stdout, progress on stderr.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import emit
from sandbox.shopify import store
from sandbox.shopify.server import SandboxShopify
from sandbox.shopify.store import LineItem, Order

BENCH = "shopify_sync"
API_VERSION = "2025-01"  # the version of the reference schema the sandbox validates against
TARGET_RATIO = 1.15
TARGET_BULK_MB = 200.0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _rss_mb(field: str = "VmHWM") -> float:
    """This process's resident peak (``VmHWM``) or current size (``VmRSS``) in MB.

    Not ``ru_maxrss``: Linux carries it across ``exec``, so a spawned child would report the
    parent's size at the moment it was forked (the parent holds the whole sandbox shop).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------------


def seed(sb: SandboxShopify, orders: int, lines: int, skus: int = 30) -> None:
    """``orders`` orders of ``lines`` catalog lines each, written straight into the sandbox shop.

    ``SandboxShopify.create_order`` scans every order for the newest ``updated_at`` on each call
    (quadratic at 50,000 orders) and renders a webhook payload; this builds the same
    ``Order``/``LineItem`` objects directly, one second apart like the sandbox's own clock.
    """
    shop = sb.shop()
    if not shop.products:
        sb.create_product(
            "Bench Mug",
            [{"sku": f"MUG-{i:03d}", "price": 1200 + i, "available": 0, "inventory_policy": "continue",
              "title": f"Colour {i}"} for i in range(skus)],
        )
    variants = shop.variants()
    product = shop.products[variants[0].product_id]
    start = store.utcnow() - timedelta(seconds=orders + len(shop.orders) + 10)
    with sb.lock:
        base = len(shop.orders)
        for n in range(orders):
            items = []
            for k in range(lines):
                v = variants[(n * lines + k) % len(variants)]
                items.append(LineItem(store.next_id(), product.title, 1 + (n + k) % 3, v.price_cents, v.sku,
                                      v.id, product.id, v.title))
            order = Order(
                id=store.next_id(), number=shop.next_order_number, email=f"buyer{n}@example.com",
                line_items=items,
                customer={"id": store.next_id(), "first_name": "Ada", "last_name": f"Buyer{n}"},
                shipping_address={"first_name": "Ada", "last_name": f"Buyer{n}", "address1": "1 Analytical Way",
                                  "city": "London", "zip": "N1 9GU", "country": "United Kingdom",
                                  "country_code": "GB"},
                currency=shop.currency,
            )
            order.created_at = order.updated_at = start + timedelta(seconds=base + n)
            shop.next_order_number += 1
            shop.orders[order.id] = order


# ---------------------------------------------------------------------------------------------
# the client side (a spawned child)
# ---------------------------------------------------------------------------------------------


def _client(base_url: str, shop: str, token: str, timeout: float) -> Any:
    import requests

    from adapters.shopify.client import ShopifyClient

    costs: list[float] = []

    def record_cost(response: Any, *args: Any, **kwargs: Any) -> None:
        if not response.request.url.endswith("/graphql.json") or response.status_code != 200:
            return
        try:
            cost = (response.json().get("extensions") or {}).get("cost") or {}
        except ValueError:
            return
        if cost.get("actualQueryCost") is not None:
            costs.append(float(cost["actualQueryCost"]))

    session = requests.Session()
    session.hooks["response"].append(record_cost)
    client = ShopifyClient(shop, token, API_VERSION, session=session, base_url=base_url, timeout=timeout)
    return client, costs


def _sync_child(base_url: str, shop: str, token: str, queue: Any) -> None:
    from adapters.shopify.storefront import ShopifyStorefront
    from connector.errors import ThrottledError

    client, costs = _client(base_url, shop, token, timeout=30)
    storefront = ShopifyStorefront(client)
    rss_before = _rss_mb("VmRSS")
    orders = lines = throttled_to_caller = 0
    error = None
    t0 = time.perf_counter()
    since = datetime.now(UTC) - timedelta(days=1)  # every seeded order is newer (see seed)
    try:
        for record in storefront.fetch_orders_since(since):
            orders += 1
            lines += len(record.lines)
    except ThrottledError as exc:
        throttled_to_caller += 1
        error = repr(exc)
    except Exception as exc:  # noqa: BLE001 - reported as a failed figure, not a traceback
        error = repr(exc)
    wall = time.perf_counter() - t0
    queue.put({"wall": wall, "orders": orders, "lines": lines, "costs": costs,
               "throttled_to_caller": throttled_to_caller, "error": error, "stats": dict(client.stats),
               "peak_mb": _rss_mb(), "rss_before_mb": rss_before})


def _bulk_child(base_url: str, shop: str, token: str, queue: Any) -> None:
    from adapters.shopify.storefront import ShopifyStorefront

    # the sandbox runs the whole bulk query inside the mutation request, so it may take minutes
    client, _ = _client(base_url, shop, token, timeout=900)
    storefront = ShopifyStorefront(client, bulk_poll_interval=0.05)
    rss_before = _rss_mb("VmRSS")
    orders = lines = 0
    error = None
    t0 = time.perf_counter()
    first_at = None
    try:
        for record in storefront.bulk_backfill_orders():
            if first_at is None:
                first_at = time.perf_counter() - t0
            orders += 1
            lines += len(record.lines)
    except Exception as exc:  # noqa: BLE001
        error = repr(exc)
    wall = time.perf_counter() - t0
    queue.put({"wall": wall, "first_record_s": first_at, "orders": orders, "lines": lines, "error": error,
               "peak_mb": _rss_mb(), "rss_before_mb": rss_before})


def _in_child(target: Any, *args: Any, timeout: float = 1800) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        result: dict[str, Any] = queue.get(timeout=timeout)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    return result


# ---------------------------------------------------------------------------------------------
# the two runs
# ---------------------------------------------------------------------------------------------


def run_sync(orders: int, lines: int, restore_rate: float, bucket: float) -> dict[str, Any]:
    sb = SandboxShopify(restore_rate=restore_rate, bucket_size=bucket)
    sb.start()
    try:
        t0 = time.perf_counter()
        seed(sb, orders, lines)
        _log(f"seeded {orders} orders x {lines} lines in {time.perf_counter() - t0:.1f} s")
        token = sb.issue_token()
        result = _in_child(_sync_child, sb.base_url, sb.default_shop, token)
        result["server_throttled"] = sum(1 for r in sb.requests if r.get("throttled"))
        result["server_requests"] = len(sb.requests)
    finally:
        sb.stop()
    cost = sum(result["costs"])
    floor = cost / restore_rate
    complete = result["error"] is None and result["orders"] == orders and result["lines"] == orders * lines
    emit(BENCH, "sync.wall_s", result["wall"], "s", floor, f"<= {TARGET_RATIO}x floor (sum of actual cost / restore rate)",
         complete and result["wall"] <= TARGET_RATIO * floor, orders=result["orders"], lines=result["lines"],
         expected_orders=orders, queries=len(result["costs"]), actual_cost_points=cost,
         restore_rate=restore_rate, bucket=bucket, paced_s=round(result["stats"]["paced_seconds"], 2),
         # the bucket starts full, so that much is free: the strict floor is lower by bucket/rate
         floor_less_initial_bucket_s=round(max(0.0, cost - bucket) / restore_rate, 3),
         error=result["error"])
    emit(BENCH, "sync.throttled_to_caller", result["throttled_to_caller"], "errors", None, "0",
         result["throttled_to_caller"] == 0 and result["error"] is None,
         throttled_absorbed_by_client=result["stats"]["throttled"], throttled_answers_by_sandbox=result["server_throttled"])
    emit(BENCH, "sync.peak_rss_mb", result["peak_mb"], "MB", result["rss_before_mb"], "reported", None)
    return result


def run_bulk(orders: int, lines: int) -> dict[str, Any]:
    # throttling is not what this measures: a Plus-sized bucket
    sb = SandboxShopify(restore_rate=1000, bucket_size=20_000, bulk_polls=1)
    sb.start()
    try:
        t0 = time.perf_counter()
        seed(sb, orders, lines)
        _log(f"seeded {orders} orders x {lines} lines in {time.perf_counter() - t0:.1f} s")
        token = sb.issue_token()
        result = _in_child(_bulk_child, sb.base_url, sb.default_shop, token)
    finally:
        sb.stop()
    complete = result["error"] is None and result["orders"] == orders and result["lines"] == orders * lines
    emit(BENCH, "bulk.peak_rss_mb", result["peak_mb"], "MB", result["rss_before_mb"], f"<= {TARGET_BULK_MB:.0f} MB",
         complete and result["peak_mb"] <= TARGET_BULK_MB, orders=result["orders"], lines=result["lines"],
         expected_orders=orders, error=result["error"])
    emit(BENCH, "bulk.wall_s", result["wall"], "s", None, "reported", None, orders=result["orders"],
         first_record_s=None if result["first_record_s"] is None else round(result["first_record_s"], 2),
         note="includes the sandbox executing the whole bulk query inside the mutation request")
    return result


def main() -> None:
    lines = _env_int("BENCH_SHOPIFY_LINES", 3)
    orders = _env_int("BENCH_SHOPIFY_ORDERS", 2000)
    bulk = _env_int("BENCH_SHOPIFY_BULK_ORDERS", 50_000)
    rate = float(_env_int("BENCH_SHOPIFY_RESTORE_RATE", 1000))
    bucket = float(_env_int("BENCH_SHOPIFY_BUCKET", 1000))
    if orders > 0:
        _log(f"sync: {orders} orders at {rate:.0f} points/s, bucket {bucket:.0f}")
        run_sync(orders, lines, rate, bucket)
    if bulk > 0:
        _log(f"bulk backfill: {bulk} orders")
        run_bulk(bulk, lines)


if __name__ == "__main__":
    main()
