"""Each benchmark's functions at a very small size, so the benches cannot rot unnoticed.

The figures themselves are not checked against their targets here (a tiny run says nothing
about throughput); what is checked is that every bench runs end to end, prints well-formed
JSON lines only, and counts what it pulled or stored correctly.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

KEYS = {"bench", "figure", "value", "unit", "baseline", "ratio", "target", "ok"}


def _figures(out: str, bench: str) -> dict[str, dict]:
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "the bench printed nothing"
    figures = {}
    for line in lines:
        record = json.loads(line)  # stdout carries JSON lines only
        assert KEYS <= record.keys(), record
        assert record["bench"] == bench
        figures[record["figure"]] = record
    return figures


def test_shopify_sync_and_bulk(capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.shopify.queries import ORDERS_PAGE_SIZE
    from adapters.shopify.storefront import DEFAULT_BULK_BACKFILL_ORDERS
    from bench import shopify_sync

    # A fast restore rate: the pacing is exercised, the run stays short (~10 s). More orders than
    # a first pull would fetch by bulk operation: the sync figure must still measure GraphQL pages.
    orders = DEFAULT_BULK_BACKFILL_ORDERS + 1
    synced = shopify_sync.run_sync(orders=orders, lines=3, restore_rate=200_000, bucket=1000)
    assert synced["error"] is None
    assert (synced["orders"], synced["lines"]) == (orders, 3 * orders)
    assert synced["throttled_to_caller"] == 0
    assert len(synced["costs"]) >= orders / ORDERS_PAGE_SIZE  # paged, not one bulk operation
    assert sum(synced["costs"]) > 0
    bulk = shopify_sync.run_bulk(orders=120, lines=3)
    assert bulk["error"] is None
    assert (bulk["orders"], bulk["lines"]) == (120, 360)
    figures = _figures(capsys.readouterr().out, "shopify_sync")
    assert {"sync.wall_s", "sync.throttled_to_caller", "bulk.peak_rss_mb", "bulk.wall_s"} <= figures.keys()
    assert figures["sync.wall_s"]["baseline"] > 0  # the floor is measured, not assumed
    assert figures["bulk.peak_rss_mb"]["value"] > 0


def test_woocommerce_sync(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import woocommerce_sync

    result = woocommerce_sync.run(orders=230, lines=2)
    assert result["error"] is None
    assert (result["orders"], result["lines"]) == (230, 460)
    figures = _figures(capsys.readouterr().out, "woocommerce_sync")
    assert figures["sync.requests"]["baseline"] == 4  # ceil(230 / 100) + 1
    assert figures["sync.requests"]["value"] >= 4
    assert figures["sync.requests"]["non_200"] == 0


def _check_load(figures: dict[str, dict], kind: str) -> None:
    assert figures[f"{kind}.throughput_rps"]["value"] > 0
    assert figures[f"{kind}.events_lost"]["value"] == 0
    assert figures[f"{kind}.events_lost"]["rows_stored"] > 0


@pytest.mark.slow  # five gunicorn boots: ~20 s
@pytest.mark.parametrize("generator", ["python", "wrk"])
def test_load_sqlite(generator: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if generator == "wrk" and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk)")
    from bench import load

    monkeypatch.setenv("BENCH_LOAD_GENERATOR", generator)
    # the production wiring with one generator, the endpoint alone with the other
    app = "runtime" if generator == "python" else "connector"
    suffix = "" if app == "runtime" else "_connector"
    load.run(2, connections=4, threads=2, sqlite_workers=2, deliveries=200, postgres=False, apps=(app,))
    figures = _figures(capsys.readouterr().out, "load")
    _check_load(figures, f"sqlite_2w{suffix}")
    assert figures[f"sqlite_4w{suffix}.deliveries_rps"]["requests"] >= 200
    assert figures[f"sqlite_4w{suffix}.deliveries_rps"]["events_lost"] == 0
    assert figures["bare_2w.throughput_rps"]["value"] > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_load_postgres(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL variant skipped")
    from bench import load

    monkeypatch.setenv("BENCH_LOAD_GENERATOR", "python")
    load.run(2, connections=4, sqlite_workers=1, pg_workers=2, deliveries=0, apps=("runtime",))
    figures = _figures(capsys.readouterr().out, "load")
    _check_load(figures, "sqlite_1w")
    _check_load(figures, "postgres_2w")


def test_jobs_webhook_to_push_latency_embedded(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import jobs

    # SQLite and the embedded scheduler only: no PostgreSQL or Redis needed (the Celery parts of
    # `python -m bench.jobs --quick` need both and run in about a minute).
    jobs.embedded_latency(shop_count=2, samples=3, tick=0.5)
    figures = _figures(capsys.readouterr().out, "jobs")
    p50, p99 = figures["embedded_sqlite.webhook_to_push_p50_s"], figures["embedded_sqlite.webhook_to_push_p99_s"]
    assert 0 < p50["value"] <= p99["value"] < 30
    assert p50["samples"] == 3 and p50["baseline"] == 0.5
