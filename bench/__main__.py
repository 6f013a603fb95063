"""``make bench``: run every benchmark; each prints one JSON line per figure."""

from __future__ import annotations

import runpy
import sys

BENCHES = ["consolidation", "jobs", "pages", "shopify_sync", "woocommerce_sync", "load"]


def main() -> int:
    for name in BENCHES:
        print(f"# bench {name}", file=sys.stderr)
        runpy.run_module(f"bench.{name}", run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
