"""WooCommerce order sync against the sandbox: requests made, wall time, peak memory.

The pull is ``WooStorefront.fetch_orders_since(None)`` (every order, then the ``status=trash``
pass) over real HTTP, in a spawned child process. Figures:

* ``sync.requests``: requests the sandbox served for the pull, against the minimum
  ``ceil(orders / 100) + 1`` (100 per page, plus the one request of the trash pass). Target
  ≤ 1.05 × the minimum.
* ``sync.wall_s``: wall time of the pull, against a baseline measured in the same run: the same
  pages fetched with a bare ``requests`` loop that only decodes the JSON (what the sandbox and
  HTTP cost, with no adapter or mapping on top).
* ``sync.peak_rss_mb``: the child's resident peak (``VmHWM``) against its size before the pull.

Sizes: ``BENCH_WOO_ORDERS`` (default 10,000, the issue's size), ``BENCH_WOO_LINES`` (3).
Run ``python -m bench.woocommerce_sync``; one JSON line per figure on stdout.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import sys
import time
from typing import Any

from bench.common import emit
from sandbox.woocommerce import SandboxWoo

BENCH = "woocommerce_sync"
TARGET_RATIO = 1.05


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _rss_mb(field: str = "VmHWM") -> float:
    """Resident peak (``VmHWM``) or current size (``VmRSS``) of this process in MB (``ru_maxrss``
    would carry the parent's size across the spawn's ``exec``)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(store: SandboxWoo, orders: int, lines: int, products: int = 30) -> None:
    ids = [
        store.create_product(f"Bench item {i}", sku=f"BENCH-{i:03d}", price="12.00", stock_quantity=0,
                             backorders="notify")["id"]
        for i in range(products)
    ]
    store.deliver_webhooks = False  # nobody listens; skip the delivery bookkeeping
    for n in range(orders):
        store.create_order([(ids[(n * lines + k) % products], 1 + (n + k) % 3) for k in range(lines)],
                           email=f"buyer{n}@example.com")


def _pull_child(base_url: str, key: str, secret: str, queue: Any) -> None:
    import requests

    from adapters.woocommerce.client import WooClient
    from adapters.woocommerce.storefront import WooStorefront

    storefront = WooStorefront(WooClient(base_url, key, secret, timeout=60))
    rss_before = _rss_mb("VmRSS")
    orders = lines = 0
    error = None
    t0 = time.perf_counter()
    try:
        for record in storefront.fetch_orders_since(None):
            orders += 1
            lines += len(record.lines)
    except Exception as exc:  # noqa: BLE001 - reported in the figure
        error = repr(exc)
    wall = time.perf_counter() - t0
    peak = _rss_mb()

    # baseline: the same pages, a bare loop (no retries, no mapping, no trash pass)
    session = requests.Session()
    session.auth = (key, secret)
    url = f"{base_url}/wp-json/wc/v3/orders"
    params = {"orderby": "modified", "order": "asc", "dates_are_gmt": "true", "per_page": 100}
    t1 = time.perf_counter()
    page, pages, raw_orders = 1, 1, 0
    while page <= pages:
        response = session.get(url, params={**params, "page": page}, timeout=60)
        response.raise_for_status()
        raw_orders += len(response.json())
        pages = int(response.headers.get("X-WP-TotalPages", "1"))
        page += 1
    baseline = time.perf_counter() - t1
    queue.put({"wall": wall, "orders": orders, "lines": lines, "error": error, "peak_mb": peak,
               "rss_before_mb": rss_before, "baseline": baseline, "baseline_requests": pages,
               "baseline_orders": raw_orders})


def run(orders: int, lines: int) -> dict[str, Any]:
    with SandboxWoo() as store:
        t0 = time.perf_counter()
        seed(store, orders, lines)
        _log(f"seeded {orders} orders x {lines} lines in {time.perf_counter() - t0:.1f} s")
        store.reset_counters()
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_pull_child, args=(store.base_url, store.consumer_key, store.consumer_secret,
                                                     queue))
        proc.start()
        try:
            result: dict[str, Any] = queue.get(timeout=900)
        finally:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
        # what the pull cost the store: everything it served minus the baseline loop's requests
        served = store.requests_served - result["baseline_requests"]
        statuses = [r.status for r in store.request_log]
    minimum = math.ceil(orders / 100) + 1
    complete = result["error"] is None and result["orders"] == orders and result["lines"] == orders * lines
    emit(BENCH, "sync.requests", served, "requests", minimum, f"<= {TARGET_RATIO}x ceil(orders/100)+1",
         complete and served <= TARGET_RATIO * minimum, orders=result["orders"], expected_orders=orders,
         non_200=sum(1 for s in statuses if s != 200), error=result["error"])
    emit(BENCH, "sync.wall_s", result["wall"], "s", result["baseline"], "reported (baseline: bare paging loop)",
         None, orders_per_s=round(result["orders"] / result["wall"], 1) if result["wall"] else None,
         baseline_orders=result["baseline_orders"])
    emit(BENCH, "sync.peak_rss_mb", result["peak_mb"], "MB", result["rss_before_mb"], "reported", None)
    return result


def main() -> None:
    orders = _env_int("BENCH_WOO_ORDERS", 10_000)
    lines = _env_int("BENCH_WOO_LINES", 3)
    _log(f"woocommerce sync: {orders} orders")
    run(orders, lines)


if __name__ == "__main__":
    main()
