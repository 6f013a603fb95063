"""Chaos against the sandbox Shopify during pull and push: latency, 5xx, dropped connections (a
TCP proxy written here that kills a share of the connections), THROTTLED storms (a tiny leaky
bucket). ``pull_store`` and ``deliver_due`` (with the real dispatcher of
``bootstrap.dispatch.build_dispatcher_factory`` and the gateway's storefront) are run again and
again until they finish; then the state must have converged: every order ingested exactly once
with the store's quantities, every push present in the sandbox exactly as the DB says now.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.shopify.gateway import ShopifyGateway
from bootstrap.dispatch import build_dispatcher_factory
from connector.db.models import OutboxMessage, SalesOrder
from connector.db.uow import UnitOfWork
from connector.errors import ConnectorError
from connector.services.outbox import count_by_state, deliver_due
from connector.services.shops import shop_access
from connector.services.storefront_push import pushes_for_order
from connector.services.sync import pull_store
from sandbox.shopify import store

API_VERSION = "2025-01"


class DroppingProxy:
    """Loopback TCP proxy; each new connection is dropped (closed unanswered, after reading the
    request) with probability ``drop`` while ``armed``."""

    def __init__(self, upstream_port: int, drop: float, seed: int) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.rng = random.Random(seed)
        self.armed = True
        self.dropped = 0
        self.passed = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.armed and self.rng.random() < self.drop:
                self.dropped += 1
                threading.Thread(target=self._drop, args=(client,), daemon=True).start()
                continue
            self.passed += 1
            threading.Thread(target=self._pipe_pair, args=(client,), daemon=True).start()

    @staticmethod
    def _drop(client: socket.socket) -> None:
        try:
            client.settimeout(1)
            client.recv(65536)
        except OSError:
            pass
        client.close()

    def _pipe_pair(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
        self._pipe(client, upstream)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


class _Mailbox:
    """Customer e-mails queued by the ingest go here (the SMTP side is not under test)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, msg: Any, message_id: str | None = None) -> str:
        self.sent.append(message_id or msg["Message-ID"])
        return message_id or ""


