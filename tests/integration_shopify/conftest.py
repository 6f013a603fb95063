"""An installed Shopify app over real HTTP: the sandbox Shopify on one loopback port, the web
app (``create_app`` + the Shopify blueprint) on another. The sandbox POSTs signed webhooks to
the app, the app calls the sandbox's OAuth and GraphQL endpoints. Nothing is mocked."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from adapters.shopify.gateway import ShopifyAuth, ShopifyGateway
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import Shop
from connector.db.uow import UnitOfWork
from connector.services.shops import shop_access
from connector.services.sync import PullReport, pull_store
from connector.services.webhooks import ProcessReport, process_pending
from connector.web import create_app
from connector.web.shopify_app import (
    ShopifyAppSettings,
    ShopifyExtension,
    init_shopify_app,
    shopify_lifecycle,
)
from sandbox.shopify.server import Delivery, SandboxShopify

API_VERSION = "2025-01"  # the reference schema the sandbox validates every query against
MAX_BYTES = 20_000
# tests/shopify validates every query document against Shopify's schema; here it only costs time
VALIDATE_REAL_SCHEMA = False


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class _NoStore:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"pull_store used the storefront ({name}) of a shop that is not installed")


@dataclass
class Harness:
    sandbox: SandboxShopify
    db: Database
    app: Flask
    url: str
    gateway: ShopifyGateway
    kicks: list[tuple[str, int]] = field(default_factory=list)
    browser: requests.Session = field(default_factory=requests.Session)

    @property
    def shop(self) -> str:
        return self.sandbox.default_shop

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/shopify"

    def install(self) -> int:
        """The merchant installs: our /install → Shopify's consent → our /callback."""
        r = self.browser.get(f"{self.url}/shopify/install", params={"shop": self.shop}, allow_redirects=False)
        assert r.status_code == 302, r.text
        consent = self.browser.get(r.headers["Location"], allow_redirects=False)
        assert consent.status_code == 302, consent.text
        done = self.browser.get(consent.headers["Location"], allow_redirects=False)
        assert done.status_code == 302, done.text
        assert done.headers["Location"] == f"https://{self.shop}/admin/apps/{self.sandbox.api_key}"
        return self.shop_id()

    def callback_params(self) -> dict[str, str]:
        """Start an install and stop at Shopify's redirect back: the callback query."""
        r = self.browser.get(f"{self.url}/shopify/install", params={"shop": self.shop}, allow_redirects=False)
        consent = self.browser.get(r.headers["Location"], allow_redirects=False)
        query = parse_qs(urlsplit(consent.headers["Location"]).query)
        return {k: v[0] for k, v in query.items()}

    def shop_id(self, domain: str | None = None) -> int:
        with UnitOfWork(self.db, readonly=True) as uow:
            found = uow.session.scalar(select(Shop.id).where(Shop.domain == (domain or self.shop)))
            assert found is not None
            return found

    def process(self, shop_id: int) -> ProcessReport:
        return process_pending(self.db, shop_id, self.gateway, datetime.now(UTC))

    def pull(self, shop_id: int) -> PullReport:
        access = shop_access(self.db, shop_id)
        # like the pull job: no client for a shop that is not installed (it has no token)
        storefront = self.gateway.storefront_for(access, self.db) if access.status == "installed" else _NoStore()
        return pull_store(self.db, shop_id, storefront, datetime.now(UTC))

    def send(self, topic: str, payload: dict[str, Any] | bytes, **kwargs: Any) -> Delivery:
        return self.sandbox.deliver_webhook(self.webhook_url, topic, payload, **kwargs)


@pytest.fixture
def sandbox() -> Iterator[SandboxShopify]:
    sb = SandboxShopify(restore_rate=100_000, bucket_size=1000, validate_with_real_schema=VALIDATE_REAL_SCHEMA)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def harness(sandbox: SandboxShopify, db: Database) -> Iterator[Harness]:
    holder: dict[str, Callable[..., Any]] = {}

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    settings = Settings(
        secret_key="integration-secret-key",
        app_url=url,
        shopify_api_key=sandbox.api_key,
        shopify_api_secret=sandbox.api_secret,
        shopify_api_version=API_VERSION,
        webhook_max_bytes=MAX_BYTES,
        demo=True,
    )

    def base_url_for(_shop: str) -> str:
        return sandbox.base_url

    gateway = ShopifyGateway(sandbox.api_key, sandbox.api_secret, API_VERSION, base_url_for, max_bytes=MAX_BYTES,
                             timeout=5, client_options={"backoff_base": 0.01, "backoff_cap": 0.05})
    auth = ShopifyAuth(sandbox.api_key, sandbox.api_secret, API_VERSION, base_url_for, timeout=5)
    extension = ShopifyExtension(
        oauth=auth,
        gateway=gateway,
        settings=ShopifyAppSettings(app_url=url, api_key=sandbox.api_key, scopes=settings.shopify_scopes),
    )
    kicks: list[tuple[str, int]] = []
    app = create_app(settings, db, gateways={"shopify": gateway}, kick=lambda p, s: kicks.append((p, s)),
                     **{"lifecycle.shopify": shopify_lifecycle})
    init_shopify_app(app, extension)
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    h = Harness(sandbox=sandbox, db=db, app=app, url=url, gateway=gateway, kicks=kicks)
    yield h
    h.browser.close()
    server.shutdown()
    server.server_close()


@pytest.fixture
def installed(harness: Harness) -> int:
    """A shop selling past zero: MUG-1 (none on hand, CONTINUE), CAP-1 (2 on hand); installed."""
    harness.sandbox.create_product("Mug", [{"sku": "MUG-1", "price": 1200, "available": 0,
                                            "inventory_policy": "continue"}])
    harness.sandbox.create_product("Cap", [{"sku": "CAP-1", "price": 900, "available": 2,
                                            "inventory_policy": "continue"}])
    return harness.install()
