"""The WSGI app the load bench runs under gunicorn: ``gunicorn bench.wsgi_bench:app``.

Built from the environment (set by ``bench.load``):

* ``BENCH_WSGI_APP``:

  - ``runtime`` (default): what ``wsgi.py`` serves — ``bootstrap.runtime.build_runtime`` and
    ``build_web_app`` — so each stored delivery also kicks ``process_pending`` on the worker's
    small thread pool after the response, as in production;
  - ``connector``: ``create_app`` with the Shopify webhook gateway only, no kick: the ingest
    path alone (verify, dedupe, store), what the endpoint does before it answers;
  - ``bare``: a bare Flask app whose ``POST /webhooks/<platform>`` reads the body and answers
    200 (the baseline).

  The first two read ``DATABASE_URL``, ``FERNET_KEYS``, ``SECRET_KEY``, ``SHOPIFY_API_KEY``,
  ``SHOPIFY_API_SECRET`` from the environment like ``wsgi.py`` (``.env`` is not read).

All answer ``GET /healthz``. No scheduler is started (``wsgi.py`` does not start one either).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify, request


def _bare() -> Flask:
    bare = Flask(__name__)

    @bare.post("/webhooks/<platform>")
    def receive(platform: str) -> Any:
        request.get_data(cache=False)
        return jsonify(status="stored"), 200

    @bare.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    return bare


def _gateway(api_key: str, api_secret: str, max_bytes: int) -> Any:
    try:
        from adapters.shopify.gateway import ShopifyGateway
    except ImportError:  # the adapter's gateway not there (yet): the minimum the endpoint needs
        return _MinimalShopifyGateway(api_secret, max_bytes)
    return ShopifyGateway(api_key, api_secret, max_bytes=max_bytes)


class _MinimalShopifyGateway:
    platform = "shopify"

    def __init__(self, secret: str, max_bytes: int) -> None:
        self._secret = secret
        self._max_bytes = max_bytes

    def shop_key(self, headers: Any) -> str | None:
        value = headers.get("X-Shopify-Shop-Domain")
        return value.strip().lower() if value else None

    def verify(self, raw_body: bytes, headers: Any, secret: str | None) -> Any:
        from adapters.shopify.webhooks import verify_webhook
        from connector.ports import VerifiedDelivery

        d = verify_webhook(raw_body, headers, self._secret, self._max_bytes)
        raw_id = d.payload.get("id")
        return VerifiedDelivery(platform="shopify", topic=d.topic, shop_key=d.shop_domain,
                                event_id=(d.event_id or d.webhook_id)[:128], payload=d.payload,
                                resource_id=str(raw_id) if raw_id is not None else None)

    def translate(self, topic: str, payload: dict[str, Any]) -> list[object]:
        return []


def _connector() -> Flask:
    from bootstrap.wiring import build_database
    from connector.config import load_settings
    from connector.services.webhook_writer import client_for
    from connector.web import create_app

    settings = load_settings(dotenv_path=None)
    gateway = _gateway(settings.shopify_api_key, settings.shopify_api_secret, settings.webhook_max_bytes)
    db = build_database(settings)
    return create_app(settings, db, gateways={"shopify": gateway}, webhook_writer=client_for(settings, db))


def _runtime() -> Flask:
    from bootstrap.runtime import build_runtime, build_web_app
    from connector.config import load_settings

    return build_web_app(build_runtime(load_settings(dotenv_path=None)))


def build() -> Flask:
    kind = os.environ.get("BENCH_WSGI_APP", "runtime")
    if kind == "bare":
        return _bare()
    if kind == "connector":
        return _connector()
    if kind == "runtime":
        return _runtime()
    raise SystemExit(f"BENCH_WSGI_APP must be 'runtime', 'connector' or 'bare', not {kind!r}")


app = build()
