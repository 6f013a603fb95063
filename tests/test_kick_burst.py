"""Processing after a webhook waits while deliveries pour in, runs in one process at a time,
and still applies every event."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bootstrap.runtime import Runtime, build_runtime, build_web_app
from bootstrap.webhook_kick import BUSY_DELIVERIES, ingest_busy, processing_lock
from connector import crypto
from connector.config import DEMO_FERNET_KEY, Settings
from connector.db import migrate
from connector.db.models import SalesOrder, Shop, WebhookEvent
from sandbox.shopify import store
from sandbox.shopify.server import SandboxShopify

API_KEY, API_SECRET, SHOP = "burst-key", "shpss_burst000000000000000000000000000000", "burst.myshopify.com"


def signed_orders(count: int) -> list[tuple[bytes, str]]:
    """orders/create payloads as the sandbox Shopify renders them, with their HMAC."""
    sb = SandboxShopify(api_secret=API_SECRET, shop_domain=SHOP)  # never started: only its renderer
    sb.create_product("Mug", [{"sku": f"MUG-{i}", "price": 1200, "available": 0, "inventory_policy": "continue",
                               "title": f"Colour {i}"} for i in range(3)])
    out = []
    for n in range(count):
        order = sb.create_order([{"sku": f"MUG-{n % 3}", "quantity": 2}], email=f"b{n}@example.com", notify=False)
        body = json.dumps(store.rest_order(sb.shop(), order)).encode()
        out.append((body, base64.b64encode(hmac.new(API_SECRET.encode(), body, hashlib.sha256).digest()).decode()))
    sb.stop()
    return out


def headers(signature: str, event_id: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": event_id, "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": "2026-03-02T08:00:00Z", "X-Shopify-API-Version": "2026-04"}


def runtime_with_shop(tmp_path: Path) -> tuple[Runtime, int]:
    """The embedded runtime (Shopify app on) on a fresh SQLite file, with one installed shop."""
    crypto.configure_cipher([DEMO_FERNET_KEY])
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", fernet_keys=(DEMO_FERNET_KEY,), secret_key="kick",
        shopify_api_key=API_KEY, shopify_api_secret=API_SECRET, scheduler_lock_path=str(tmp_path / "lock"),
    )
    rt = build_runtime(settings)
    migrate.upgrade(rt.db)
    with rt.db.engine.begin() as conn:
        shop_id = conn.execute(Shop.__table__.insert().values(  # type: ignore[attr-defined]
            platform="shopify", domain=SHOP, name="Kick", status="installed", scopes="", timezone="UTC",
            currency="USD", settings={}, po_sequence=0, forward_sequence=0, created_at=datetime.now(UTC),
        )).inserted_primary_key[0]
    return rt, int(shop_id)


def test_a_burst_of_deliveries_is_answered_first_and_every_event_is_processed_afterwards(tmp_path: Path) -> None:
    rt, _ = runtime_with_shop(tmp_path)
    client = build_web_app(rt).test_client()
    bodies = signed_orders(4)
    deliveries = BUSY_DELIVERIES + 20
    assert not ingest_busy(rt.db)
    started = time.monotonic()
    for n in range(deliveries):
        body, signature = bodies[n % len(bodies)]
        response = client.post("/webhooks/shopify", data=body, headers=headers(signature, f"burst-{uuid.uuid4()}"))
        assert response.status_code == 200 and response.get_json() == {"status": "stored"}
    last_delivery = time.monotonic()
    if last_delivery - started < 0.8:  # a slow machine may not deliver a burst; the rest still holds
        assert ingest_busy(rt.db), "the last BUSY_DELIVERIES deliveries arrived within a second"

    deadline = time.monotonic() + 60
    while True:
        with rt.db.engine.connect() as conn:
            pending = conn.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.processed_at.is_(None)))
            stored = conn.scalar(select(func.count()).select_from(WebhookEvent))
        if pending == 0:
            break
        assert time.monotonic() < deadline, f"{pending} of {stored} events still unprocessed after 60 s"
        time.sleep(0.2)
    assert stored == deliveries
    time.sleep(max(0.0, last_delivery + 1.1 - time.monotonic()))
    assert not ingest_busy(rt.db), "a second after the last delivery the burst is over"
    with rt.db.engine.connect() as conn:
        orders = conn.scalar(select(func.count()).select_from(SalesOrder))
    assert orders == len(bodies), "each distinct order payload became one order"
    rt.executor.shutdown(wait=True)
    rt.db.dispose()


def test_one_process_at_a_time_applies_a_shops_webhooks(tmp_path: Path) -> None:
    crypto.configure_cipher([DEMO_FERNET_KEY])
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", fernet_keys=(DEMO_FERNET_KEY,),
                        secret_key="lock")
    rt = build_runtime(settings)
    with processing_lock(rt.db, tmp_path, 1) as first:
        assert first
        with processing_lock(rt.db, tmp_path, 1) as second:
            assert not second, "a second holder (another worker) must back off"
        with processing_lock(rt.db, tmp_path, 2) as other_shop:
            assert other_shop, "another shop's webhooks are not held up"
    with processing_lock(rt.db, tmp_path, 1) as again:
        assert again, "released when the holder is done"
    rt.db.dispose()


def test_while_another_process_holds_the_shop_deliveries_wait_on_one_retry_then_are_processed(
    tmp_path: Path,
) -> None:
    rt, shop_id = runtime_with_shop(tmp_path)
    client = build_web_app(rt).test_client()
    bodies = signed_orders(2)
    threads_before = threading.active_count()
    with processing_lock(rt.db, tmp_path, shop_id) as held:  # "another worker" is processing this shop
        assert held
        for n in range(40):
            body, signature = bodies[n % len(bodies)]
            assert client.post("/webhooks/shopify", data=body,
                               headers=headers(signature, f"held-{uuid.uuid4()}")).status_code == 200
        # one pending retry (a timer) and the kick thread, not one timer per delivery
        assert threading.active_count() <= threads_before + 5
    deadline = time.monotonic() + 30
    while True:
        with rt.db.engine.connect() as conn:
            pending = conn.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.processed_at.is_(None)))
        if pending == 0:
            break
        assert time.monotonic() < deadline, f"{pending} events still unprocessed after the lock was released"
        time.sleep(0.2)
    rt.executor.shutdown(wait=True)
    rt.db.dispose()
