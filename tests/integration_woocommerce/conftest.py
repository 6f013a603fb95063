"""The connector app served over real HTTP next to a sandbox WooCommerce store.

``live`` builds the app with ``create_app`` (the composition a root would do: a ``WooGateway`` in
``gateways``, the blueprint registered) and serves it with werkzeug's threaded server, so the
sandbox delivers real signed webhooks and real wc-auth callbacks to it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from woo_integration_helpers import MAX_BYTES, SECRET_KEY

from adapters.woocommerce.gateway import WooGateway
from connector.config import DEMO_FERNET_KEY, Settings
from connector.db.engine import Database
from connector.db.models import SalesOrder, Shop, Variant, WebhookEvent
from connector.db.uow import UnitOfWork
from connector.services.sync import PullReport, pull_store
from connector.services.webhooks import ProcessReport, process_pending
from connector.services.woo_connect import initial_pull, shop_gateway
from connector.web import create_app
from connector.web.woocommerce_app import register_woocommerce
from sandbox.woocommerce import SandboxWoo


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def _placeholder(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@dataclass
class Live:
    url: str
    db: Database
    gateway: WooGateway
    sandbox: SandboxWoo
    sleeps: list[float]
    kicks: list[tuple[str, int]] = field(default_factory=list)
    app: Any = None

    def pull_now(self, shop_id: int) -> None:
        """The ``woocommerce_pull`` extension of these tests: the initial pull, before the answer
        (deterministic; the default, after-the-response path has its own test)."""
        initial_pull(self.db, self.gateway, shop_id, datetime.now(UTC))

    # ------------------------------------------------------------------ flows

    def connect(self) -> requests.Response:
        """The whole wc-auth dance as a browser does it; returns the final return page."""
        start = requests.get(f"{self.url}/woocommerce/connect", params={"store_url": self.sandbox.base_url},
                             allow_redirects=False, timeout=10)
        assert start.status_code == 302, start.text
        approve = requests.get(start.headers["Location"], allow_redirects=False, timeout=20)
        assert approve.status_code == 302, approve.text
        return requests.get(approve.headers["Location"], timeout=10)

    def shop(self) -> Shop:
        with UnitOfWork(self.db, readonly=True) as uow:
            shop = uow.session.query(Shop).filter_by(platform="woocommerce").one()
            uow.session.expunge(shop)
            return shop

    def shop_id(self) -> int:
        return self.shop().id

    def process(self) -> ProcessReport:
        self.sandbox.wait_for_deliveries()
        shop_id = self.shop_id()
        return process_pending(self.db, shop_id, shop_gateway(self.db, shop_id, self.gateway), datetime.now(UTC))

    def pull(self) -> PullReport:
        shop_id = self.shop_id()
        with UnitOfWork(self.db, shop_id, readonly=True) as uow:
            storefront = self.gateway.storefront_for(uow.shop())
        return pull_store(self.db, shop_id, storefront, datetime.now(UTC))

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}/webhooks/woocommerce", data=body, headers=headers, timeout=10)

    # ------------------------------------------------------------------ reading the database

    def orders(self) -> dict[str, dict[str, Any]]:
        with UnitOfWork(self.db, self.shop_id(), readonly=True) as uow:
            result = {}
            for order in uow.session.query(SalesOrder).all():
                result[order.external_id] = {
                    "state": order.state,
                    "updated_at": order.platform_updated_at,
                    "lines": {ln.sku: (ln.ordered, ln.allocated, ln.backordered, ln.cancelled) for ln in order.lines},
                }
            return result

    def variants(self) -> dict[str, tuple[str | None, bool, str]]:
        with UnitOfWork(self.db, self.shop_id(), readonly=True) as uow:
            return {v.external_id or "": (v.sku, v.backorders_allowed, v.title) for v in uow.session.query(Variant)}

    def events(self) -> list[tuple[str, str, str]]:
        with UnitOfWork(self.db, self.shop_id(), readonly=True) as uow:
            return [(e.topic, e.event_id, e.status) for e in uow.session.query(WebhookEvent).order_by(WebhookEvent.id)]


@pytest.fixture
def sandbox() -> Iterator[SandboxWoo]:
    with SandboxWoo() as store:
        yield store


@pytest.fixture
def live(db: Database, sandbox: SandboxWoo) -> Iterator[Live]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, _placeholder, threaded=True, request_handler=_Quiet)
    url = f"http://127.0.0.1:{server.server_port}"
    sleeps: list[float] = []
    gateway = WooGateway(max_bytes=MAX_BYTES, client_options={"timeout": 5, "sleep": sleeps.append})
    settings = Settings(app_url=url, secret_key=SECRET_KEY, fernet_keys=(DEMO_FERNET_KEY,),
                        webhook_max_bytes=MAX_BYTES, database_url="unused://")
    harness = Live(url=url, db=db, gateway=gateway, sandbox=sandbox, sleeps=sleeps)
    app = create_app(settings, db, gateways={"woocommerce": gateway},
                     kick=lambda platform, shop_id: harness.kicks.append((platform, shop_id)),
                     woocommerce_pull=harness.pull_now)
    register_woocommerce(app)
    harness.app = app
    server.app = app
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield harness
    finally:
        sandbox.stop()  # no more deliveries towards a server going away
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def catalogue(sandbox: SandboxWoo) -> dict[str, Any]:
    """A simple product with 2 on hand that sells past zero, and a variable product."""
    widget = sandbox.create_product("Widget", sku="WIDGET", stock_quantity=2, backorders="notify")
    shirt = sandbox.create_variable_product(
        "Shirt",
        [
            {"options": {"Size": "M"}, "sku": "SHIRT-M", "stock_quantity": 1, "backorders": "notify"},
            {"options": {"Size": "L"}, "sku": "SHIRT-L", "stock_quantity": 0, "backorders": "yes"},
        ],
    )
    return {"widget": widget, "shirt": shirt}
