"""Fixtures: a running sandbox store, a client against it over real HTTP, a webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from adapters.woocommerce.client import WooClient
from adapters.woocommerce.storefront import WooStorefront
from sandbox.woocommerce import SandboxWoo


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP endpoint that records every request; ``answer`` decides the response."""

    answer: Callable[[Received], Response] = lambda r: Response("ok")
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        entry = Received(
            request.method, request.path, dict(request.args), dict(request.headers), request.get_data()
        )
        self.received.append(entry)
        return self.answer(entry)(environ, start_response)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = make_server("127.0.0.1", 0, rec._wsgi, threaded=True, request_handler=_Quiet)
    rec.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sandbox() -> Iterator[SandboxWoo]:
    with SandboxWoo() as store:
        yield store


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sandbox: SandboxWoo, sleeps: list[float]) -> WooClient:
    return WooClient(
        sandbox.base_url, sandbox.consumer_key, sandbox.consumer_secret, timeout=5, sleep=sleeps.append
    )


@pytest.fixture
def storefront(client: WooClient) -> WooStorefront:
    return WooStorefront(client)
