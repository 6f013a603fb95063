"""The composition root: every collaborator of a running process, built once from settings.

``build_runtime(settings)`` wires the adapters (Shopify, WooCommerce, SMTP, suppliers) into the
services and the jobs; ``build_web_app(runtime)`` builds the Flask app with every blueprint;
``job_context()`` is what Celery workers load (``BACKORDERS_JOB_CONTEXT=bootstrap.runtime:job_context``).
Nothing here runs at import time.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask

from adapters.mail.smtp import SmtpMailer
from adapters.shopify.gateway import ShopifyAuth, ShopifyGateway
from adapters.woocommerce.gateway import WooGateway
from bootstrap.dispatch import build_dispatcher_factory, thirty_day_notice_job
from bootstrap.dispatch_suppliers import dropship_check_job
from bootstrap.webhook_kick import (
    BATCH,
    DEFER_STEP_SECONDS,
    FIRST_LOOK_SECONDS,
    MAX_DEFER_SECONDS,
    RETRY_LOCKED_SECONDS,
    TRICKLE_BATCH,
    ingest_busy,
    processing_lock,
)
from bootstrap.wiring import build_database
from connector.config import Settings, load_settings
from connector.db.engine import Database
from connector.ports import OutboxDispatcher, PlatformGateway, Storefront
from connector.services import shops, webhook_writer
from connector.services.sync import pull_store
from connector.services.webhooks import process_pending
from connector.services.woo_connect import shop_gateway
from jobs.registry import JobContext
from jobs.runner import run_job_for_shop

log = logging.getLogger(__name__)



def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    mailer: SmtpMailer
    shopify: ShopifyGateway | None  # None when no Shopify app credentials are configured
    shopify_auth: ShopifyAuth | None
    woocommerce: WooGateway
    dispatcher_factory: Callable[[int], OutboxDispatcher]
    job_ctx: JobContext
    clock: Callable[[], datetime] = _utcnow
    kick_enabled: bool = True  # the demo processes stored events itself, in a fixed order
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="kick"))
    _kicked: set[int] = field(default_factory=set)
    _kick_lock: threading.Lock = field(default_factory=threading.Lock)

    def storefront_for(self, shop_id: int) -> Storefront | None:
        """The store client of an installed shop (None for manual shops and uninstalled ones)."""
        access = shops.shop_access(self.db, shop_id)
        if access.status != "installed":
            return None
        if access.platform == "shopify" and self.shopify is not None:
            return self.shopify.storefront_for(access, self.db)
        if access.platform == "woocommerce":
            return self.woocommerce.storefront_for(access)
        return None

    def gateway_for(self, shop_id: int) -> PlatformGateway | None:
        platform = shops.shop_access(self.db, shop_id).platform
        if platform == "shopify":
            return self.shopify
        if platform == "woocommerce":
            return shop_gateway(self.db, shop_id, self.woocommerce)  # type: ignore[no-any-return]
        return None

    def process_webhooks(self, shop_id: int, now: datetime | None = None, limit: int = BATCH,
                         should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        gateway = self.gateway_for(shop_id)
        if gateway is None:
            return {"skipped": "no platform"}
        return dataclasses.asdict(process_pending(self.db, shop_id, gateway, now or self.clock(), limit=limit,
                                                  should_stop=should_stop))

    def pull(self, shop_id: int, now: datetime | None = None) -> dict[str, Any]:
        storefront = self.storefront_for(shop_id)
        if storefront is None:
            return {"skipped": "not installed or no platform"}
        return dataclasses.asdict(pull_store(self.db, shop_id, storefront, now or self.clock()))

    def kick(self, platform: str, shop_id: int) -> None:
        """Process a shop's stored webhooks soon after the response (the job is the safety net).

        Coalesced: while a run for the shop is queued, further deliveries add nothing, so a burst
        of 1,000 webhooks costs one or two batch runs, not 1,000. One process at a time runs it,
        and it waits while deliveries pour in (bootstrap.webhook_kick says why and how). Scaled
        out, the run is a Celery task and the web process does no processing at all.
        """
        if not self.kick_enabled:
            return
        with self._kick_lock:
            if shop_id in self._kicked:
                return
            self._kicked.add(shop_id)
        if self.settings.job_backend == "celery":
            try:
                from jobs.celery_app import enqueue_job_for_shop

                enqueue_job_for_shop("process_webhooks", shop_id)
            finally:
                # Celery dedupes nothing here; the per-shop job lock makes extra runs cheap skips.
                threading.Timer(1.0, self._kicked.discard, args=(shop_id,)).start()
            return
        self.executor.submit(self._process_after_delivery, platform, shop_id)

    def _process_after_delivery(self, platform: str, shop_id: int) -> None:
        with self._kick_lock:
            self._kicked.discard(shop_id)  # deliveries from now on queue the next run
        lock_dir = Path(self.settings.scheduler_lock_path).parent
        try:
            with processing_lock(self.db, lock_dir, shop_id) as held:
                if not held:
                    # Another process is at it; it may have read its batch before ours was stored,
                    # so look again in a moment. Until then the shop stays marked as kicked: the
                    # deliveries meanwhile add nothing (one retry timer, not one per delivery).
                    with self._kick_lock:
                        self._kicked.add(shop_id)
                    threading.Timer(RETRY_LOCKED_SECONDS, self._resubmit, args=(platform, shop_id)).start()
                    return
                processed = self._drain(shop_id)
        except Exception:  # noqa: BLE001 - logged; the process_webhooks job retries
            log.exception("processing webhooks of shop %s after a delivery failed", shop_id)
            return
        if processed and not ingest_busy(self.db):
            # What processing queued for the storefront and the customers goes out now rather
            # than at the next deliver_outbox tick (a minute by default): outside the processing
            # lock, under the outbox job's own lock, recorded like any job run.
            run_job_for_shop(self.job_ctx, "deliver_outbox", shop_id, self.clock())

    def _resubmit(self, platform: str, shop_id: int) -> None:
        try:
            self.executor.submit(self._process_after_delivery, platform, shop_id)
        except RuntimeError:  # the executor was shut down: the process is exiting; the job retries
            pass

    def _drain(self, shop_id: int) -> int:
        """Apply the shop's stored webhooks; returns how many were processed."""
        processed = 0
        deferred = 0.0
        # The first delivery of a burst kicks this at once, before the burst shows in
        # ingest_busy; an event's transaction holds SQLite's write lock (~20 ms, ~70 ms in a
        # worker that has not processed one yet), so every delivery behind it waited: after a
        # restart the bench's p99 doubled. A moment's look first lets a burst show itself.
        time.sleep(FIRST_LOOK_SECONDS)
        while True:
            if deferred < MAX_DEFER_SECONDS and ingest_busy(self.db):
                time.sleep(DEFER_STEP_SECONDS)
                deferred += DEFER_STEP_SECONDS
                continue
            if deferred:
                # Waited MAX_DEFER_SECONDS: one small batch so nothing waits for the burst to end.
                report = self.process_webhooks(shop_id, limit=TRICKLE_BATCH)
                limit = TRICKLE_BATCH
            else:
                # Stop between events as soon as a burst starts: each event's transaction holds
                # SQLite's write lock, and a delivery that meets it sleeps in the busy handler.
                report = self.process_webhooks(shop_id, limit=BATCH, should_stop=lambda: ingest_busy(self.db))
                limit = BATCH
            processed += int(report.get("processed", 0))
            if report.get("stopped"):
                continue  # a burst began: wait for it (the loop above)
            if sum(report.get(k, 0) for k in ("processed", "failed", "ignored")) < limit:
                return processed  # nothing more waiting
            deferred = 0.0