def _inject(sb: Any, rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.15:
        sb.fail_next(rng.randint(8, 15), 503)  # an outage longer than the client's own retries
    elif roll < 0.3:
        sb.fail_next(rng.randint(1, 4), rng.choice([500, 502, 503]))
    elif roll < 0.5:
        sb.delay_next(rng.randint(1, 2), rng.uniform(0.05, 0.3))


def _run_chaos(shopify: Any, n_orders: int, seed: int) -> dict[str, Any]:
    sb = shopify.sandbox
    db = shopify.db
    rng = random.Random(seed)
    skus = [f"C-{i}" for i in range(6)]
    for i, sku in enumerate(skus):
        sb.create_product(f"Chaos {sku}", [{"sku": sku, "price": 500 + i, "available": i % 3,
                                            "inventory_policy": "continue"}])
    shop_id = shopify.install()
    sb.shop().subscriptions.clear()  # the webhooks never come: only the pull can bring orders
    orders = [sb.create_order([{"sku": s, "quantity": rng.randint(1, 5)} for s in rng.sample(skus, rng.randint(1, 3))],
                              notify=False) for _ in range(n_orders)]
    for o in rng.sample(orders, n_orders // 5):
        sb.remove_quantity(o.id, o.line_items[0].id, 1) if o.line_items[0].current > 1 else sb.cancel_order(o.id)

    proxy = DroppingProxy(int(sb.base_url.rsplit(":", 1)[1]), drop=0.15, seed=seed)
    gateway = ShopifyGateway(sb.api_key, sb.api_secret, API_VERSION, lambda _s: proxy.url,
                             max_bytes=shopify.settings.webhook_max_bytes, timeout=2,
                             client_options={"backoff_base": 0.005, "backoff_cap": 0.02})
    # a tiny bucket (Shopify never goes below one max-cost query): THROTTLED storms on big pages
    sb.set_rate_limit(bucket_size=1000, restore_rate=1500)
    errors: Counter[str] = Counter()
    try:
        # ---------------------------------------------------------------- pull until done
        pulls = 0
        while True:
            pulls += 1
            assert pulls < 200, f"pull never converged: {errors}"
            if pulls == 1:
                sb.fail_next(15, 503)  # the first pull meets an outage longer than the client's retries
            else:
                _inject(sb, rng)
            try:
                storefront = gateway.storefront_for(shop_access(db, shop_id), db)
                pull_store(db, shop_id, storefront, datetime.now(UTC))
            except ConnectorError as exc:
                errors[f"pull:{type(exc).__name__}"] += 1
                continue
            break
        # a clean pull afterwards finds nothing new: the state had converged
        with sb.lock:
            sb.faults.clear()
        proxy.armed = False
        again = pull_store(db, shop_id, gateway.storefront_for(shop_access(db, shop_id), db), datetime.now(UTC))
        assert again.orders.applied == 0, again
        proxy.armed = True

        with UnitOfWork(db, shop_id, readonly=True) as uow:
            dupes = uow.session.execute(
                select(SalesOrder.external_id, func.count()).group_by(SalesOrder.external_id)
                .having(func.count() > 1)).all()
            rows = {o.external_id: o for o in uow.session.scalars(select(SalesOrder))}
            assert not dupes, dupes
            assert set(rows) == {str(o.id) for o in orders}
            for o in orders:
                row = rows[str(o.id)]
                want_state = "closed" if o.cancelled_at else "open"
                assert row.state == want_state, (o.id, row.state)
                assert row.platform_updated_at == o.updated_at.replace(microsecond=0) or \
                    row.platform_updated_at.isoformat().replace("+00:00", "Z") == store.iso(o.updated_at)
                if want_state == "open":
                    got = {ln.external_id: ln.ordered - ln.cancelled for ln in row.lines}
                    assert got == {str(li.id): li.current for li in o.line_items}, o.id

        # ---------------------------------------------------------------- push until done
        now = datetime.now(UTC)
        with UnitOfWork(db, shop_id) as uow:
            for o in orders:
                uow.add(OutboxMessage(kind="eta_changed", target="storefront", subject=str(o.id),
                                      payload={"order": str(o.id)}, idempotency_key=f"chaos-{o.id}",
                                      next_attempt_at=now, created_at=now))
            uow.commit()
        mailbox = _Mailbox()
        factory = build_dispatcher_factory(
            db, shopify.settings, lambda sid: gateway.storefront_for(shop_access(db, sid), db), mailbox)
        clock = now
        rounds = 0
        while True:
            rounds += 1
            assert rounds < 200, f"push never converged: {count_by_state(db, shop_id)}"
            _inject(sb, rng)
            report = deliver_due(db, shop_id, factory(shop_id), clock, limit=25, max_attempts=50,
                                 rng=random.Random(rounds))
            errors["push:retried"] += report.retried
            if report.dead:
                with UnitOfWork(db, shop_id, readonly=True) as uow:
                    dead = uow.session.execute(select(OutboxMessage.kind, OutboxMessage.last_error)
                                               .where(OutboxMessage.state == "dead")).all()
                raise AssertionError(f"dead letters under chaos: {dead}")
            states = count_by_state(db, shop_id)
            if set(states) == {"sent"}:
                break
            clock += timedelta(hours=7)  # past any backoff
        with UnitOfWork(db, shop_id, readonly=True) as uow:
            mine = dict(uow.session.execute(
                select(OutboxMessage.state, func.count()).where(OutboxMessage.idempotency_key.like("chaos-%"))
                .group_by(OutboxMessage.state)).all())
        assert mine == {"sent": len(orders)}
        # at least once, but never the same e-mail twice (the delivery receipt dedupes)
        assert len(mailbox.sent) == len(set(mailbox.sent))
    finally:
        proxy.close()

    # every push is in the store exactly as the database says now
    shop = sb.shop()
    for o in orders:
        push, _variants = pushes_for_order(db, shop_id, str(o.id), datetime.now(UTC).date())
        assert push is not None
        assert ("backordered" in shop.orders[o.id].tags) == push.backordered, o.id
        mf = sb.metafield(f"gid://shopify/Order/{o.id}", "backorder_connector", "line_statuses")
        assert mf is not None, o.id
        want = [{"line_id": ln.line_external_id, "sku": ln.sku, "status": ln.status,
                 "eta": ln.eta.isoformat() if ln.eta else None} for ln in push.lines]
        assert json.loads(mf["value"]) == want, o.id
    assert proxy.dropped > 0, "the proxy never dropped a connection: no chaos happened"
    faults = sum(1 for r in sb.requests if r.get("fault"))
    throttled = sum(1 for r in sb.requests if r.get("throttled"))
    assert faults > 0 and throttled > 0, (faults, throttled)
    assert errors["pull:PlatformError"] + errors["pull:ThrottledError"] >= 1, errors
    return {"errors": dict(errors), "dropped": proxy.dropped, "passed": proxy.passed, "5xx": faults,
            "throttled": throttled, "pulls": pulls, "push_rounds": rounds}


def test_pull_and_push_converge_under_chaos(shopify):
    result = _run_chaos(shopify, n_orders=40, seed=7)
    print(result)


@pytest.mark.slow
def test_pull_and_push_converge_under_heavy_chaos(shopify):
    result = _run_chaos(shopify, n_orders=250, seed=11)
    print(result)


def test_woocommerce_pull_converges_through_429_storms(woo):
    """WooCommerce: 429 storms (Retry-After), 5xx and slow answers during repeated pulls; the
    pull resumes from its cursor until every order is in, exactly once, with the store's lines."""
    sb = woo.sandbox
    rng = random.Random(3)
    products = [sb.create_product(f"W{i}", sku=f"W-{i}", stock_quantity=i % 3, backorders="notify") for i in range(5)]
    orders = [sb.create_order([(p["id"], rng.randint(1, 4)) for p in rng.sample(products, rng.randint(1, 3))])
              for _ in range(60)]
    page = woo.connect()
    assert page.status_code == 200, page.text
    pulls = failures = 0
    while True:
        pulls += 1
        assert pulls < 100, "pull never converged"
        roll = rng.random() if pulls <= 15 and not sb._faults else 1.0  # storms pass; do not pile up
        if pulls == 1 or roll < 0.4:
            sb.fail_next(rng.randint(3, 30), 429, retry_after="1")  # a storm, longer than a page
        elif roll < 0.6:
            sb.fail_next(rng.randint(1, 5), rng.choice([500, 502, 503]), retry_after=None)
        elif roll < 0.7:
            sb.slow_next(2, 0.1)
        try:
            woo.pull()
        except ConnectorError:
            failures += 1
            continue
        break
    print({"pulls": pulls, "failures": failures, "retry_after_sleeps": len(woo.sleeps)})
    assert failures >= 1, "the first storm did not break a pull: no resume was exercised"
    assert woo.sleeps, "the client never honoured a Retry-After"
    again = woo.pull()
    assert again.orders.applied == 0
    shop_id = woo.shop_id()
    with UnitOfWork(woo.db, shop_id, readonly=True) as uow:
        dupes = uow.session.execute(select(SalesOrder.external_id, func.count()).group_by(SalesOrder.external_id)
                                    .having(func.count() > 1)).all()
        rows = {o.external_id: {ln.sku: ln.ordered - ln.cancelled for ln in o.lines}
                for o in uow.session.scalars(select(SalesOrder))}
    assert not dupes
    expected = {str(o["id"]): Counter() for o in orders}
    for o in orders:
        for li in o["line_items"]:
            expected[str(o["id"])][li["sku"]] += li["quantity"]
    assert rows == {k: dict(v) for k, v in expected.items()}


def _woo_faults(sb: Any, rng: random.Random) -> None:
    """One burst of trouble: dropped connections (before or after the store applied the request,
    sometimes more than the client's own retries), 5xx, or slow answers."""
    roll = rng.random()
    if roll < 0.35:
        sb.drop_next(rng.randint(1, 7), after_apply=rng.random() < 0.5, skip=rng.randint(0, 3))
    elif roll < 0.5:
        sb.fail_next(rng.randint(1, 6), rng.choice([500, 502, 503]), retry_after=None)
    elif roll < 0.6:
        sb.slow_next(1, 0.05)


def test_woocommerce_pull_and_push_converge_through_dropped_connections(woo):
    """WooCommerce: connections closed unanswered (before and after the store applied the
    request), 5xx and slow answers during repeated pulls and outbox pushes. Every order arrives
    exactly once with the store's lines; every push ends in the store exactly once (one status
    note per order, the meta the database says), with nothing dead."""
    from adapters.woocommerce.storefront import internal_note
    from connector.config import DEMO_FERNET_KEY, Settings

    sb = woo.sandbox
    rng = random.Random(5)
    products = [sb.create_product(f"D{i}", sku=f"D-{i}", stock_quantity=i % 2, backorders="notify") for i in range(4)]
    orders = [sb.create_order([(p["id"], rng.randint(1, 3)) for p in rng.sample(products, rng.randint(1, 2))])
              for _ in range(30)]
    page = woo.connect()
    assert page.status_code == 200, page.text
    shop_id = woo.shop_id()
    errors: Counter[str] = Counter()

    # ------------------------------------------------------------------ pull until done
    pulls = 0
    while True:
        pulls += 1
        assert pulls < 100, f"pull never converged: {errors}"
        if pulls == 1:
            sb.drop_next(8)  # more drops than the client retries: the first pull fails
        elif not sb._faults:
            _woo_faults(sb, rng)
        try:
            woo.pull()
        except ConnectorError as exc:
            errors[f"pull:{type(exc).__name__}"] += 1
            continue
        break
    with sb._lock:
        sb._faults.clear()
    assert woo.pull().orders.applied == 0  # converged: a clean pull finds nothing new
    with UnitOfWork(woo.db, shop_id, readonly=True) as uow:
        rows = {o.external_id: {ln.sku: ln.ordered - ln.cancelled for ln in o.lines}
                for o in uow.session.scalars(select(SalesOrder))}
    expected: dict[str, Counter[str]] = {str(o["id"]): Counter() for o in orders}
    for o in orders:
        for li in o["line_items"]:
            expected[str(o["id"])][li["sku"]] += li["quantity"]
    assert rows == {k: dict(v) for k, v in expected.items()}  # every order once, with its lines

    # ------------------------------------------------------------------ push until done
    now = datetime.now(UTC)
    with UnitOfWork(woo.db, shop_id) as uow:
        for o in orders:
            uow.add(OutboxMessage(kind="eta_changed", target="storefront", subject=str(o["id"]),
                                  payload={"order": str(o["id"])}, idempotency_key=f"woo-chaos-{o['id']}",
                                  next_attempt_at=now, created_at=now))
        uow.commit()
    settings = Settings(secret_key="hardening-secret-key", fernet_keys=(DEMO_FERNET_KEY,), app_url=woo.url)
    factory = build_dispatcher_factory(
        woo.db, settings, lambda sid: woo.gateway.storefront_for(shop_access(woo.db, sid)), _Mailbox())
    clock, rounds = now, 0
    while True:
        rounds += 1
        assert rounds < 150, f"push never converged: {count_by_state(woo.db, shop_id)}"
        if not sb._faults:
            _woo_faults(sb, rng)
        report = deliver_due(woo.db, shop_id, factory(shop_id), clock, limit=10, max_attempts=50,
                             rng=random.Random(rounds))
        errors["push:retried"] += report.retried
        assert report.dead == 0, count_by_state(woo.db, shop_id)
        if set(count_by_state(woo.db, shop_id)) == {"sent"}:
            break
        clock += timedelta(hours=7)  # past any backoff

    today = datetime.now(UTC).date()
    for o in orders:
        push, _variants = pushes_for_order(woo.db, shop_id, str(o["id"]), today)
        assert push is not None
        notes = [n["note"] for n in sb.order_notes(o["id"]) if not n["customer_note"]]
        assert notes.count(internal_note(push)) == 1, (o["id"], notes)  # pushed once, never twice
        meta = {m["key"]: m["value"] for m in sb.order(o["id"])["meta_data"]}
        want = [{"line": ln.line_external_id, "sku": ln.sku, "status": ln.status,
                 "eta": ln.eta.isoformat() if ln.eta else None} for ln in push.lines]
        assert json.loads(meta["_backorder_status"]) == want, o["id"]
    print({"pulls": pulls, "push_rounds": rounds, "dropped": sb.connections_dropped, "errors": dict(errors)})
    assert sb.connections_dropped >= 10, sb.connections_dropped
    assert errors["pull:PlatformError"] >= 1 and errors["push:retried"] >= 1, errors
