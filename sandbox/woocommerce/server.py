"""SandboxWoo: an emulated WooCommerce REST API v3 served over loopback HTTP.

Enough of WooCommerce for the adapter, the tests and the demo: Basic-auth key checks, list
pagination headers, ``modified_after`` with ``dates_are_gmt``, batch endpoints with the 100-object
limit (413, as WooCommerce answers), order notes, webhooks (signed deliveries, the unsigned
creation ping, disabling after 5 failures), the ``/wc-auth/v1/authorize`` key flow condensed into
one auto-approved GET, and injectable host faults (429/503 with ``Retry-After``, latency, and
dropped connections: the socket closed without an answer, before or after the request was
applied, as a crashing PHP worker or a restarting proxy does).

Not emulated: OAuth1 over plain http (real stores demand it there; the adapter sends Basic auth
over loopback, see ``adapters.woocommerce.client``), customers, coupons, refunds, taxes, HPOS
differences, the login/approval pages of wc-auth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import math
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from .store import RestError, WooStore, invalid_param

API = "/wp-json/wc/v3"
BATCH_LIMIT = 100
USER_AGENT = "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"

_URLS = Map(
    [
        Rule(f"{API}/products", endpoint="products", methods=["GET", "POST"]),
        Rule(f"{API}/products/batch", endpoint="products_batch", methods=["POST", "PUT", "PATCH"]),
        Rule(
            f"{API}/products/<int:product_id>", endpoint="product", methods=["GET", "PUT", "PATCH", "DELETE"]
        ),
        Rule(f"{API}/products/<int:product_id>/variations", endpoint="variations", methods=["GET", "POST"]),
        Rule(
            f"{API}/products/<int:product_id>/variations/batch",
            endpoint="variations_batch",
            methods=["POST", "PUT", "PATCH"],
        ),
        Rule(
            f"{API}/products/<int:product_id>/variations/<int:variation_id>",
            endpoint="variation",
            methods=["GET", "PUT", "PATCH"],
        ),
        Rule(f"{API}/orders", endpoint="orders", methods=["GET", "POST"]),
        Rule(f"{API}/orders/batch", endpoint="orders_batch", methods=["POST", "PUT", "PATCH"]),
        Rule(f"{API}/orders/<int:order_id>", endpoint="order", methods=["GET", "PUT", "PATCH", "DELETE"]),
        Rule(f"{API}/orders/<int:order_id>/notes", endpoint="notes", methods=["GET", "POST"]),
        Rule(f"{API}/orders/<int:order_id>/refunds", endpoint="refunds", methods=["GET", "POST"]),
        Rule(f"{API}/webhooks", endpoint="webhooks", methods=["GET", "POST"]),
        Rule(f"{API}/webhooks/<int:hook_id>", endpoint="webhook", methods=["GET", "PUT", "PATCH", "DELETE"]),
    ]
)

_HTML_404 = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Page not found &#8211; Sandbox Store</title>'
    '</head><body class="error404"><h1>Oops! That page can&rsquo;t be found.</h1></body></html>'
)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int = 0
    dropped: bool = False  # the connection was closed without an answer (``drop_next``)


@dataclass
class Delivery:
    webhook_id: int
    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None  # None: connection failed
    ping: bool = False


@dataclass
class _Fault:
    status: int | None = None
    retry_after: str | None = None
    latency: float = 0.0
    drop: str | None = None  # "before" or "after" the request is applied


@dataclass
class ApiKey:
    key_id: int
    user_id: int
    secret: str
    permissions: str  # read | write | read_write
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # the request log lives on SandboxWoo
        pass


class SandboxWoo(WooStore):
    """One emulated store. ``start()`` serves it on 127.0.0.1 and returns its base URL."""

    def __init__(
        self,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        *,
        rest_api_enabled: bool = True,
        deliver_webhooks: bool = True,
        auth_approves: bool = True,
        strips_authorization_header: bool = False,
        **store_options: Any,
    ) -> None:
        super().__init__(**store_options)
        self.consumer_key = consumer_key or "ck_" + secrets.token_hex(20)
        self.consumer_secret = consumer_secret or "cs_" + secrets.token_hex(20)
        self.keys: dict[str, ApiKey] = {
            self.consumer_key: ApiKey(
                key_id=1,
                user_id=1,
                secret=self.consumer_secret,
                permissions="read_write",
                description="sandbox admin key",
            ),
        }
        self.rest_api_enabled = rest_api_enabled
        self.deliver_webhooks = deliver_webhooks
        self.auth_approves = auth_approves
        self.strips_authorization_header = strips_authorization_header  # Apache + FastCGI behaviour
        self.request_log: list[LoggedRequest] = []
        self.deliveries: list[Delivery] = []
        self._faults: list[_Fault] = []
        self._next_delivery_id = 0
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        # Changes made through the REST API deliver their webhooks from a worker thread, as
        # WooCommerce's action scheduler does; admin helpers deliver synchronously.
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._in_request = threading.local()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        if self._server is not None:
            return self.base_url
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="sandbox-woo", daemon=True
        )
        self._thread.start()
        self._worker = threading.Thread(target=self._deliver_queued, name="sandbox-woo-webhooks", daemon=True)
        self._worker.start()
        return self.base_url

    def stop(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxWoo:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ counters and faults

    @property
    def requests_served(self) -> int:
        return len(self.request_log)

    def requests_to(self, path_prefix: str = "", method: str | None = None) -> list[LoggedRequest]:
        """Logged requests whose path (after ``/wp-json/wc/v3/``) starts with ``path_prefix``."""
        prefix = f"{API}/{path_prefix.lstrip('/')}" if not path_prefix.startswith("/") else path_prefix
        with self._lock:
            return [
                r
                for r in self.request_log
                if r.path.startswith(prefix) and (method is None or r.method == method)
            ]

    def reset_counters(self) -> None:
        with self._lock:
            self.request_log.clear()
            self.deliveries.clear()

    def fail_next(self, count: int, status: int = 429, retry_after: str | None = "1") -> None:
        """The next ``count`` requests get ``status`` (a host's HTML page) with ``Retry-After``."""
        with self._lock:
            self._faults.extend(_Fault(status=status, retry_after=retry_after) for _ in range(count))

    def drop_next(self, count: int, *, after_apply: bool = False, skip: int = 0) -> None:
        """After ``skip`` requests answered normally, the next ``count`` connections are closed
        without an answer: before anything is done, or (``after_apply``) once the request was
        applied, so the client cannot know whether it was."""
        with self._lock:
            self._faults.extend(_Fault() for _ in range(skip))
            self._faults.extend(_Fault(drop="after" if after_apply else "before") for _ in range(count))

    @property
    def connections_dropped(self) -> int:
        with self._lock:
            return sum(1 for r in self.request_log if r.dropped)

    def slow_next(self, count: int, seconds: float) -> None:
        with self._lock:
            self._faults.extend(_Fault(latency=seconds) for _ in range(count))

    # ------------------------------------------------------------------ webhooks (delivery)

    def fire_webhook(self, topic: str, resource_id: int) -> list[Delivery]:
        """Deliver ``topic`` for a resource now, as WooCommerce's action scheduler would."""
        with self._lock:
            self._events.append((topic, resource_id))
        return self._dispatch()

    def webhook_secret(self, hook_id: int) -> str:
        with self._lock:
            return html.unescape(self._webhook_secrets[hook_id])

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until webhooks queued by REST-triggered changes have been delivered."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._queue.unfinished_tasks:
            raise TimeoutError(f"{self._queue.unfinished_tasks} webhook deliveries still pending")

    def _after_change(self) -> None:
        self._dispatch(background=getattr(self._in_request, "active", False))

    def _deliver_queued(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._deliver(*job)
            finally:
                self._queue.task_done()

    def _dispatch(self, background: bool = False) -> list[Delivery]:
        with self._lock:
            events, self._events = self._events, []
            if not self.deliver_webhooks:
                return []
            jobs = []
            for topic, resource_id in events:
                resource, _, event = topic.partition(".")
                for hook in self.webhooks.values():
                    if hook["topic"] != topic or hook["status"] != "active":
                        continue
                    payload = self._webhook_payload(resource, event, resource_id)
                    if payload is None:
                        continue
                    self._next_delivery_id += 1
                    jobs.append(
                        (
                            hook["id"],
                            topic,
                            hook["delivery_url"],
                            self._webhook_secrets[hook["id"]],
                            resource,
                            event,
                            payload,
                            self._next_delivery_id,
                        )
                    )
        if background and self._worker is not None:
            for job in jobs:
                self._queue.put(job)
            return []
        return [self._deliver(*job) for job in jobs]

    def _webhook_payload(self, resource: str, event: str, resource_id: int) -> dict[str, Any] | None:
        if event == "deleted":
            return {"id": resource_id}
        source = {"order": self.orders, "product": self.products}.get(resource, {})
        obj = source.get(resource_id)
        return None if obj is None else json.loads(json.dumps(obj))

    def _deliver(
        self,
        hook_id: int,
        topic: str,
        url: str,
        stored_secret: str,
        resource: str,
        event: str,
        payload: dict[str, Any],
        delivery_id: int,
    ) -> Delivery:
        # wp_json_encode escapes "/" and non-ASCII: signatures must be checked on the raw bytes.
        body = json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode("ascii")
        key = html.unescape(stored_secret).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-WC-Webhook-Source": self.base_url + "/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode(),
            "X-WC-Webhook-ID": str(hook_id),
            "X-WC-Webhook-Delivery-ID": str(delivery_id),
        }
        return self._post_delivery(Delivery(hook_id, topic, url, body, headers, None))

    def _ping(self, hook_id: int, url: str) -> Delivery:
        body = f"webhook_id={hook_id}".encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT}
        return self._post_delivery(Delivery(hook_id, "ping", url, body, headers, None, ping=True))

    def _post_delivery(self, delivery: Delivery) -> Delivery:
        try:
            response = requests.post(
                delivery.url, data=delivery.body, headers=delivery.headers, timeout=5, allow_redirects=False
            )
            delivery.status = response.status_code
        except requests.RequestException:
            delivery.status = None
        with self._lock:
            self.deliveries.append(delivery)
            if delivery.ping:
                return delivery
            ok = delivery.status is not None and 200 <= delivery.status < 300
            failures = 0 if ok else self._webhook_failures.get(delivery.webhook_id, 0) + 1
            self._webhook_failures[delivery.webhook_id] = failures
            hook = self.webhooks.get(delivery.webhook_id)
            if hook is not None and failures >= 5:
                hook["status"] = "disabled"
        return delivery

    # ------------------------------------------------------------------ HTTP

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        entry = LoggedRequest(request.method, request.path, dict(request.args))
        with self._lock:
            self.request_log.append(entry)
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None and fault.drop == "before":
            return self._drop(environ, start_response, entry)
        self._in_request.active = True
        try:
            response = self._respond(request, fault)
        except Exception as error:  # a sandbox bug must still answer, like PHP's fatal-error page
            response = _json(
                {"code": "internal_server_error", "message": repr(error), "data": {"status": 500}}, 500
            )
        finally:
            self._in_request.active = False
        if fault is not None and fault.drop == "after":
            return self._drop(environ, start_response, entry)
        entry.status = response.status_code
        return response(environ, start_response)

    @staticmethod
    def _drop(environ: dict[str, Any], start_response: Callable[..., Any], entry: LoggedRequest) -> list[bytes]:
        """Close the connection unanswered; the client sees it closed (``dropped`` in the log).

        The status line is then written to the shut socket: the server sees a broken pipe and
        drops the connection quietly, as for a client that went away.
        """
        entry.dropped = True
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return []

    def _respond(self, request: Request, fault: _Fault | None) -> Response:
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                return Response(
                    f"<html><body><h1>{fault.status}</h1>Please slow down.</body></html>",
                    status=fault.status,
                    headers=headers,
                    mimetype="text/html",
                )
        if not self.rest_api_enabled:
            return Response(_HTML_404, status=404, mimetype="text/html")
        if request.path.rstrip("/") == "/wc-auth/v1/authorize":
            return self._authorize(request)
        if not request.path.startswith(API + "/"):
            return Response(_HTML_404, status=404, mimetype="text/html")
        try:
            self._authenticate(request)
            try:
                endpoint, args = _URLS.bind_to_environ(request.environ).match()
            except (NotFound, MethodNotAllowed):
                raise RestError(
                    404, "rest_no_route", "No route was found matching the URL and request method."
                ) from None
            body = self._body(request)
            result = getattr(self, f"_ep_{endpoint}")(request, body, **args)
        except RestError as error:
            return _json(error.body(), error.status)
        if isinstance(result, Response):
            return result
        return _json(
            result,
            201
            if request.method == "POST"
            and endpoint in ("products", "variations", "orders", "notes", "refunds", "webhooks")
            else 200,
        )

    def _authenticate(self, request: Request) -> ApiKey:
        auth = None if self.strips_authorization_header else request.authorization
        if auth is not None and auth.type == "basic":
            ck, cs = auth.username, auth.password
        else:
            ck, cs = request.args.get("consumer_key"), request.args.get("consumer_secret")
        if not ck:
            raise RestError(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        key = self.keys.get(ck)
        if key is None:
            raise RestError(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if not cs or not hmac.compare_digest(key.secret.encode(), cs.encode()):
            raise RestError(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
        writing = request.method not in ("GET", "HEAD", "OPTIONS")
        if writing and key.permissions == "read" or not writing and key.permissions == "write":
            raise RestError(
                401,
                "woocommerce_rest_authentication_error",
                f"The API key provided does not have {'write' if writing else 'read'} permissions.",
            )
        return key

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        if request.method in ("GET", "DELETE", "HEAD"):
            return {}
        raw = request.get_data()
        if not raw:
            return dict(request.form)
        if request.mimetype == "application/x-www-form-urlencoded":
            return dict(request.form)
        try:
            body = json.loads(raw)
        except ValueError:
            raise RestError(400, "rest_invalid_json", "Invalid JSON body passed.") from None
        if not isinstance(body, dict):
            raise RestError(400, "rest_invalid_json", "Invalid JSON body passed.")
        return body

    def _page(self, request: Request, rows: list[dict[str, Any]]) -> Response:
        per_page = _int_arg(request, "per_page", 10, 1, 100)
        page = _int_arg(request, "page", 1, 1, None)
        total = len(rows)
        pages = math.ceil(total / per_page)
        start = (page - 1) * per_page
        response = _json(rows[start : start + per_page], 200)
        response.headers["X-WP-Total"] = str(total)
        response.headers["X-WP-TotalPages"] = str(pages)
        link_args = {
            k: v for k, v in request.args.items() if k not in ("page", "consumer_key", "consumer_secret")
        }
        links = []
        if page > 1:
            links.append(
                f'<{self.base_url}{request.path}?{urlencode({**link_args, "page": page - 1})}>; rel="prev"'
            )
        if page < pages:
            links.append(
                f'<{self.base_url}{request.path}?{urlencode({**link_args, "page": page + 1})}>; rel="next"'
            )
        if links:
            response.headers["Link"] = ", ".join(links)
        return response

    def _batch(
        self,
        body: dict[str, Any],
        create: Callable[[dict[str, Any]], dict[str, Any]],
        update: Callable[[dict[str, Any]], dict[str, Any]],
        delete: Callable[[int], dict[str, Any]],
    ) -> dict[str, list[Any]]:
        total = sum(len(body.get(kind) or []) for kind in ("create", "update", "delete"))
        if total > BATCH_LIMIT:
            raise RestError(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {BATCH_LIMIT} items for this request.",
            )
        result: dict[str, list[Any]] = {}
        handlers: tuple[tuple[str, Callable[[Any], dict[str, Any]]], ...] = (
            ("create", create),
            ("update", update),
            ("delete", delete),
        )
        for kind, handler in handlers:
            if kind not in body:
                continue
            result[kind] = []
            for item in body.get(kind) or []:
                ident = item.get("id", 0) if isinstance(item, dict) else item
                try:
                    if kind == "delete":
                        result[kind].append(handler(int(ident)))
                    elif kind == "update" and not (isinstance(item, dict) and item.get("id")):
                        raise RestError(400, "woocommerce_rest_invalid_id", "ID is invalid.")
                    else:
                        result[kind].append(handler(item))
                except (RestError, TypeError, ValueError) as error:
                    err = (
                        error
                        if isinstance(error, RestError)
                        else RestError(400, "woocommerce_rest_invalid", str(error))
                    )
                    result[kind].append(
                        {
                            "id": ident if isinstance(ident, int) else 0,
                            "error": {
                                "code": err.code,
                                "message": err.message,
                                "data": {"status": err.status},
                            },
                        }
                    )
        return result

    # ------------------------------------------------------------------ endpoints: products

    def _ep_products(self, request: Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            return self._rest_create_product(body)
        with self._lock:
            rows = list(self.products.values())
            for key in ("type", "sku", "stock_status"):
                if request.args.get(key):
                    rows = [r for r in rows if r[key] == request.args[key]]
            rows = self.select(rows, request.args.get)
            return self._page(request, rows)

    def _rest_create_product(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("name"):
            raise RestError(400, "woocommerce_rest_product_invalid_name", "Product name is required.")
        kind = body.get("type", "simple")
        product = self.create_product(
            body["name"],
            sku=body.get("sku", ""),
            price=body.get("regular_price") or "0",
            kind=kind,
            manage_stock=bool(body.get("manage_stock", False)),
            stock_quantity=body.get("stock_quantity"),
            backorders=body.get("backorders", "no"),
        )
        if "meta_data" in body:
            product = self.update_product(product["id"], meta_data=body["meta_data"])
        return product

    def _ep_product(self, request: Request, body: dict[str, Any], product_id: int) -> Any:
        if request.method == "GET":
            return self.product(product_id)
        if request.method == "DELETE":
            with self._lock:
                product = self._product(product_id)
                if request.args.get("force") in ("true", "1"):
                    del self.products[product_id]
                    self.variations.pop(product_id, None)
                else:
                    product["status"] = "trash"
                self._events.append(("product.deleted", product_id))
            self._after_change()
            return product
        return self.update_product(product_id, **body)

    def _ep_products_batch(self, request: Request, body: dict[str, Any]) -> Any:
        with self._lock:
            result = self._batch(
                body,
                self._rest_create_product,
                lambda item: self._update_product(int(item["id"]), item),
                lambda pid: self._delete_product(pid),
            )
        self._after_change()
        return result

    def _delete_product(self, product_id: int) -> dict[str, Any]:
        product = self._product(product_id)
        product["status"] = "trash"
        self._events.append(("product.deleted", product_id))
        return product

    def _ep_variations(self, request: Request, body: dict[str, Any], product_id: int) -> Any:
        if request.method == "POST":
            return self.create_variation(
                product_id,
                options={a["name"]: a["option"] for a in body.get("attributes", [])},
                sku=body.get("sku", ""),
                price=body.get("regular_price") or "0",
                manage_stock=body.get("manage_stock", False),
                stock_quantity=body.get("stock_quantity"),
                backorders=body.get("backorders", "no"),
            )
        with self._lock:
            self._product(product_id)
            rows = self.select(self.variations.get(product_id, {}).values(), request.args.get)
            return self._page(request, rows)

    def _ep_variation(
        self, request: Request, body: dict[str, Any], product_id: int, variation_id: int
    ) -> Any:
        if request.method == "GET":
            return self.variation(product_id, variation_id)
        return self.update_variation(product_id, variation_id, **body)

    def _ep_variations_batch(self, request: Request, body: dict[str, Any], product_id: int) -> Any:
        with self._lock:
            self._product(product_id)

            def refuse_create(item: dict[str, Any]) -> dict[str, Any]:
                raise RestError(400, "sandbox_not_emulated", "Batch creation of variations is not emulated.")

            def refuse_delete(ident: int) -> dict[str, Any]:
                raise RestError(400, "sandbox_not_emulated", "Batch deletion of variations is not emulated.")

            result = self._batch(
                body,
                refuse_create,
                lambda item: self._update_variation(product_id, int(item["id"]), item),
                refuse_delete,
            )
        self._after_change()
        return result

    # ------------------------------------------------------------------ endpoints: orders

    def _ep_orders(self, request: Request, body: dict[str, Any]) -> Any:
        if request.method == "POST":
            return self._rest_create_order(body)
        with self._lock:
            rows = list(self.orders.values())
            statuses = request.args.get("status", "any")
            wanted = set(statuses.split(","))
            if "any" in wanted:
                rows = [r for r in rows if r["status"] != "trash"]
            else:
                rows = [r for r in rows if r["status"] in wanted]
            if request.args.get("customer"):
                rows = [r for r in rows if str(r["customer_id"]) == request.args["customer"]]
            rows = self.select(rows, request.args.get)
            return self._page(request, rows)

    def _rest_create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        billing = body.get("billing") or {}
        status = "processing" if body.get("set_paid") else body.get("status", "pending")
        return self.create_order(
            body.get("line_items") or [],
            status=status,
            email=billing.get("email", ""),
            first_name=billing.get("first_name", ""),
            last_name=billing.get("last_name", ""),
            customer_id=int(body.get("customer_id") or 0),
            currency=body.get("currency", "EUR"),
            via_checkout=False,
        )

    def _ep_order(self, request: Request, body: dict[str, Any], order_id: int) -> Any:
        if request.method == "GET":
            return self.order(order_id)
        if request.method == "DELETE":
            with self._lock:
                result = self._delete_order(order_id, request.args.get("force") in ("true", "1"))
            self._after_change()
            return result
        return self.update_order(order_id, **body)

    def _ep_orders_batch(self, request: Request, body: dict[str, Any]) -> Any:
        def create(item: dict[str, Any]) -> dict[str, Any]:
            billing = item.get("billing") or {}
            return self._create_order(
                item.get("line_items") or [],
                status=item.get("status", "pending"),
                email=billing.get("email", ""),
                first_name=billing.get("first_name", ""),
                last_name=billing.get("last_name", ""),
                customer_id=0,
                currency="EUR",
                via_checkout=False,
                ship=True,
            )

        with self._lock:
            result = self._batch(
                body,
                create,
                lambda item: self._update_order(int(item["id"]), item),
                lambda oid: self._delete_order(oid, False),
            )
        self._after_change()
        return result

    def _ep_notes(self, request: Request, body: dict[str, Any], order_id: int) -> Any:
        with self._lock:
            self._order(order_id)
            if request.method == "GET":
                kind = request.args.get("type", "any")
                notes = [
                    n
                    for n in self.notes[order_id]
                    if kind == "any" or (kind == "customer") == n["customer_note"]
                ]
                return notes
            note = body.get("note")
            if not isinstance(note, str) or not note.strip():
                raise RestError(400, "woocommerce_rest_missing_note", "Missing parameter(s): note")
            customer_note = body.get("customer_note", False)
            if not isinstance(customer_note, bool):
                raise invalid_param("customer_note", "customer_note is not of type boolean.")
            # customer_note=true also e-mails the customer (woocommerce_new_customer_note).
            return self._add_note(order_id, note, customer_note, author="sandbox admin")

    def _ep_refunds(self, request: Request, body: dict[str, Any], order_id: int) -> Any:
        if request.method == "GET":
            return self._page(request, self.order_refunds(order_id))
        return self.create_refund(order_id, body)

    # ------------------------------------------------------------------ endpoints: webhooks

    def _ep_webhooks(self, request: Request, body: dict[str, Any]) -> Any:
        if request.method == "GET":
            with self._lock:
                rows = list(self.webhooks.values())
                if request.args.get("status", "all") != "all":
                    rows = [r for r in rows if r["status"] == request.args["status"]]
                rows = self.select(rows, request.args.get, orderings=("date", "id", "title", "include"))
                return self._page(request, rows)
        with self._lock:
            hook = self._create_webhook(body)
        if hook["status"] == "active" and self.deliver_webhooks:
            self._ping(hook["id"], hook["delivery_url"])
        return hook

    def _ep_webhook(self, request: Request, body: dict[str, Any], hook_id: int) -> Any:
        with self._lock:
            if request.method == "GET":
                return dict(self._webhook(hook_id))
            if request.method == "DELETE":
                if request.args.get("force") not in ("true", "1"):
                    raise RestError(
                        501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing."
                    )
                hook = self._webhook(hook_id)
                del self.webhooks[hook_id]
                return hook
            return self._update_webhook(hook_id, body)

    # ------------------------------------------------------------------ wc-auth

    def _authorize(self, request: Request) -> Response:
        args = request.args
        missing = [
            k for k in ("app_name", "scope", "user_id", "return_url", "callback_url") if not args.get(k)
        ]
        if missing:
            return Response(f"<p>Error: Missing parameter {missing[0]}</p>", status=400, mimetype="text/html")
        if args["scope"] not in ("read", "write", "read_write"):
            return Response("<p>Error: Invalid scope</p>", status=400, mimetype="text/html")
        return_url = args["return_url"]
        joiner = "&" if "?" in return_url else "?"
        if not self.auth_approves:
            return Response(
                status=302,
                headers={
                    "Location": f"{return_url}{joiner}"
                    + urlencode({"success": 0, "user_id": args["user_id"]})
                },
            )
        with self._lock:
            key_id = max(k.key_id for k in self.keys.values()) + 1
            ck, cs = "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20)
            self.keys[ck] = ApiKey(
                key_id=key_id,
                user_id=1,
                secret=cs,
                permissions=args["scope"],
                description=f"{args['app_name']} - API ({self._now:%Y-%m-%d %H:%M:%S})",
            )
        payload = {
            "key_id": key_id,
            "user_id": args["user_id"],
            "consumer_key": ck,
            "consumer_secret": cs,
            "key_permissions": args["scope"],
        }
        try:
            answer = requests.post(
                args["callback_url"],
                data=json.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=5,
            )
            ok = 200 <= answer.status_code < 300
        except requests.RequestException:
            ok = False
        if not ok:
            with self._lock:
                self.keys.pop(ck, None)  # WooCommerce deletes the key when the callback fails
            return Response(
                "<p>Error: An error occurred in the request and at the time were unable to send "
                "the consumer data</p>",
                status=401,
                mimetype="text/html",
            )
        location = f"{return_url}{joiner}" + urlencode({"success": 1, "user_id": args["user_id"]})
        return Response(status=302, headers={"Location": location})


def _json(data: Any, status: int) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def _int_arg(request: Request, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise invalid_param(name, f"{name} is not of type integer.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} ({'inclusive'}) and {maximum} (inclusive)" if maximum else f">= {minimum}"
        raise invalid_param(name, f"{name} must be {bound}")
    return value
