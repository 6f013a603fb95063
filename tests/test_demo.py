"""The README's first command: the demo runs the whole product on the embedded default."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_once_runs_every_capability_and_prints_one_json_summary(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bootstrap.cli", "--database-url", f"sqlite:///{tmp_path / 'demo.sqlite3'}",
         "demo", "--once", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stdout
    summary = json.loads(lines[0])
    assert summary["demo"] == "ok"
    assert summary["shops_installed"] == 2  # a Shopify shop by OAuth, a WooCommerce store by wc-auth
    assert summary["orders"] == 8
    assert summary["lines_backordered"] >= 6
    assert summary["purchase_orders"] == 3 and summary["po_emails"] == 3  # one per supplier, CSV + PDF
    assert summary["dropship_forwards"] == 1
    assert summary["shopify_fulfillments"] == 3  # tracking from the supplier fulfilled each dropship order
    assert summary["delay_notices"] == 4  # one apology per affected order, not per line
    assert summary["ready_notices"] == 2  # the receipt filled the two oldest chair orders
    assert summary["storefront_pushes"] > 0 and summary["shopify_mutations"] > 0
    assert summary["outbox_dead"] == 0
    assert summary["webhooks_fast_path"] > 0  # the ordinary deliveries were answered below Flask
    assert summary["webhooks_via_writer"] > 0  # on SQLite the deliveries went through the webhook writer process
    # a customer cancelled from the apology's link; storefront mode refunded the items on Shopify
    assert summary["customer_cancellations"] == 1
    assert summary["store_refunds"] == 1 and summary["store_refunded_cents"] > 0
    assert summary["shipped_notices"] >= 1  # dropship tracking told the customers once each
