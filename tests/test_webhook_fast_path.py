"""The webhook fast path: the ordinary delivery is answered below Flask, everything else by the
Flask view, with the same answers as before. Real HTTP (a threaded werkzeug server), the real
Shopify gateway and signatures, a real database (SQLite, and PostgreSQL when configured).

How a test tells who answered: ``WebhookFastPath.answered`` counts the fast path's answers,
and Flask's ``request_started`` signal fires only for requests that reached the Flask app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from flask import Flask, request_started
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from werkzeug.serving import WSGIRequestHandler, make_server

from adapters.shopify.gateway import ShopifyAuth, ShopifyGateway
from connector.config import Settings
from connector.db.engine import Database
from connector.db.models import Shop, WebhookEvent
from connector.web import create_app
from connector.web.shopify_app import ShopifyAppSettings, ShopifyExtension, init_shopify_app
from connector.web.webhook_fast_path import WebhookFastPath, WsgiHeaders

SHOP = "fast.myshopify.com"
KEY, SECRET = "fast-key", "shpss_fast00000000000000000000000000000000"
MAX_BYTES = 20_000
BODY = json.dumps({"id": 450789469, "updated_at": "2026-03-02T07:59:00Z", "line_items": []}).encode()


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Endpoint:
    def __init__(self, app: Flask, url: str, db: Database, shop_id: int) -> None:
        self.app, self.url, self.db, self.shop_id = app, url, db, shop_id
        self.flask_requests = 0
        request_started.connect(self._started, app)

    def _started(self, _sender: Any, **_kw: Any) -> None:
        self.flask_requests += 1

    @property
    def fast(self) -> WebhookFastPath:
        fast = self.app.wsgi_app
        assert isinstance(fast, WebhookFastPath)
        return fast

    def post(self, body: Any = BODY, *, event_id: str = "ev-1", topic: str = "orders/create",
             path: str = "/webhooks/shopify", **headers: str | None) -> requests.Response:
        raw = body if isinstance(body, bytes) else None
        sent = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(raw) if raw is not None else None,
            "X-Shopify-Shop-Domain": SHOP,
            "X-Shopify-Webhook-Id": event_id,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": "2026-03-02T08:00:00Z",
        }
        sent.update({name.replace("_", "-"): value for name, value in headers.items()})
        return requests.post(self.url + path, data=body, timeout=10,
                             headers={k: v for k, v in sent.items() if v is not None})

    def rows(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def endpoint(db: Database) -> Iterator[Endpoint]:
    with db.engine.begin() as conn:
        shop_id = int(conn.execute(Shop.__table__.insert().values(  # type: ignore[attr-defined]
            platform="shopify", domain=SHOP, name="Fast", status="installed", scopes="", timezone="UTC",
            currency="USD", settings={}, po_sequence=0, forward_sequence=0, created_at=datetime.now(UTC),
        )).inserted_primary_key[0])
    settings = Settings(secret_key="fast-secret", shopify_api_key=KEY, shopify_api_secret=SECRET,
                        webhook_max_bytes=MAX_BYTES, webhook_writer=False, demo=True)
    gateway = ShopifyGateway(KEY, SECRET, max_bytes=MAX_BYTES)
    app = create_app(settings, db, gateways={"shopify": gateway})
    init_shopify_app(app, ShopifyExtension(  # the lifecycle hook (uninstall, privacy), as in production
        oauth=ShopifyAuth(KEY, SECRET), gateway=gateway,
        settings=ShopifyAppSettings(app_url="http://127.0.0.1", api_key=KEY, scopes="read_orders"),
    ))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Endpoint(app, f"http://127.0.0.1:{server.server_port}", db, shop_id)
    finally:
        server.shutdown()
        server.server_close()


def test_an_ordinary_delivery_is_stored_below_flask_and_a_replay_once(endpoint: Endpoint) -> None:
    first = endpoint.post(event_id="ev-1")
    again = endpoint.post(event_id="ev-1")
    other = endpoint.post(event_id="ev-2")
    assert (first.status_code, first.json()) == (200, {"status": "stored"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    assert (other.status_code, other.json()) == (200, {"status": "stored"})
    assert first.headers["Content-Type"] == "application/json"
    assert (endpoint.fast.answered, endpoint.flask_requests) == (3, 0)
    with endpoint.db.engine.connect() as conn:
        stored = conn.execute(select(WebhookEvent.event_id, WebhookEvent.payload, WebhookEvent.resource_id,
                                     WebhookEvent.status).order_by(WebhookEvent.id)).all()
    assert [tuple(r) for r in stored] == [("ev-1", BODY.decode(), "450789469", "pending"),
                                          ("ev-2", BODY.decode(), "450789469", "pending")]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("wrong signature", 401, "bad_signature"),
        ("no signature", 401, "bad_signature"),
        ("malformed JSON", 400, "invalid"),
        ("a JSON array", 400, "invalid"),
        ("no topic header", 400, "invalid"),
        ("no shop header", 400, "missing_headers"),
        ("an unknown store", 404, "unknown_shop"),
        ("too large", 413, "too_large"),
        ("unknown platform", 404, "unknown_platform"),
    ],
)
def test_every_refusal_is_the_views_as_before(endpoint: Endpoint, case: str, status: int, code: str) -> None:
    if case == "wrong signature":
        r = endpoint.post(X_Shopify_Hmac_Sha256=sign(b"another body"))
    elif case == "no signature":
        r = endpoint.post(X_Shopify_Hmac_Sha256="")
    elif case == "malformed JSON":
        r = endpoint.post(b'{"id": 1,')
    elif case == "a JSON array":
        r = endpoint.post(b"[1, 2]")
    elif case == "no topic header":
        r = endpoint.post(X_Shopify_Topic="")
    elif case == "no shop header":
        r = endpoint.post(X_Shopify_Shop_Domain="")
    elif case == "an unknown store":
        r = endpoint.post(X_Shopify_Shop_Domain="stranger.myshopify.com")
    elif case == "too large":
        r = endpoint.post(b'{"pad": "' + b"x" * MAX_BYTES + b'"}')
    else:
        r = endpoint.post(path="/webhooks/magento")
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    assert (endpoint.fast.answered, endpoint.flask_requests, endpoint.rows()) == (0, 1, 0)


def test_a_store_that_is_not_installed_is_ignored_by_the_view(endpoint: Endpoint) -> None:
    with endpoint.db.engine.begin() as conn:
        conn.execute(update(Shop).where(Shop.id == endpoint.shop_id).values(status="uninstalled"))
    r = endpoint.post()
    assert (r.status_code, r.json()) == (200, {"status": "ignored", "reason": "store is uninstalled"})
    assert (endpoint.fast.answered, endpoint.flask_requests, endpoint.rows()) == (0, 1, 0)


def test_a_lifecycle_topic_goes_to_its_hook(endpoint: Endpoint) -> None:
    assert endpoint.post(event_id="ev-order").json() == {"status": "stored"}  # the lookup now caches the store
    r = endpoint.post(b'{"id": 1}', event_id="ev-uninstall", topic="app/uninstalled")
    assert (r.status_code, r.json()) == (200, {"status": "uninstalled"})
    assert (endpoint.fast.answered, endpoint.flask_requests) == (1, 1)
    with endpoint.db.engine.connect() as conn:
        assert conn.scalar(select(Shop.status).where(Shop.id == endpoint.shop_id)) == "uninstalled"
    # the hook forgot the cached status: the next order is ignored at once, not stored
    late = endpoint.post(event_id="ev-late")
    assert late.json() == {"status": "ignored", "reason": "store is uninstalled"}
    assert endpoint.rows() == 1


def test_a_body_without_content_length_is_stored_by_the_view(endpoint: Endpoint) -> None:
    r = endpoint.post(iter([BODY[:10], BODY[10:]]), X_Shopify_Hmac_Sha256=sign(BODY))  # sent chunked
    assert (r.status_code, r.json()) == (200, {"status": "stored"})
    assert (endpoint.fast.answered, endpoint.flask_requests, endpoint.rows()) == (0, 1, 1)


def test_other_methods_and_paths_are_flasks(endpoint: Endpoint) -> None:
    assert requests.get(f"{endpoint.url}/webhooks/shopify", timeout=10).status_code == 405
    assert endpoint.post(path="/webhooks/shopify/extra").status_code == 404
    assert requests.get(f"{endpoint.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert (endpoint.fast.answered, endpoint.flask_requests, endpoint.rows()) == (0, 3, 0)


def test_a_failed_store_is_a_500_that_the_platforms_retry_stores(endpoint: Endpoint,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    endpoint.post(event_id="ev-warm")  # the shop is cached: the lookup does not meet the broken table
    with endpoint.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE webhook_events RENAME TO webhook_events_away"))
    try:
        failed = endpoint.post(event_id="ev-retried")
    finally:
        with endpoint.db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE webhook_events_away RENAME TO webhook_events"))
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "not_stored"
    assert "delivery ev-retried of store fast.myshopify.com could not be stored" in caplog.text
    retried = endpoint.post(event_id="ev-retried")
    assert (retried.status_code, retried.json()) == (200, {"status": "stored"})
    assert endpoint.rows() == 2


def test_under_test_a_failed_store_raises_as_flask_would(endpoint: Endpoint) -> None:
    endpoint.app.testing = True
    endpoint.post(event_id="ev-warm")
    with endpoint.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE webhook_events RENAME TO webhook_events_away"))
    try:
        with pytest.raises(DBAPIError):
            endpoint.app.test_client().post("/webhooks/shopify", data=BODY, headers={
                "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": sign(BODY),
                "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": "ev-x", "X-Shopify-Event-Id": "ev-x"})
    finally:
        with endpoint.db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE webhook_events_away RENAME TO webhook_events"))


def test_wsgi_headers_read_the_environ_case_insensitively() -> None:
    headers = WsgiHeaders({"HTTP_X_SHOPIFY_TOPIC": "orders/create", "CONTENT_TYPE": "application/json",
                           "CONTENT_LENGTH": "12", "PATH_INFO": "/webhooks/shopify"})
    assert headers.get("X-Shopify-Topic") == headers.get("x-shopify-topic") == "orders/create"
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("X-Shopify-Event-Id") is None
    assert headers.get("X-Shopify-Event-Id", "none") == "none"
    assert sorted(headers.items()) == [("Content-Length", "12"), ("Content-Type", "application/json"),
                                       ("X-Shopify-Topic", "orders/create")]
