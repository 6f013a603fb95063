"""``backorders demo``: the product's main job end to end on the embedded default.

Everything is real and local: a fresh SQLite database under ``./var/``, a sandbox Shopify and a
sandbox WooCommerce store on loopback (real HTTP, real client libraries), a local SMTP sink, and
this service's web app answering their webhooks. No account, no network.

The story: a Shopify shop installs the app (OAuth) and a WooCommerce store connects (wc-auth);
the merchant imports supplier terms from CSV; customers order past stock on both stores; the
webhooks bring the orders in and the engine backorders what stock cannot cover; consolidation
makes one purchase order per supplier, which goes to the supplier by e-mail (CSV + PDF); customers
get a confirmation with their ETA and the stores get status, tags and ETA metafields; dropship
orders wait for the supplier's quota and go out in one forward; the supplier moves a date
through the link in the PO e-mail and every affected customer gets exactly one apology; a
receipt fills the oldest orders first and they get a ready notice.

``--once --json`` prints one JSON summary line and exits; otherwise the web app keeps serving on
127.0.0.1:5000 (merchant pages, shopper pages) with the embedded scheduler, until Ctrl-C.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from adapters.mail.sink import SmtpSink
from bootstrap.runtime import Runtime, build_runtime, build_web_app
from connector.config import load_settings
from connector.db import migrate
from connector.db.models import (
    DropshipForward,
    OrderLine,
    OutboxMessage,
    PurchaseOrder,
    SalesOrder,
    Shop,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.services.accounts import create_merchant_user
from connector.services.merchant_pages import (
    VariantSettings,
    import_supplier_terms,
    save_shop_settings,
    update_variant_settings,
)
from connector.services.purchasing import receive_purchase_order, send_purchase_order
from connector.web.webhook_fast_path import WebhookFastPath
from jobs.runner import run_job_for_all_shops
from sandbox.shopify.server import SandboxShopify
from sandbox.woocommerce.server import SandboxWoo

DEMO_DB = Path("var/demo.sqlite3")
MERCHANT_EMAIL = "demo@example.com"
MERCHANT_PASSWORD = "demo-password"

SHOPIFY_TERMS = """supplier,email,delivery_method,webhook_url,lead_time_days,min_order_value,currency,max_wait_days,auto_send,dropship,dropship_min_units,dropship_min_value,sku,supplier_sku,unit_cost,pack_size,moq
Acme Furniture,orders@acme.example,email,,14,300.00,USD,3,no,no,0,0.00,CHAIR-OAK,AC-1001,40.00,6,12
Acme Furniture,orders@acme.example,email,,14,300.00,USD,3,no,no,0,0.00,TABLE-OAK,AC-2001,150.00,1,2
Lumen Lights,po@lumen.example,email,,10,0.00,USD,,no,no,0,0.00,LAMP-BRASS,LL-77,25.00,4,0
Hammock Co,dropship@hammock.example,email,,5,0.00,USD,,no,yes,3,0.00,HAMMOCK,HC-9,30.00,1,0
"""
WOO_TERMS = """supplier,email,delivery_method,webhook_url,lead_time_days,min_order_value,currency,max_wait_days,auto_send,dropship,dropship_min_units,dropship_min_value,sku,supplier_sku,unit_cost,pack_size,moq
Widget Works,sales@widgetworks.example,email,,7,0.00,EUR,,no,no,0,0.00,WIDGET,WW-1,6.00,10,0
"""


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Story:
    lines: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(f"  {text}", file=sys.stderr, flush=True)


class DemoWorld:
    """The sandboxes, the SMTP sink, the runtime and the web server of one demo run."""

    def __init__(self, port: int, database_url: str | None) -> None:
        self.sink = SmtpSink()
        self.sink.start()
        self.shopify = SandboxShopify(validate_with_real_schema=False)
        self.shopify.start()
        self.woo = SandboxWoo()
        self.woo.start()
        holder: dict[str, Any] = {}

        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            return holder["app"](environ, start_response)

        self.server = make_server("127.0.0.1", port, wsgi, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        if database_url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)
        self.settings = load_settings(
            {}, dotenv_path=None, demo=True, database_url=database_url or f"sqlite:///{DEMO_DB}",
            app_url=self.url, smtp_url=self.sink.url, shopify_api_key=self.shopify.api_key,
            shopify_api_secret=self.shopify.api_secret, shopify_api_version="2025-01",
            mail_from="backorders@demo.example", scheduler_lock_path="var/demo-scheduler.lock",
        )
        self.rt: Runtime = build_runtime(self.settings, shopify_base_url_for=lambda _shop: self.shopify.base_url)
        # Events are processed in `settle`, after each batch of deliveries has landed, so every run
        # of the demo tells the same story (the job and the kick do the same in production).
        self.rt.kick_enabled = False
        migrate.upgrade(self.rt.db)
        self.app = build_web_app(self.rt)
        # On SQLite the webhook deliveries go through the webhook writer process; wait for it so
        # that every delivery of the story does (it is started in the background otherwise).
        self.webhook_writer = self.app.extensions.get("backorders.webhook_writer")
        if self.webhook_writer is not None and not self.webhook_writer.wait_ready(30):
            print("  (the webhook writer did not start: deliveries are stored directly)", file=sys.stderr)
        # The ordinary deliveries are answered below Flask (connector/web/webhook_fast_path.py).
        fast_path = self.app.wsgi_app
        if not isinstance(fast_path, WebhookFastPath):
            raise RuntimeError("the web app has no webhook fast path in front of it")
        self.fast_path = fast_path
        holder["app"] = self.app
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.webhook_writer is not None:
            self.webhook_writer.close()  # the writer exits soon after its last client
        self.server.shutdown()
        self.server.server_close()
        self.rt.executor.shutdown(wait=True)
        self.woo.stop()
        self.shopify.stop()
        self.sink.stop()
        self.rt.db.dispose()

    # ------------------------------------------------------------------ merchant actions

    def install_shopify(self) -> int:
        browser = requests.Session()
        r = browser.get(f"{self.url}/shopify/install", params={"shop": self.shopify.default_shop},
                        allow_redirects=False, timeout=10)
        consent = browser.get(r.headers["Location"], allow_redirects=False, timeout=10)
        done = browser.get(consent.headers["Location"], allow_redirects=False, timeout=30)
        if done.status_code != 302:
            raise RuntimeError(f"Shopify install failed: {done.status_code} {done.text[:200]}")
        return self.shop_id("shopify")

    def connect_woo(self) -> int:
        start = requests.get(f"{self.url}/woocommerce/connect", params={"store_url": self.woo.base_url},
                             allow_redirects=False, timeout=10)
        approve = requests.get(start.headers["Location"], allow_redirects=False, timeout=30)
        requests.get(approve.headers["Location"], timeout=10)
        return self.shop_id("woocommerce")

    def shop_id(self, platform: str) -> int:
        with UnitOfWork(self.rt.db, readonly=True) as uow:
            found = uow.session.scalar(select(Shop.id).where(Shop.platform == platform))
        if found is None:
            raise RuntimeError(f"no {platform} shop was installed")
        return found

    def variant_id(self, shop_id: int, sku: str) -> int:
        with UnitOfWork(self.rt.db, shop_id, readonly=True) as uow:
            found = uow.session.scalar(select(Variant.id).where(Variant.sku == sku))
        assert found is not None, sku
        return found

    def set_variant(self, shop_id: int, sku: str, **changes: Any) -> None:
        with UnitOfWork(self.rt.db, shop_id, readonly=True) as uow:
            v = uow.session.scalars(select(Variant).where(Variant.sku == sku)).one()
            values = dict(backorders_allowed=v.backorders_allowed, release_date=v.release_date, dropship=v.dropship,
                          popular=v.popular, safety_stock=v.safety_stock, supplier_id=v.supplier_id)
        values.update(changes)
        update_variant_settings(self.rt.db, shop_id, self.variant_id(shop_id, sku), VariantSettings(**values))

    def settle(self, shop_ids: list[int], now: datetime) -> None:
        """Let the webhooks land, then process what is stored (the kick usually did already)."""
        self.shopify.wait_for_webhooks()
        self.woo.wait_for_deliveries()
        time.sleep(0.2)
        for shop_id in shop_ids:
            self.rt.process_webhooks(shop_id, now)

    def job(self, name: str, now: datetime) -> None:
        run_job_for_all_shops(self.rt.job_ctx, name, now)


def run_story(world: DemoWorld, story: Story) -> dict[str, int]:
    sb, woo, rt = world.shopify, world.woo, world.rt
    now = datetime.now(UTC)
    # The stores before the app arrives: stock of a few units, every item sells past zero.
    sb.create_product("Oak chair", [{"sku": "CHAIR-OAK", "price": 12000, "available": 2, "inventory_policy": "continue"}])
    sb.create_product("Oak table", [{"sku": "TABLE-OAK", "price": 45000, "available": 1, "inventory_policy": "continue"}])
    sb.create_product("Brass lamp", [{"sku": "LAMP-BRASS", "price": 6000, "available": 0, "inventory_policy": "continue"}])
    sb.create_product("Garden hammock", [{"sku": "HAMMOCK", "price": 9000, "available": 0, "inventory_policy": "continue"}])
    woo.create_product("Widget", sku="WIDGET", stock_quantity=3, backorders="notify", price="12.50")

    shopify_id = world.install_shopify()
    story.say(f"Shopify shop {sb.default_shop} installed the app (OAuth, webhooks registered, catalogue pulled)")
    woo_id = world.connect_woo()
    story.say(f"WooCommerce store {woo.base_url} connected (wc-auth keys, webhooks created)")
    for shop_id in (shopify_id, woo_id):
        create_merchant_user(rt.db, shop_id, MERCHANT_EMAIL if shop_id == shopify_id else "woo@example.com",
                             MERCHANT_PASSWORD)
    for shop_id, terms in ((shopify_id, SHOPIFY_TERMS), (woo_id, WOO_TERMS)):
        result = import_supplier_terms(rt.db, shop_id, terms)
        assert result.ok, result.errors
    # Settings page choices: a customer's cancellation is also refunded on the Shopify store, and
    # consolidation runs daily at 06:00 shop time (honoured by the scheduler once serving).
    save_shop_settings(rt.db, shopify_id, {"cancellation_mode": "storefront",
                                           "schedules": {"consolidate": {"daily_at": "06:00"}}})
    world.set_variant(shopify_id, "LAMP-BRASS", release_date=now.date() + timedelta(days=21))
    world.set_variant(shopify_id, "HAMMOCK", dropship=True)
    story.say("merchant imported supplier terms (CSV), marked LAMP-BRASS a preorder and HAMMOCK dropship, and chose "
              "refunds on the store for customer cancellations and a daily 06:00 consolidation")

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
        sb.create_order(lines, email=f"{first.lower()}@example.com", first_name=first, last_name=last,
                        shipping_address={"first_name": first, "last_name": last, "address1": "1 Demo Street",
                                          "city": "Springfield", "zip": "12345", "country_code": "US"})
    widget = next(p for p in woo.products.values() if p.get("sku") == "WIDGET") if hasattr(woo, "products") else None
    for i, (first, last) in enumerate(customers[:3]):
        woo.create_order([(widget["id"] if widget else 1, 2)], email=f"{first.lower()}.woo@example.com",
                         first_name=first, last_name=last)
        del i
    world.settle([shopify_id, woo_id], now)
    writer = world.webhook_writer
    stored_by = f", {writer.answered} so far through the webhook writer process" if writer is not None else ""
    stored_by = f" ({world.fast_path.answered} answered by the fast path below Flask{stored_by})"
    story.say(f"8 orders placed on the two stores; webhooks verified, stored{stored_by} and processed")

    now += timedelta(hours=1)
    world.job("consolidate", now)
    world.job("dropship_check", now)
    # The merchant approves the purchase orders that are ready (suppliers here are not auto-send).
    for shop_id in (shopify_id, woo_id):
        with UnitOfWork(rt.db, shop_id, readonly=True) as uow:
            ready = list(uow.session.scalars(select(PurchaseOrder.id).where(PurchaseOrder.status == "ready")))
        for po_id in ready:
            send_purchase_order(rt.db, shop_id, po_id, now)
    world.job("deliver_outbox", now)
    story.say("consolidation: one purchase order per supplier, sent by e-mail with CSV and PDF; "
              "customers told their ETA; stores updated")

    # The supplier opens the link in the PO e-mail and moves the date by 10 days.
    po_mail = next(m for m in world.sink.messages if "orders@acme.example" in str(m["To"]))
    body = po_mail.get_body(preferencelist=("plain",))
    link = re.search(r"(http://127\.0\.0\.1:\d+/supplier/po/\S+)", body.get_content() if body else "")
    if link:
        page = requests.get(link.group(1), headers={"Accept": "application/json"}, timeout=10).json()
        later = (date.fromisoformat(page["expected_date"]) + timedelta(days=10)).isoformat() \
            if isinstance(page, dict) and page.get("expected_date") else (now.date() + timedelta(days=30)).isoformat()
        answer = requests.post(link.group(1), json={"expected_date": later, "reason": "factory backlog",
                                                   "confirm": True}, timeout=10)
        story.say(f"Acme confirmed through its link and moved the date to {later} ({answer.status_code})")
    now += timedelta(hours=1)
    world.job("deliver_outbox", now)
    story.say("every customer waiting on that PO got exactly one apology with the new date")

    # One customer would rather not wait: the cancel link in the apology cancels the waiting
    # units, hands them to the next customer in line and refunds them on the store.
    apologies = [m for m in world.sink.messages if "is delayed" in str(m["Subject"])]
    # Barbara's order has no dropship line (a forwarded hammock would also be cancelled with
    # the supplier, which the story shows elsewhere).
    apology = next((m for m in apologies if "barbara@" in str(m["To"])), apologies[0] if apologies else None)
    abody = apology.get_body(preferencelist=("plain",)) if apology else None
    clink = re.search(r"(http://127\.0\.0\.1:\d+/orders/cancel/\S+)", abody.get_content() if abody else "")
    if clink:
        answer = requests.post(clink.group(1), timeout=10)
        world.job("deliver_outbox", now + timedelta(minutes=10))
        story.say(f"{apology['To'] if apology else 'a customer'} cancelled the delayed items from the apology "
                  f"({answer.status_code}); the store refunded them")

    # The dropship supplier ships and reports tracking through the link in its forward e-mail.
    forward_mail = next((m for m in world.sink.messages if "dropship@hammock.example" in str(m["To"])), None)
    fbody = forward_mail.get_body(preferencelist=("plain",)) if forward_mail else None
    flink = re.search(r"(http://127\.0\.0\.1:\d+/supplier/forward/\S+)", fbody.get_content() if fbody else "")
    if flink:
        answer = requests.post(flink.group(1).rstrip("/") + "/tracking",
                               json={"tracking_number": "1Z999AA10123456784", "company": "UPS"}, timeout=10)
        world.job("deliver_outbox", now + timedelta(minutes=30))
        story.say(f"Hammock Co shipped the dropship orders and sent tracking ({answer.status_code}); "
                  "the lines were fulfilled on the store")

    now += timedelta(days=3)
    with UnitOfWork(rt.db, shopify_id, readonly=True) as uow:
        acme_po = uow.session.scalars(
            select(PurchaseOrder).join(PurchaseOrder.lines).where(PurchaseOrder.status.in_(("sent", "confirmed")))
            .where(PurchaseOrder.lines.any(sku="CHAIR-OAK"))
        ).first()
        acme_po_id = acme_po.id if acme_po else None
    if acme_po_id is not None:
        receive_purchase_order(rt.db, shopify_id, acme_po_id, {"CHAIR-OAK": 6}, now)
        story.say("6 oak chairs received: the oldest waiting orders were filled first")
    world.job("deliver_outbox", now + timedelta(minutes=5))
    return summary(world, [shopify_id, woo_id])


def summary(world: DemoWorld, shop_ids: list[int]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    with UnitOfWork(world.rt.db, readonly=True) as uow:
        s = uow.session
        counts["shops_installed"] = int(s.scalar(select(func.count()).select_from(Shop).where(Shop.status == "installed")) or 0)
        counts["orders"] = int(s.scalar(select(func.count()).select_from(SalesOrder)) or 0)
        counts["lines_backordered"] = int(s.scalar(
            select(func.count()).select_from(OrderLine).where(OrderLine.kind.in_(("backorder", "preorder", "oversold")))
        ) or 0)
        counts["dropship_lines"] = int(s.scalar(select(func.count()).select_from(OrderLine).where(OrderLine.kind == "dropship")) or 0)
        counts["units_still_waiting"] = int(s.scalar(select(func.coalesce(func.sum(OrderLine.backordered), 0))) or 0)
        counts["purchase_orders"] = int(s.scalar(select(func.count()).select_from(PurchaseOrder)) or 0)
        counts["dropship_forwards"] = int(s.scalar(select(func.count()).select_from(DropshipForward)) or 0)
        by_kind = dict(s.execute(select(OutboxMessage.kind, func.count()).where(OutboxMessage.state == "sent")
                                 .group_by(OutboxMessage.kind)).all())
        counts["outbox_dead"] = int(s.scalar(select(func.count()).select_from(OutboxMessage)
                                             .where(OutboxMessage.state == "dead")) or 0)
    mails = world.sink.messages
    subjects = [str(m["Subject"]) for m in mails]
    counts["emails_total"] = len(mails)
    counts["po_emails"] = sum(1 for m in mails if any(p.get_filename() and p.get_filename().endswith(".pdf")
                                                      for p in m.iter_attachments()))
    counts["delay_notices"] = int(by_kind.get("delayed", 0))
    counts["confirmations"] = int(by_kind.get("backordered", 0) + by_kind.get("preorder", 0)
                                  + by_kind.get("dropship", 0))
    counts["ready_notices"] = int(by_kind.get("allocated", 0))
    counts["storefront_pushes"] = int(by_kind.get("eta_changed", 0))
    counts["shopify_mutations"] = len(world.shopify.mutations)
    counts["webhooks_fast_path"] = world.fast_path.answered
    counts["webhooks_via_writer"] = world.webhook_writer.answered if world.webhook_writer is not None else 0
    counts["shopify_fulfillments"] = sum(1 for m in world.shopify.mutations if "fulfillmentCreate" in str(m))
    counts["shipped_notices"] = int(by_kind.get("shipped", 0))
    counts["customer_cancellations"] = int(by_kind.get("cancellation_requested", 0))
    refunds = [r for o in world.shopify.shop().orders.values() for r in o.refunds]
    counts["store_refunds"] = len(refunds)
    counts["store_refunded_cents"] = sum(r.amount_cents for r in refunds)
    del subjects
    return dict(counts)


def run_demo(*, once: bool, as_json: bool, host: str, port: int, database_url: str | None = None) -> int:
    world = DemoWorld(0 if once else port, database_url)
    story = Story()
    try:
        result = run_story(world, story)
        if as_json:
            print(json.dumps({"demo": "ok", **result}, sort_keys=True))
        else:
            print(json.dumps(result, indent=2, sort_keys=True))
        if once:
            return 0
        from jobs.scheduler import start_embedded_scheduler

        handle = start_embedded_scheduler(world.rt.job_ctx)
        print(f"\nserving on {world.url}/ (Ctrl-C to stop)\n"
              f"  merchant pages: {world.url}/merchant/login  ({MERCHANT_EMAIL} / {MERCHANT_PASSWORD})\n"
              f"  shopper page:   {world.url}/shop/{world.shopify.default_shop}/backorders\n"
              f"  e-mails sent:   {len(world.sink.messages)} in the local SMTP sink ({world.sink.url})",
              file=sys.stderr)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            handle.shutdown()
        return 0
    finally:
        world.close()
