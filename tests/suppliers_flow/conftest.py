"""Fixtures of the supplier flow: a real SMTP sink and a supplier's HTTP endpoint on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flow_support import SupplierApi
from werkzeug.serving import make_server

from adapters.mail.sink import SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def supplier_api() -> Iterator[SupplierApi]:
    api = SupplierApi()
    server = make_server("127.0.0.1", 0, api, threaded=True)
    api.url = f"http://127.0.0.1:{server.server_port}/orders"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
