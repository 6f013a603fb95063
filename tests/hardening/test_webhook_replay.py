"""Replay harness: thousands of signed Shopify deliveries, shaped by the sandbox's own payload
builders, posted over real HTTP to the real app after a hostile mutation of the stream.

The stream: ~N/10 orders, each with an ``orders/create`` and a chain of ``orders/updated``
versions (note/e-mail edits, quantity removals, fulfilment, cancellation; each version has a
strictly newer ``updated_at``), interleaved with ``inventory_levels/update`` snapshots. Then:

* 10 % duplicates: an earlier delivery sent again (same body, same ``X-Shopify-Event-Id``);
* 5 % out of order: two successive versions of one order swapped (older after newer);
* 2 % bad signatures: a *newer-looking* poisoned version signed with the wrong secret;
* 1 % oversize bodies: a correctly signed poisoned version over ``webhook_max_bytes``.

Poisoned deliveries carry absurd quantities and a far-future ``updated_at``, so if any of them
got through, the final state would be visibly wrong. The expected final state is computed
from the newest genuine version of each order with the rules written down here, not with the
connector's mapping code.
"""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from connector.db.models import SalesOrder, StockLevel, Variant, WebhookEvent
from connector.db.uow import UnitOfWork
from sandbox.shopify import store

SKUS = [f"SKU-{i:02d}" for i in range(12)]
FUTURE = "2099-01-01T00:00:00Z"


@dataclass
class Planned:
    topic: str
    body: bytes
    event_id: str
    kind: str = "genuine"  # genuine | duplicate | forged | oversize
    order_id: int | None = None
    version: int = 0
    secret: str | None = None
    expect: int = 200
    answer: str | None = None  # "stored" | "duplicate" (for 200s)


