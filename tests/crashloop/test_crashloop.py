"""Hardening: kill -9 the job process at random moments; the final state equals a clean run's.

Two identical worlds are prepared through the real flows (Shopify OAuth install, WooCommerce
wc-auth connect, supplier-terms CSV import, variant settings, the demo's 8 orders whose webhooks
the web app verifies and stores), each on its own SQLite file under ``tmp_path``. The sandboxes,
the SMTP sink and the web app live in this test process, so they survive every kill.

- clean world: one child runs the job cycles at ``T_JOBS`` to the end, then the final pass.
- crash world: a child is started and ``SIGKILL``-ed a random delay after it began working
  (seeded ``random.Random``; ``CRASHLOOP_SEED`` overrides), N times, then the final pass.

The final pass runs at ``T_FINAL`` (past the 5-minute outbox lease), so messages a killed child
left ``sending`` are claimed again, as a restarted worker would after the lease.

What is not compared, and why: row ids and timestamps (natural keys instead: order numbers,
PO/forward numbers, SKUs, idempotency keys). The web app is stopped once the orders' webhooks
are stored: the stores' echo webhooks of our own pushes land at thread-timing-dependent moments
and the product applies them differently depending on when they land, so with them the final
state is not deterministic even without kills. Orders are placed in distinct wall-clock seconds
for the same reason (see the xfail test at the end).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from crashloop_support import T_FINAL, CrashWorld
from sqlalchemy import func, select

from connector.db.models import WebhookEvent
from connector.db.uow import UnitOfWork

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CHILD = HERE / "crash_child.py"
SEED = int(os.environ.get("CRASHLOOP_SEED", "20260302"))


class Child:
    """One job process; its stdout lines are collected by a thread (so the pipe never fills)."""

    def __init__(self, world: CrashWorld, log: Path, final: bool = False) -> None:
        self.lines: list[str] = []
        self.started = threading.Event()
        self._stderr = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), world.child_config(), *(["final"] if final else [])],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if " start " in line:
                self.started.set()
        self.started.set()

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._close()

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._close()

    def _close(self) -> None:
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def _unprocessed_webhooks(world: CrashWorld) -> int:
    with UnitOfWork(world.rt.db, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(WebhookEvent)
                                      .where(WebhookEvent.processed_at.is_(None))) or 0)


def _settle(world: CrashWorld, log: Path) -> None:
    """Final passes at T_FINAL until every store delivery has landed and been processed."""
    for _ in range(4):
        world.shopify.wait_for_webhooks()
        world.woo.wait_for_deliveries()
        time.sleep(0.3)
        child = Child(world, log, final=True)
        assert child.wait() == 0, (child.lines, log.read_text()[-4000:])
        world.shopify.wait_for_webhooks()
        world.woo.wait_for_deliveries()
        time.sleep(0.3)
        if _unprocessed_webhooks(world) == 0:
            return
    raise AssertionError("webhooks still unprocessed after 4 final passes")


def _pushes(world: CrashWorld) -> set[str]:
    """Distinct Shopify mutations, with this world's own URLs normalised away."""
    return {p.replace(world.url, "APP").replace(world.woo.base_url, "WOO") for p in world.shopify_pushes()}


def _woo_state(world: CrashWorld) -> list[Any]:
    orders = []
    for order in sorted(world.woo.orders.values(), key=lambda o: o["id"]):
        meta = sorted((m.get("key"), str(m.get("value"))) for m in order.get("meta_data", []))
        notes = sorted({n.get("note", "") if isinstance(n, dict) else str(n) for n in world.woo.notes.get(order["id"], [])})
        orders.append((order["id"], order.get("status"), meta, notes))
    return orders


def _final_state(world: CrashWorld) -> dict[str, Any]:
    return {"db": world.snapshot(), "mail_ids": set(world.mail_ids()), "shopify_pushes": _pushes(world),
            "woo_orders": _woo_state(world)}


def _clean_run(tmp_path: Path) -> tuple[dict[str, Any], Counter[str]]:
    world = CrashWorld(tmp_path / "clean.sqlite3")
    try:
        world.prepare()
        world.stop_web()
        log = tmp_path / "clean-children.log"
        child = Child(world, log)
        assert child.wait() == 0, (child.lines, log.read_text()[-4000:])
        _settle(world, log)
        return _final_state(world), world.mail_ids()
    finally:
        world.close()


def _crash_run(tmp_path: Path, kills: int, seed: int, max_delay: float
               ) -> tuple[dict[str, Any], Counter[str], list[str], int, dict[str, tuple[str, int]]]:
    rng = random.Random(seed)
    world = CrashWorld(tmp_path / "crash.sqlite3")
    history: list[str] = []
    mid_work = 0
    try:
        world.prepare()
        world.stop_web()
        log = tmp_path / "crash-children.log"
        for i in range(kills):
            child = Child(world, log)
            assert child.started.wait(60), log.read_text()[-4000:]
            delay = rng.uniform(0.0, max_delay)  # the whole cycle takes ~0.7 s after "start"
            time.sleep(delay)
            finished = child.proc.poll() is not None
            if not finished:
                child.kill()
            else:
                child.wait()
            last = child.lines[-1] if child.lines else "-"
            if not finished and not last.endswith(" done"):
                mid_work += 1
            history.append(f"kill {i + 1}: +{delay:.2f}s {'(had finished) ' if finished else ''}last step: {last}")
        _settle(world, log)
        return _final_state(world), world.mail_ids(), history, mid_work, world.attempts_by_message_id()
    finally:
        world.close()