def build_runtime(settings: Settings, *, shopify_base_url_for: Callable[[str], str | None] | None = None,
                  clock: Callable[[], datetime] = _utcnow) -> Runtime:
    db = build_database(settings)
    mailer = SmtpMailer(settings.smtp_url)
    shopify: ShopifyGateway | None = None
    auth: ShopifyAuth | None = None
    if settings.shopify_api_key and settings.shopify_api_secret:
        shopify = ShopifyGateway(settings.shopify_api_key, settings.shopify_api_secret, settings.shopify_api_version,
                                 shopify_base_url_for, max_bytes=settings.webhook_max_bytes,
                                 bulk_backfill_orders=settings.shopify_bulk_backfill_orders)
        auth = ShopifyAuth(settings.shopify_api_key, settings.shopify_api_secret, settings.shopify_api_version,
                           shopify_base_url_for)
    else:
        log.info("SHOPIFY_API_KEY/SECRET not set: the Shopify app is disabled")
    woo = WooGateway(max_bytes=settings.webhook_max_bytes, allow_loopback=settings.demo)
    holder: dict[str, Runtime] = {}

    def storefront_for(shop_id: int) -> Storefront | None:
        return holder["rt"].storefront_for(shop_id)

    dispatcher_factory = build_dispatcher_factory(db, settings, storefront_for, mailer, clock=clock)

    def refresh_tokens(ctx: JobContext, shop_id: int, now: datetime) -> dict[str, Any]:
        if shopify is None or shops.shop_access(db, shop_id).platform != "shopify":
            return {"skipped": "no expiring tokens"}
        return {"refreshed": shopify.refresh_if_due(db, shop_id)}

    hooks = {
        "process_webhooks": lambda ctx, shop_id, now: holder["rt"].process_webhooks(shop_id, now),
        "pull_store": lambda ctx, shop_id, now: holder["rt"].pull(shop_id, now),
        "dropship_check": dropship_check_job,
        "refresh_tokens": refresh_tokens,
        "thirty_day_notice": thirty_day_notice_job,
    }
    job_ctx = JobContext(db, settings, dispatcher_factory, hooks, clock=clock)
    rt = Runtime(settings, db, mailer, shopify, auth, woo, dispatcher_factory, job_ctx, clock)
    holder["rt"] = rt
    return rt


def build_web_app(rt: Runtime) -> Flask:
    from connector.web import create_app
    from connector.web.shopify_app import ShopifyAppSettings, ShopifyExtension, init_shopify_app
    from connector.web.woocommerce_app import register_woocommerce

    s = rt.settings
    gateways: dict[str, Any] = {"woocommerce": rt.woocommerce}
    if rt.shopify is not None:
        gateways["shopify"] = rt.shopify
    app = create_app(s, rt.db, gateways=gateways, kick=rt.kick, clock=rt.clock,
                     webhook_writer=webhook_writer.client_for(s, rt.db))
    if rt.shopify is not None and rt.shopify_auth is not None:
        init_shopify_app(app, ShopifyExtension(
            oauth=rt.shopify_auth, gateway=rt.shopify,
            settings=ShopifyAppSettings(app_url=s.app_url.rstrip("/"), api_key=s.shopify_api_key,
                                        scopes=s.shopify_scopes),
        ))
    register_woocommerce(app)
    return app


def job_context() -> JobContext:
    """Entry point for Celery workers and clocks (settings from the environment)."""
    return build_runtime(load_settings()).job_ctx
