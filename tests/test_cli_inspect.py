"""``backorders inspect``: support reads what the connector makes of a merchant's payload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def inspect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bootstrap.cli", "inspect", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_a_shopify_order_payload_prints_its_normalized_record() -> None:
    proc = inspect("shopify", "order", str(ROOT / "tests/shopify/fixtures/orders_create.json"))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    payload = json.loads((ROOT / "tests/shopify/fixtures/orders_create.json").read_text())
    assert record["external_id"] == str(payload["id"])
    assert len(record["lines"]) == len(payload["line_items"])


def test_a_woocommerce_order_payload_prints_its_normalized_record() -> None:
    proc = inspect("woocommerce", "order", str(ROOT / "tests/woocommerce/payloads/order_727_de.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["external_id"] == "727"


def test_a_broken_payload_gets_a_clear_error_naming_the_field(tmp_path: Path) -> None:
    payload = json.loads((ROOT / "tests/shopify/fixtures/orders_create.json").read_text())
    payload["line_items"][0]["quantity"] = "many"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(payload))
    proc = inspect("shopify", "order", str(bad))
    assert proc.returncode == 2
    assert "quantity" in proc.stderr and "Traceback" not in proc.stderr


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = inspect("woocommerce", "product", str(bad))
    assert proc.returncode == 2 and "cannot read" in proc.stderr