def _check(tmp_path: Path, kills: int, seed: int, max_delay: float) -> None:
    clean, clean_mails = _clean_run(tmp_path)
    crashed, crash_mails, history, mid_work, attempts = _crash_run(tmp_path, kills, seed, max_delay)
    where = f"seed={seed}\n" + "\n".join(history)
    # The kills must have hit work in progress, not only idle children.
    assert mid_work >= 2, where

    # The clean run is the story the demo tells: something happened and nothing died.
    outbox_states = {state for (_shop, _kind, _target, state), _n in clean["db"]["outbox"]}
    assert outbox_states == {"sent"}, clean["db"]["outbox"]
    assert len(clean["db"]["purchase_orders"]) == 3 and len(clean["db"]["dropship_forwards"]) == 1
    assert clean_mails and max(clean_mails.values()) == 1  # without crashes: every Message-ID once
    assert clean["shopify_pushes"] and clean["woo_orders"]

    crash_outbox_states = {state for (_shop, _kind, _target, state), _n in crashed["db"]["outbox"]}
    assert crash_outbox_states == {"sent"}, (crashed["db"]["outbox"], where)
    for key in ("orders", "lines", "purchase_orders", "dropship_forwards", "outbox", "outbox_keys"):
        assert crashed["db"][key] == clean["db"][key], f"{key} differs\n{where}"
    assert crashed["mail_ids"] == clean["mail_ids"], where
    assert crashed["shopify_pushes"] == clean["shopify_pushes"], where
    assert crashed["woo_orders"] == clean["woo_orders"], where
    # At-least-once: a Message-ID may arrive twice only if a kill fell between the SMTP server's
    # "250 accepted" and the delivery receipt's commit; each kill interrupts at most one send.
    # So a duplicate must be a message that was claimed again after a kill (attempts >= 2), and
    # it may arrive at most twice per extra attempt.
    unknown = set(crash_mails) - set(attempts)
    assert not unknown, f"e-mails no outbox message explains: {unknown}"
    duplicated = {mid: n for mid, n in crash_mails.items() if n > 1}
    for mid, n in duplicated.items():
        kind, tries = attempts[mid]
        assert tries >= 2 and n <= tries, (mid, kind, n, tries, where)
    duplicates = sum(n - 1 for n in duplicated.values())
    assert duplicates <= kills, (crash_mails, where)
    dup_kinds = sorted(attempts[mid][0] for mid in duplicated)
    print(f"\ncrash loop seed={seed}: {kills} kills ({mid_work} mid-work), {duplicates} duplicate e-mail(s) by Message-ID {dup_kinds}, "
          f"{sum(crash_mails.values())} e-mails received vs {sum(clean_mails.values())} clean\n{where}")


def test_eight_kills_during_job_cycles_end_in_the_clean_runs_state(tmp_path: Path) -> None:
    _check(tmp_path, kills=8, seed=SEED, max_delay=0.25)


@pytest.mark.slow
def test_twenty_kills_during_job_cycles_end_in_the_clean_runs_state(tmp_path: Path) -> None:
    _check(tmp_path, kills=20, seed=SEED + 1, max_delay=0.2)


def test_orders_in_one_second_never_allocate_more_than_the_stock(tmp_path: Path) -> None:
    """The demo's 8 orders with the 5 Shopify ones placed within one wall-clock second.

    CHAIR-OAK has 2 units; 3 + 4 + 2 are ordered. Placed in distinct seconds, the stored webhooks
    give (allocated, backordered) = (2, 1), (0, 4), (0, 2). Placed within one second (Shopify's
    ``updated_at`` has whole seconds), processing the same stored batch once gave (3, 0), (3, 1),
    (0, 2): 6 units allocated out of 2 (fixed in connector/services/catalog.py: a report counts
    only orders strictly before it and never takes back units customers hold).
    """
    world = CrashWorld(tmp_path / "same-second.sqlite3")
    try:
        shop_ids = world.prepare(orders_in_distinct_seconds=False, orders_in_one_second=True)
        world.stop_web()
        if len(world.setup_seconds) > 1:
            pytest.skip("this machine was too slow: the setup crossed a second boundary")
        for shop_id in shop_ids:
            world.rt.process_webhooks(shop_id, T_FINAL)
        chairs = [(line[6], line[7]) for line in world.snapshot()["lines"] if line[3] == "CHAIR-OAK"]
    finally:
        world.close()
    assert sum(allocated for allocated, _ in chairs) <= 2, chairs
