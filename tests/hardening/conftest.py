"""Fixtures of the hardening suite: the real web app over loopback HTTP next to the sandbox
Shopify (as in tests/integration_shopify, kept self-contained here so this directory can be run
alone), plus read-back helpers."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
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
from sandbox.shopify.server import SandboxShopify

API_VERSION = "2025-01"
MAX_BYTES = 20_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow hardening variants run only when asked (``-m slow`` or HARDENING_SLOW=1)."""
    if os.environ.get("HARDENING_SLOW") == "1" or "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="slow hardening variant: run with -m slow or HARDENING_SLOW=1")
    for item in items:
        if "hardening" in str(item.fspath) and item.get_closest_marker("slow"):
            item.add_marker(skip)


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class ShopifyHarness:
    sandbox: SandboxShopify
    db: Database
    url: str
    gateway: ShopifyGateway
    settings: Settings
    kicks: list[tuple[str, int]] = field(default_factory=list)
    browser: requests.Session = field(default_factory=requests.Session)

    @property
    def shop(self) -> str:
        return self.sandbox.default_shop

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/shopify"

    def install(self) -> int:
        r = self.browser.get(f"{self.url}/shopify/install", params={"shop": self.shop}, allow_redirects=False)
        assert r.status_code == 302, r.text
        consent = self.browser.get(r.headers["Location"], allow_redirects=False)
        assert consent.status_code == 302, consent.text
        done = self.browser.get(consent.headers["Location"], allow_redirects=False)
        assert done.status_code == 302, done.text
        with UnitOfWork(self.db, readonly=True) as uow:
            found = uow.session.scalar(select(Shop.id).where(Shop.domain == self.shop))
        assert found is not None
        return found

    def process(self, shop_id: int) -> ProcessReport:
        return process_pending(self.db, shop_id, self.gateway, datetime.now(UTC))

    def process_all(self, shop_id: int) -> int:
        total = 0
        while True:
            report = self.process(shop_id)
            assert report.failed == 0, report
            done = report.processed + report.ignored
            total += done
            if done == 0:
                return total

    def pull(self, shop_id: int) -> PullReport:
        return pull_store(self.db, shop_id, self.storefront(shop_id), datetime.now(UTC))

    def storefront(self, shop_id: int) -> Any:
        return self.gateway.storefront_for(shop_access(self.db, shop_id), self.db)


@pytest.fixture
def sandbox() -> Iterator[SandboxShopify]:
    sb = SandboxShopify(restore_rate=100_000, bucket_size=100_000, validate_with_real_schema=False)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def shopify(sandbox: SandboxShopify, db: Database) -> Iterator[ShopifyHarness]:
    holder: dict[str, Callable[..., Any]] = {}

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    settings = Settings(
        secret_key="hardening-secret-key",
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
                             timeout=2, client_options={"backoff_base": 0.01, "backoff_cap": 0.05})
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
    h = ShopifyHarness(sandbox=sandbox, db=db, url=url, gateway=gateway, settings=settings, kicks=kicks)
    yield h
    h.browser.close()
    server.shutdown()
    server.server_close()


# ------------------------------------------------------------------------------------------------
# WooCommerce: the app next to the sandbox WooCommerce (as tests/integration_woocommerce/conftest)
# ------------------------------------------------------------------------------------------------


@dataclass
class WooHarness:
    url: str
    db: Database
    gateway: Any
    sandbox: Any
    sleeps: list[float]

    def connect(self) -> requests.Response:
        start = requests.get(f"{self.url}/woocommerce/connect", params={"store_url": self.sandbox.base_url},
                             allow_redirects=False, timeout=10)
        assert start.status_code == 302, start.text
        approve = requests.get(start.headers["Location"], allow_redirects=False, timeout=20)
        assert approve.status_code == 302, approve.text
        return requests.get(approve.headers["Location"], timeout=10)

    def shop_id(self) -> int:
        with UnitOfWork(self.db, readonly=True) as uow:
            found = uow.session.scalar(select(Shop.id).where(Shop.platform == "woocommerce"))
        assert found is not None
        return found

    def pull(self) -> PullReport:
        shop_id = self.shop_id()
        with UnitOfWork(self.db, shop_id, readonly=True) as uow:
            storefront = self.gateway.storefront_for(uow.shop())
        return pull_store(self.db, shop_id, storefront, datetime.now(UTC))


@pytest.fixture
def woo(db: Database) -> Iterator[WooHarness]:
    from adapters.woocommerce.gateway import WooGateway
    from connector.config import DEMO_FERNET_KEY
    from connector.web.woocommerce_app import register_woocommerce
    from sandbox.woocommerce import SandboxWoo

    sandbox = SandboxWoo()
    sandbox.start()
    holder: dict[str, Callable[..., Any]] = {}

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    sleeps: list[float] = []
    gateway = WooGateway(max_bytes=64_000, client_options={"timeout": 5, "sleep": sleeps.append})
    settings = Settings(app_url=url, secret_key="hardening-secret-key", fernet_keys=(DEMO_FERNET_KEY,),
                        webhook_max_bytes=64_000, database_url="unused://")
    # no initial pull at connect: the chaos test pulls by itself
    app = create_app(settings, db, gateways={"woocommerce": gateway}, kick=lambda p, s: None,
                     woocommerce_pull=lambda shop_id: None)
    register_woocommerce(app)
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield WooHarness(url=url, db=db, gateway=gateway, sandbox=sandbox, sleeps=sleeps)
    finally:
        sandbox.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
