"""``make bench``: run every benchmark; each prints one JSON line per figure."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BENCHES = ["consolidation"]


def main() -> int:
    here = Path(__file__).parent
    for name in BENCHES:
        print(f"# bench {name}", file=sys.stderr)
        runpy.run_path(str(here / f"{name}.py"), run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