def _build_stream(sb: Any, total: int, rng: random.Random) -> tuple[list[Planned], dict[int, dict[str, Any]],
                                                                      dict[str, dict[str, Any]]]:
    """Genuine deliveries (87 % of ``total``) from the sandbox; returns them, the newest version
    of each order, and the newest inventory level payload per inventory item."""
    shop = sb.shop()
    shop.subscriptions.clear()  # we deliver ourselves, in the order we choose
    genuine_target = int(total * 0.87)
    n_orders = max(10, total // 10)
    per_order: list[list[dict[str, Any]]] = []
    levels: list[dict[str, Any]] = []
    for _ in range(n_orders):
        skus = rng.sample(SKUS, rng.randint(1, 3))
        order = sb.create_order([{"sku": s, "quantity": rng.randint(1, 4)} for s in skus], notify=False)
        versions = [store.rest_order(shop, order)]
        for sku in skus:
            v = shop.variant_by_sku(sku)
            levels.append(store.rest_inventory_level(shop.levels[(v.inventory_item_id, shop.primary_location_id)]))
        per_order.append(versions)
    # updates, round-robin, until the order deliveries reach ~70 % of the genuine stream
    order_budget = int(genuine_target * 0.7)
    finished: set[int] = set()
    while sum(len(v) for v in per_order) < order_budget and len(finished) < n_orders:
        i = rng.randrange(n_orders)
        if i in finished:
            continue
        oid = per_order[i][0]["id"]
        o = shop.orders[oid]
        roll = rng.random()
        if roll < 0.06:
            sb.cancel_order(oid)
            finished.add(i)
        elif roll < 0.12:
            sb.fulfill_order(oid)
            finished.add(i)
        elif roll < 0.35:
            li = rng.choice(o.line_items)
            if li.current > 1:
                sb.remove_quantity(oid, li.id, 1)
            else:
                sb.update_order(oid, note=f"n{rng.random()}")
        else:
            sb.update_order(oid, email=f"v{len(per_order[i])}-{oid}@example.com", note=f"n{rng.random()}")
        per_order[i].append(store.rest_order(shop, o))
    while len(levels) + sum(len(v) for v in per_order) < genuine_target:
        sku = rng.choice(SKUS)
        level = sb.set_inventory(sku, rng.randint(-3, 15))
        levels.append(store.rest_inventory_level(level))

    # interleave: each order's versions stay in order; levels stay in order among themselves
    queues = [[("orders/create" if k == 0 else "orders/updated", p, k) for k, p in enumerate(vs)] for vs in per_order]
    queues.append([("inventory_levels/update", p, k) for k, p in enumerate(levels)])
    stream: list[Planned] = []
    while any(queues):
        q = rng.choice([q for q in queues if q])
        topic, payload, k = q.pop(0)
        stream.append(Planned(topic, json.dumps(payload).encode(), str(uuid.uuid4()),
                              order_id=payload.get("id") if topic != "inventory_levels/update" else None,
                              version=k, answer="stored"))
    newest_orders = {vs[-1]["id"]: vs[-1] for vs in per_order}
    newest_levels: dict[str, dict[str, Any]] = {}
    for p in levels:
        key = str(p["inventory_item_id"])
        if key not in newest_levels or p["updated_at"] >= newest_levels[key]["updated_at"]:
            newest_levels[key] = p
    return stream, newest_orders, newest_levels


def _poison(payload: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(payload)
    bad["updated_at"] = FUTURE
    bad["email"] = "attacker@example.com"
    for li in bad["line_items"]:
        li["quantity"] = li["current_quantity"] = 999
    return bad


def _mutate(stream: list[Planned], total: int, rng: random.Random) -> list[Planned]:
    out = list(stream)
    # 5 % out of order: swap successive versions of one order (older lands after newer)
    swaps = 0
    want = int(total * 0.05)
    attempts = 0
    while swaps < want and attempts < 100_000:
        attempts += 1
        i = rng.randrange(len(out) - 1)
        a = out[i]
        if a.order_id is None or a.kind != "genuine":
            continue
        j = next((j for j in range(i + 1, len(out)) if out[j].order_id == a.order_id), None)
        if j is None or out[j].version != a.version + 1 or getattr(out[j], "_swapped", False) \
                or getattr(a, "_swapped", False):
            continue
        out[i], out[j] = out[j], out[i]
        out[i]._swapped = out[j]._swapped = True  # type: ignore[attr-defined]
        swaps += 1
    assert swaps == want, f"could only make {swaps} of {want} out-of-order pairs"

    orders = [p for p in out if p.order_id is not None]
    inserts: list[Planned] = []
    for _ in range(int(total * 0.10)):
        original = rng.choice(out)
        inserts.append(Planned(original.topic, original.body, original.event_id, kind="duplicate",
                               order_id=original.order_id, answer="duplicate"))
    for _ in range(int(total * 0.02)):
        victim = json.loads(rng.choice(orders).body)
        inserts.append(Planned("orders/updated", json.dumps(_poison(victim)).encode(), str(uuid.uuid4()),
                               kind="forged", secret="shpss_not-the-app-secret", expect=401))
    for _ in range(int(total * 0.01)):
        victim = _poison(json.loads(rng.choice(orders).body))
        victim["note"] = "x" * 25_000
        inserts.append(Planned("orders/updated", json.dumps(victim).encode(), str(uuid.uuid4()),
                               kind="oversize", expect=413))
    for p in inserts:
        if p.kind == "duplicate":
            # after its original: anywhere later in the stream
            first = next(k for k, q in enumerate(out) if q.event_id == p.event_id)
            out.insert(rng.randint(first + 1, len(out)), p)
        else:
            out.insert(rng.randint(0, len(out)), p)
    return out


def _expected_state(payload: dict[str, Any]) -> str:
    if payload.get("cancelled_at") or payload.get("financial_status") in ("refunded", "voided"):
        return "closed"
    if payload.get("fulfillment_status") == "fulfilled":
        return "fulfilled"
    return "open"


def _replay(shopify: Any, installed: int, total: int, seed: int) -> dict[str, Any]:
    sb = shopify.sandbox
    for i, sku in enumerate(SKUS):
        sb.create_product(f"Product {sku}", [{"sku": sku, "price": 1000 + i, "available": i % 4,
                                              "inventory_policy": "continue"}])
    shop_id = installed
    shopify.process_all(shop_id)
    assert shopify.pull(shop_id).products.applied == len(SKUS)  # the backfill after install
    baseline = _event_count(shopify, shop_id)

    rng = random.Random(seed)
    stream, newest_orders, newest_levels = _build_stream(sb, total, rng)
    planned = _mutate(stream, total, rng)
    assert len(planned) >= total * 0.99

    started = time.monotonic()
    seen_answers: dict[str, int] = {}
    for n, p in enumerate(planned):
        d = sb.deliver_webhook(shopify.webhook_url, p.topic, p.body, secret=p.secret, event_id=p.event_id)
        assert d.error is None, d.error
        assert d.status == p.expect, (p.kind, p.topic, d.status, d.body[:200])
        seen_answers[p.kind] = seen_answers.get(p.kind, 0) + 1
        if n % 250 == 249:
            shopify.process_all(shop_id)  # a worker keeps up while deliveries arrive
    shopify.process_all(shop_id)
    elapsed = time.monotonic() - started

    counts = {k: sum(1 for p in planned if p.kind == k) for k in ("genuine", "duplicate", "forged", "oversize")}
    assert counts["forged"] == int(total * 0.02) and counts["oversize"] == int(total * 0.01)
    assert counts["duplicate"] == int(total * 0.10)

    # exactly one stored row per genuine event id, none for refused or duplicate deliveries
    with UnitOfWork(shopify.db, shop_id, readonly=True) as uow:
        stored = uow.session.execute(
            select(WebhookEvent.event_id, func.count()).group_by(WebhookEvent.event_id)
        ).all()
        statuses = dict(uow.session.execute(
            select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)).all())
    assert all(n == 1 for _, n in stored)
    stored_ids = {e for e, _ in stored}
    genuine_ids = {p.event_id for p in planned if p.kind == "genuine"}
    assert len(stored) - baseline == len(genuine_ids)
    assert genuine_ids <= stored_ids
    assert not ({p.event_id for p in planned if p.kind in ("forged", "oversize")} & stored_ids)
    assert statuses.get("failed", 0) == 0, statuses

    # final state == the newest genuine version of every order
    with UnitOfWork(shopify.db, shop_id, readonly=True) as uow:
        orders = {o.external_id: o for o in uow.session.scalars(select(SalesOrder))}
        assert set(orders) == {str(oid) for oid in newest_orders}
        mismatches: list[tuple[Any, ...]] = []
        closed_without_lines: list[int] = []
        known_bug: list[tuple[Any, ...]] = []
        for oid, payload in newest_orders.items():
            row = orders[str(oid)]
            got_updated = row.platform_updated_at.isoformat().replace("+00:00", "Z")
            if got_updated != payload["updated_at"]:
                mismatches.append((oid, "updated_at", got_updated, payload["updated_at"]))
            if row.state != _expected_state(payload):
                mismatches.append((oid, "state", row.state, _expected_state(payload)))
            if (row.customer_email or "") != payload["email"]:
                mismatches.append((oid, "email", row.customer_email, payload["email"]))
            lines = {ln.external_id: ln for ln in row.lines}
            if not lines and row.state == "closed":
                # Seen for the first time already cancelled (the cancellation overtook the
                # create): ingest_order records the order without lines (it holds nothing).
                closed_without_lines.append(oid)
                continue
            want = {str(li["id"]): li for li in payload["line_items"]}
            if set(lines) != set(want):
                mismatches.append((oid, "lines", sorted(lines), sorted(want)))
                continue
            for lid, li in want.items():
                ln = lines[lid]
                wanted = ln.ordered - ln.cancelled
                if row.state != "closed" and wanted != li["current_quantity"]:
                    # kept apart to name it: a FULFILLED version's quantities were once dropped
                    bucket = known_bug if row.state == "fulfilled" else mismatches
                    bucket.append((oid, lid, "quantity", wanted, li["current_quantity"]))
                if ln.sku != li["sku"]:
                    mismatches.append((oid, lid, "sku", ln.sku, li["sku"]))
                shipped = li["current_quantity"] if li["fulfillment_status"] == "fulfilled" else 0
                if ln.fulfilled != shipped:
                    (known_bug if row.state == "fulfilled" and wanted != li["current_quantity"] else mismatches).append((oid, lid, "fulfilled", ln.fulfilled, shipped))
                if row.state == "open":
                    if ln.allocated + ln.backordered + ln.fulfilled != wanted:
                        mismatches.append((oid, lid, "allocated+backordered+fulfilled", ln.allocated,
                                           ln.backordered, ln.fulfilled, wanted))
                elif ln.backordered != 0 or (row.state == "closed" and ln.allocated != 0):
                    mismatches.append((oid, lid, "units held by a finished order", row.state, ln.allocated,
                                       ln.backordered))
        assert not mismatches, mismatches[:20]
        # Once a known bug (a fulfilled version's quantity change was dropped); now fixed.
        assert not known_bug, known_bug[:20]

        # stock levels: the newest genuine level report of each item
        got_levels = {
            inv: avail for inv, avail in uow.session.execute(
                select(Variant.inventory_item_external_id, StockLevel.available)
                .join(StockLevel, StockLevel.variant_id == Variant.id))
        }
        for inv, p in newest_levels.items():
            assert got_levels.get(inv) == p["available"], (inv, got_levels.get(inv), p["available"], got_levels)
    return {"elapsed": elapsed, "deliveries": len(planned), "counts": counts,
            "closed_without_lines": closed_without_lines, "known_bug": known_bug}


def _event_count(shopify: Any, shop_id: int) -> int:
    with UnitOfWork(shopify.db, shop_id, readonly=True) as uow:
        return int(uow.session.scalar(select(func.count(WebhookEvent.id))) or 0)


@pytest.fixture
def installed(shopify: Any) -> int:
    return shopify.install()


def test_replay_1000_deliveries(shopify, installed):
    result = _replay(shopify, installed, 1000, seed=1000)
    print(result["elapsed"], result["counts"], len(result["closed_without_lines"]), len(result["known_bug"]))


@pytest.mark.slow
def test_replay_5000_deliveries(shopify, installed):
    result = _replay(shopify, installed, 5000, seed=5000)
    print(result["elapsed"], result["counts"], len(result["closed_without_lines"]), len(result["known_bug"]))


def test_a_fulfilled_version_applies_its_quantity_change(shopify, installed):
    """Found by the 5,000-delivery replay (fixed in ingest_order): a quantity removal that reaches
    us only inside the fulfilled version (its own orders/updated was lost, or arrived after the
    fulfilment) must still be applied: 2 ordered and 2 shipped, as Shopify says, not 3 and 3."""
    sb = shopify.sandbox
    sb.create_product("Mug", [{"sku": "MUG-1", "price": 1200, "available": 10, "inventory_policy": "continue"}])
    shopify.pull(installed)
    order = sb.create_order([{"sku": "MUG-1", "quantity": 3}])
    shopify.process_all(installed)
    shop = sb.shop()
    saved = list(shop.subscriptions)
    shop.subscriptions.clear()
    removed = store.rest_order(shop, sb.remove_quantity(order.id, order.line_items[0].id, 1))
    shipped = store.rest_order(shop, sb.fulfill_order(order.id) or shop.orders[order.id])
    shop.subscriptions.extend(saved)
    assert shopify.sandbox.deliver_webhook(shopify.webhook_url, "orders/updated", shipped).status == 200
    assert shopify.sandbox.deliver_webhook(shopify.webhook_url, "orders/updated", removed).status == 200
    shopify.process_all(installed)
    with UnitOfWork(shopify.db, installed, readonly=True) as uow:
        row = uow.session.scalars(select(SalesOrder).where(SalesOrder.external_id == str(order.id))).one()
        (line,) = row.lines
        assert row.state == "fulfilled"
        assert (line.ordered - line.cancelled, line.fulfilled) == (2, 2)
