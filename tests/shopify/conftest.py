"""Fixtures for the Shopify adapter: a sandbox Shopify on loopback and a webhook receiver.

Everything goes over real HTTP: the client talks to the sandbox, the sandbox delivers signed
webhooks to the receiver. Nothing is mocked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from adapters.shopify.client import ShopifyClient
from adapters.shopify.storefront import ShopifyStorefront
from sandbox.shopify.server import SandboxShopify

API_VERSION = "2025-01"  # the version of the reference schema the sandbox validates against


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class WebhookReceiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def sandbox() -> Iterator[SandboxShopify]:
    # a Plus-sized bucket so tests that are not about throttling are not slowed by it
    sb = SandboxShopify(restore_rate=100_000, bucket_size=1000)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def token(sandbox: SandboxShopify) -> str:
    return sandbox.issue_token()


def _make_client(sandbox: SandboxShopify, token: str, **kwargs) -> ShopifyClient:
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("backoff_cap", 0.05)
    kwargs.setdefault("timeout", 5)
    return ShopifyClient(sandbox.default_shop, token, API_VERSION, base_url=sandbox.base_url, **kwargs)


@pytest.fixture
def make_client():
    """``make_client(sandbox, token, **ShopifyClient kwargs)`` with fast test backoffs."""
    return _make_client


@pytest.fixture
def client(sandbox: SandboxShopify, token: str) -> ShopifyClient:
    return _make_client(sandbox, token)


@pytest.fixture
def storefront(client: ShopifyClient) -> ShopifyStorefront:
    return ShopifyStorefront(client, bulk_poll_interval=0.01)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    box = WebhookReceiver()

    def app(environ, start_response):
        request = Request(environ)
        box.received.append(Received(request.get_data(), dict(request.headers)))
        return Response("ok", status=box.status)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    box.url = f"http://127.0.0.1:{server.server_port}/webhooks/shopify"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()
