"""The world of the crash-loop test: sandboxes, SMTP sink and web app in the TEST process.

The stores, the SMTP sink and the web app (which answers the install/connect flows and stores
the webhooks) live in the test process, so they survive every ``kill -9`` of the child that runs
the jobs. Only the job cycles run in ``crash_child.py``, against the same SQLite file.

Everything runs on fixed clocks: the setup at ``T0``, the job cycles at ``T_JOBS``, the final
"after the leases expired" pass at ``T_FINAL`` (see ``crash_child.py``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import message_id_for
from bootstrap.demo import SHOPIFY_TERMS, WOO_TERMS, _Quiet
from bootstrap.runtime import build_runtime, build_web_app
from connector.config import load_settings
from connector.db import migrate
from connector.db.models import (
    DropshipForward,
    OrderLine,
    OutboxMessage,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Shop,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.services.merchant_pages import VariantSettings, import_supplier_terms, update_variant_settings
from sandbox.shopify import store as sandbox_store
from sandbox.shopify.server import SandboxShopify
from sandbox.woocommerce.server import SandboxWoo

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
T_JOBS = T0 + timedelta(hours=1)
# Later than every lease (outbox: 5 minutes) and every retry backoff a crash can cause.
T_FINAL = T_JOBS + timedelta(hours=1)


def _next_second() -> None:
    """Sleep into the next wall-clock second.

    The stores stamp ``updated_at`` with whole seconds; orders and stock reports that share a
    second are applied differently depending on where the second boundaries fall (see the xfail
    test), so the comparison places each order in a second of its own.
    """
    time.sleep(1.02 - (time.time() % 1.0))


class CrashWorld:
    """Sandbox Shopify + WooCommerce, SMTP sink and the web app, on one SQLite file."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        # The sandbox Shopify numbers every object from one module-wide counter: restart it so
        # both worlds get the same order/line ids (and so the same idempotency keys and Message-IDs).
        sandbox_store._ids = itertools.count(9_007_199_254_741_000)
        self.sink = SmtpSink().start()
        # A roomy cost bucket: the first pull otherwise waits ~20 s for throttle refills.
        self.shopify = SandboxShopify(validate_with_real_schema=False, bucket_size=100_000, restore_rate=100_000)
        self.shopify.start()
        self.woo = SandboxWoo()
        self.woo.start()
        holder: dict[str, Any] = {}

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            return holder["app"](environ, start_response)

        self.server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.database_url = f"sqlite:///{db_path}"
        self.settings = load_settings(
            {}, dotenv_path=None, demo=True, database_url=self.database_url, app_url=self.url,
            smtp_url=self.sink.url, shopify_api_key=self.shopify.api_key,
            shopify_api_secret=self.shopify.api_secret, shopify_api_version="2025-01",
            mail_from="backorders@demo.example", scheduler_lock_path=str(db_path.parent / "scheduler.lock"),
        )
        self.rt = build_runtime(self.settings, shopify_base_url_for=lambda _shop: self.shopify.base_url,
                                clock=lambda: T0)
        self.rt.kick_enabled = False  # the child processes the stored webhooks
        migrate.upgrade(self.rt.db)
        holder["app"] = build_web_app(self.rt)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.web_up = True

    def stop_web(self) -> None:
        """Stop the web app: from now on the stores' webhooks find nobody (connection refused).

        The pushes the jobs make come back as store webhooks (products/update, orders/updated)
        at moments that depend on thread timing, not on the jobs; with the web app up, the final
        state depends on when they land (see the xfail test), so the comparison runs without them.
        """
        if self.web_up:
            self.server.shutdown()
            self.server.server_close()
            self.web_up = False

    def close(self) -> None:
        self.stop_web()
        self.rt.executor.shutdown(wait=True)
        self.woo.stop()
        self.shopify.stop()
        self.sink.stop()
        self.rt.db.dispose()

    def child_config(self) -> str:
        return json.dumps({
            "database_url": self.database_url, "app_url": self.url, "smtp_url": self.sink.url,
            "shopify_api_key": self.shopify.api_key, "shopify_api_secret": self.shopify.api_secret,
            "shopify_base_url": self.shopify.base_url,
            "scheduler_lock_path": str(self.db_path.parent / "scheduler.lock"),
            "t_jobs": T_JOBS.isoformat(), "t_final": T_FINAL.isoformat(),
        })

    # ------------------------------------------------------------------ the demo's setup, at T0

    def _shop_id(self, platform: str) -> int:
        with UnitOfWork(self.rt.db, readonly=True) as uow:
            found = uow.session.scalar(select(Shop.id).where(Shop.platform == platform))
        assert found is not None, platform
        return int(found)

    def _wait_for_variant(self, shop_id: int, sku: str, timeout: float = 10.0) -> None:
        # The wc-auth flow can answer before the store's catalogue is in (seen once in ~10 runs).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with UnitOfWork(self.rt.db, shop_id, readonly=True) as uow:
                if uow.session.scalar(select(Variant.id).where(Variant.sku == sku)) is not None:
                    return
            time.sleep(0.05)
        raise AssertionError(f"variant {sku} of shop {shop_id} never arrived")

    def _set_variant(self, shop_id: int, sku: str, **changes: Any) -> None:
        with UnitOfWork(self.rt.db, shop_id, readonly=True) as uow:
            v = uow.session.scalars(select(Variant).where(Variant.sku == sku)).one()
            variant_id = v.id
            values = dict(backorders_allowed=v.backorders_allowed, release_date=v.release_date, dropship=v.dropship,
                          popular=v.popular, safety_stock=v.safety_stock, supplier_id=v.supplier_id)
        values.update(changes)
        update_variant_settings(self.rt.db, shop_id, variant_id, VariantSettings(**values))

    def prepare(self, *, orders_in_distinct_seconds: bool = True, orders_in_one_second: bool = False) -> list[int]:
        """The demo's stores, installs (OAuth, wc-auth), supplier terms and 8 orders; webhooks stored."""
        sb, woo = self.shopify, self.woo
        if orders_in_one_second:
            _next_second()  # products, install pull and the 5 Shopify orders take < 1 s: one second
        t_start = time.time()
        sb.create_product("Oak chair", [{"sku": "CHAIR-OAK", "price": 12000, "available": 2, "inventory_policy": "continue"}])
        sb.create_product("Oak table", [{"sku": "TABLE-OAK", "price": 45000, "available": 1, "inventory_policy": "continue"}])
        sb.create_product("Brass lamp", [{"sku": "LAMP-BRASS", "price": 6000, "available": 0, "inventory_policy": "continue"}])
        sb.create_product("Garden hammock", [{"sku": "HAMMOCK", "price": 9000, "available": 0, "inventory_policy": "continue"}])
        woo.create_product("Widget", sku="WIDGET", stock_quantity=3, backorders="notify", price="12.50")

        browser = requests.Session()
        r = browser.get(f"{self.url}/shopify/install", params={"shop": sb.default_shop}, allow_redirects=False,
                        timeout=10)
        consent = browser.get(r.headers["Location"], allow_redirects=False, timeout=10)
        done = browser.get(consent.headers["Location"], allow_redirects=False, timeout=30)
        assert done.status_code == 302, done.text[:300]
        shopify_id = self._shop_id("shopify")
        start = requests.get(f"{self.url}/woocommerce/connect", params={"store_url": woo.base_url},
                             allow_redirects=False, timeout=10)
        approve = requests.get(start.headers["Location"], allow_redirects=False, timeout=30)
        requests.get(approve.headers["Location"], timeout=10)
        woo_id = self._shop_id("woocommerce")
        self._wait_for_variant(woo_id, "WIDGET")

        for shop_id, terms in ((shopify_id, SHOPIFY_TERMS), (woo_id, WOO_TERMS)):
            result = import_supplier_terms(self.rt.db, shop_id, terms)
            assert result.ok, result.errors
        self._set_variant(shopify_id, "LAMP-BRASS", release_date=T0.date() + timedelta(days=21))
        self._set_variant(shopify_id, "HAMMOCK", dropship=True)

        customers = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing"), ("Edsger", "Dijkstra"),
                     ("Barbara", "Liskov")]
        baskets = [
            [{"sku": "CHAIR-OAK", "quantity": 3}, {"sku": "HAMMOCK"}],
            [{"sku": "CHAIR-OAK", "quantity": 4}, {"sku": "TABLE-OAK"}, {"sku": "HAMMOCK"}],
            [{"sku": "TABLE-OAK", "quantity": 2}, {"sku": "LAMP-BRASS"}],
            [{"sku": "LAMP-BRASS", "quantity": 2}, {"sku": "HAMMOCK"}],
            [{"sku": "CHAIR-OAK", "quantity": 2}, {"title": "Gift wrapping", "price": 500}],
        ]
        for (first, last), lines in zip(customers, baskets, strict=True):
            if orders_in_distinct_seconds:
                _next_second()
            sb.create_order(lines, email=f"{first.lower()}@example.com", first_name=first, last_name=last,
                            shipping_address={"first_name": first, "last_name": last, "address1": "1 Demo Street",
                                              "city": "Springfield", "zip": "12345", "country_code": "US"})
        self.setup_seconds = {int(t_start), int(time.time())}
        widget = next(p for p in woo.products.values() if p.get("sku") == "WIDGET")
        for first, _last in customers[:3]:
            if orders_in_distinct_seconds:
                _next_second()
            woo.create_order([(widget["id"], 2)], email=f"{first.lower()}.woo@example.com", first_name=first)
        sb.wait_for_webhooks()
        woo.wait_for_deliveries()
        time.sleep(0.2)
        return [shopify_id, woo_id]

    # ------------------------------------------------------------------ the state to compare

    def snapshot(self) -> dict[str, Any]:
        """Everything that must not depend on crashes, keyed by natural keys (no row ids, no timestamps)."""
        with UnitOfWork(self.rt.db, readonly=True) as uow:
            s = uow.session
            shops = {sid: platform for sid, platform in s.execute(select(Shop.id, Shop.platform))}
            po_numbers = {pid: num for pid, num in s.execute(select(PurchaseOrder.id, PurchaseOrder.number))}
            po_line_key = {plid: f"{po_numbers[poid]}/{sku}" for plid, poid, sku in s.execute(
                select(PurchaseOrderLine.id, PurchaseOrderLine.purchase_order_id, PurchaseOrderLine.sku))}
            forward_numbers = {fid: num for fid, num in s.execute(select(DropshipForward.id, DropshipForward.number))}
            pegs: dict[int, list[str]] = {}
            for peg in s.scalars(select(Peg)):
                pegs.setdefault(peg.order_line_id, []).append(f"{po_line_key[peg.po_line_id]}x{peg.units}")
            orders = sorted((shops[o.shop_id], o.number, o.state) for o in s.scalars(select(SalesOrder)))
            lines = sorted(
                (shops[ln.shop_id], ln.order.number, ln.external_id, ln.sku or "", ln.kind, ln.ordered, ln.allocated,
                 ln.backordered, ln.cancelled, ln.fulfilled, ln.pegged, str(ln.promised_eta), str(ln.notified_eta),
                 str(ln.current_eta), forward_numbers.get(ln.dropship_forward_id or 0, ""),
                 ",".join(sorted(pegs.get(ln.id, []))))
                for ln in s.scalars(select(OrderLine))
            )
            pos = sorted(
                (shops[p.shop_id], p.number, p.status, str(p.expected_date), p.expected_date_source,
                 tuple(sorted((pl.sku, pl.supplier_sku, pl.ordered, pl.received) for pl in p.lines)))
                for p in s.scalars(select(PurchaseOrder))
            )
            forwards = sorted((shops[f.shop_id], f.number, f.status, f.reason) for f in s.scalars(select(DropshipForward)))
            messages = list(s.scalars(select(OutboxMessage)))
            outbox = Counter((shops[m.shop_id], m.kind, m.target, m.state) for m in messages)
            outbox_keys = sorted((shops[m.shop_id], m.kind, m.idempotency_key, m.state) for m in messages)
        return {"orders": orders, "lines": lines, "purchase_orders": pos, "dropship_forwards": forwards,
                "outbox": sorted(outbox.items()), "outbox_keys": outbox_keys}

    def attempts_by_message_id(self) -> dict[str, tuple[str, int]]:
        """Message-ID (as the dispatcher derives it) -> (outbox kind, attempts)."""
        with UnitOfWork(self.rt.db, readonly=True) as uow:
            rows = uow.session.execute(select(OutboxMessage.shop_id, OutboxMessage.idempotency_key,
                                              OutboxMessage.kind, OutboxMessage.attempts)).all()
        out: dict[str, tuple[str, int]] = {}
        for shop_id, key, kind, attempts in rows:
            out[message_id_for(key, "demo.example")] = (kind, attempts)  # customer e-mails (bootstrap.dispatch)
            # supplier e-mails: bootstrap.dispatch_suppliers.delivery_key
            out[message_id_for(f"shop-{shop_id}:{key}", "demo.example")] = (kind, attempts)
        return out

    def mail_ids(self) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for m in self.sink.messages)

    def shopify_pushes(self) -> set[str]:
        return {json.dumps(m, sort_keys=True, default=str) for m in self.shopify.mutations}

