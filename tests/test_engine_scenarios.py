"""The engine's rules, told as scenarios (tests/scenarios/*.yaml) through the real services.

Each scenario's whole end state must equal its ``.expected.json`` (reviewed by hand when it was
recorded), and each test below also states the rule it proves in plain assertions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.scenario import ScenarioError, run_scenario

HERE = Path(__file__).parent / "scenarios"
ALL = sorted(p.stem for p in HERE.glob("*.yaml"))


def run(name: str, database_url: str | None = None, until: int | None = None) -> dict[str, Any]:
    spec = yaml.safe_load((HERE / f"{name}.yaml").read_text())
    if until is not None:
        spec["events"] = spec["events"][:until]
    return run_scenario(spec, database_url)


def lines_of(state: dict[str, Any], order: str) -> list[dict[str, Any]]:
    return next(o["lines"] for o in state["orders"] if o["id"] == order)


def events_of(state: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in state["events"] if e["kind"] == kind]


@pytest.mark.parametrize("name", ALL)
def test_scenario_end_state_matches_its_recorded_expectation(name: str) -> None:
    expected = json.loads((HERE / f"{name}.expected.json").read_text())
    assert run(name) == expected


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["issue_example", "pegging_to_pack_rounded_po_and_surplus"])
def test_scenario_gives_the_same_end_state_on_postgresql(name: str, pg_database_url: str, db_reset: None) -> None:
    expected = json.loads((HERE / f"{name}.expected.json").read_text())
    assert run(name, pg_database_url) == expected


@pytest.fixture
def db_reset(pg_database_url: str) -> None:
    from sqlalchemy import text

    from connector.db.engine import Database
    from connector.db.models import Base

    db = Database(pg_database_url)
    with db.engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(t.name for t in Base.metadata.sorted_tables) + " RESTART IDENTITY CASCADE"))
    db.dispose()


def test_issue_example_is_promised_then_delayed_then_filled() -> None:
    state = run("issue_example")
    line = lines_of(state, "1001")[0]
    assert (line["ordered"], line["allocated"], line["backordered"], line["cancelled"]) == (3, 3, 0, 0)
    assert line["promised_eta"] == "2026-03-17" and line["eta"] == "2026-03-11"
    assert {"kind": "delayed", "order": "1001", "sku": "CHAIR", "from": "2026-03-17", "to": "2026-03-21"} in state["events"]
    po = state["purchase_orders"][0]
    assert po["status"] == "partially_received"
    assert po["lines"] == [{"sku": "CHAIR", "ordered": 12, "received": 5, "pegged": 0}]
    assert state["stock"]["CHAIR"]["on_hand"] == 9


def test_orders_of_3_and_4_with_stock_2_peg_1_and_4_on_one_line_of_12() -> None:
    state = run("pegging_to_pack_rounded_po_and_surplus", until=3)
    assert len(state["purchase_orders"]) == 1
    assert state["purchase_orders"][0]["lines"] == [{"sku": "CHAIR", "ordered": 12, "received": 0, "pegged": 5}]
    assert lines_of(state, "1001")[0]["pegged"] == 1
    assert lines_of(state, "1002")[0]["pegged"] == 4


def test_a_later_order_is_pegged_to_the_surplus_and_a_receipt_of_5_completes_both() -> None:
    after_second_consolidation = run("pegging_to_pack_rounded_po_and_surplus", until=6)
    assert len(after_second_consolidation["purchase_orders"]) == 1
    assert after_second_consolidation["purchase_orders"][0]["lines"][0]["ordered"] == 12
    assert lines_of(after_second_consolidation, "1003")[0]["pegged"] == 2
    state = run("pegging_to_pack_rounded_po_and_surplus")
    assert lines_of(state, "1001")[0]["backordered"] == 0
    assert lines_of(state, "1002")[0]["backordered"] == 0
    assert lines_of(state, "1003")[0]["backordered"] == 2


def test_a_cancelled_orders_units_go_to_the_next_waiting_order() -> None:
    state = run("cancelled_order_units_go_to_next_waiting_order")
    assert lines_of(state, "1001")[0]["cancelled"] == 2
    assert lines_of(state, "1002")[0]["allocated"] == 1
    assert lines_of(state, "1003")[0]["allocated"] == 1
    assert state["stock"]["LAMP"]["free"] == 0


def test_a_preorders_eta_is_never_before_its_release_date() -> None:
    state = run("preorder_eta_never_before_release_date")
    line = lines_of(state, "2001")[0]
    assert line["kind"] == "preorder"
    assert state["purchase_orders"][0]["expected_date"] == "2026-03-08"
    assert line["eta"] == "2026-04-01"
    assert events_of(state, "preorder")


def test_a_draft_below_the_minimum_value_waits_until_max_wait_days() -> None:
    assert run("draft_below_minimum_waits_until_max_wait_days", until=2)["purchase_orders"][0]["status"] == "draft"
    assert run("draft_below_minimum_waits_until_max_wait_days", until=3)["purchase_orders"][0]["status"] == "draft"
    state = run("draft_below_minimum_waits_until_max_wait_days")
    assert state["purchase_orders"][0]["status"] == "ready"
    assert len(events_of(state, "po_ready")) == 1


def test_merchant_priority_overrides_age_on_receipt() -> None:
    state = run("priority_overrides_age_on_receipt")
    assert lines_of(state, "3")[0]["allocated"] == 1  # priority 5, placed last
    assert lines_of(state, "1")[0]["allocated"] == 1  # oldest
    assert lines_of(state, "2")[0]["allocated"] == 0


def test_a_cancelled_po_releases_its_pegs_and_is_ordered_again() -> None:
    state = run("cancelled_po_is_ordered_again")
    first, second = state["purchase_orders"]
    assert first["status"] == "cancelled" and first["lines"][0]["pegged"] == 0
    assert second["lines"] == [{"sku": "RUG", "ordered": 3, "received": 0, "pegged": 3}]


def test_stock_found_by_a_count_fills_waiting_lines_and_an_over_receipt_becomes_stock() -> None:
    after_count = run("stock_count_and_over_receipt_fill_waiting_lines_then_stock", until=5)
    assert lines_of(after_count, "1")[0]["allocated"] == 1
    assert lines_of(after_count, "2")[0]["allocated"] == 0
    state = run("stock_count_and_over_receipt_fill_waiting_lines_then_stock")
    assert state["purchase_orders"][0]["status"] == "received"
    assert state["stock"]["SOFA"] == {"on_hand": 7, "free": 3}


def test_an_oversold_variant_still_records_the_shortfall() -> None:
    state = run("oversold_variant_records_the_shortfall")
    line = lines_of(state, "1")[0]
    assert (line["kind"], line["allocated"], line["backordered"]) == ("oversold", 1, 2)
    assert events_of(state, "oversold")


def test_a_delay_inside_the_tolerance_is_not_notified() -> None:
    inside = run("delay_inside_tolerance_is_not_notified", until=4)
    assert events_of(inside, "delayed") == []
    state = run("delay_inside_tolerance_is_not_notified")
    assert events_of(state, "delayed") == [
        {"kind": "delayed", "order": "1", "sku": "SHELF", "from": "2026-03-16", "to": "2026-03-21"}
    ]


def test_an_edit_upward_creates_need_and_a_partial_cancel_gives_up_waiting_units_first() -> None:
    state = run("edits_and_partial_cancellation")
    line = lines_of(state, "1")[0]
    assert (line["ordered"], line["allocated"], line["backordered"], line["cancelled"]) == (6, 1, 1, 4)
    assert state["purchase_orders"][0]["lines"][0]["ordered"] == 8  # grew to 2 packs; never shrinks by itself
    assert line["pegged"] == 1


def test_a_popular_sku_is_topped_up_to_its_safety_stock_once() -> None:
    state = run("popular_sku_is_topped_up_to_safety_stock")
    assert state["purchase_orders"][0]["lines"][0]["ordered"] == 5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"events": []}, "start is required"),
        ({"start": "2026-03-02T08:00:00Z", "events": [{"at": "2026-03-02T09:00:00Z", "order": {"id": "1"}}]},
         "events[0].order.lines is required"),
        ({"start": "2026-03-02T08:00:00Z", "variants": [{"sku": "A"}],
          "events": [{"at": "2026-03-02T09:00:00Z", "order": {"id": "1", "lines": [{"sku": "A", "qty": -1}]}}]},
         "events[0].order.lines[0].qty"),
        ({"start": "2026-03-02T08:00:00Z", "events": [{"at": "2026-03-01T09:00:00Z", "consolidate": {}}]},
         "events[0].at"),
        ({"start": "2026-03-02T08:00:00Z", "events": [{"at": "2026-03-02T09:00:00Z", "teleport": {}}]},
         "events[0] needs exactly one of"),
        ({"start": "2026-03-02T08:00:00Z", "events": [{"at": "2026-03-02T09:00:00Z", "send": {"supplier": "Nobody"}}]},
         "events[0].send"),
    ],
)
def test_a_malformed_scenario_names_the_event_and_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        run_scenario(spec)
    assert message in info.value.message


def test_the_cli_exits_2_with_a_clear_error_on_a_malformed_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("start: 2026-03-02T08:00:00Z\nevents:\n  - {at: 2026-03-02T09:00:00Z, receive: {supplier: X}}\n")
    proc = subprocess.run([sys.executable, "-m", "bootstrap.cli", "scenario", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "events[0].receive.lines is required" in proc.stderr


def test_the_cli_prints_the_end_state_as_json() -> None:
    proc = subprocess.run([sys.executable, "-m", "bootstrap.cli", "scenario", str(HERE / "issue_example.yaml")],
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == json.loads((HERE / "issue_example.expected.json").read_text())
