"""The JSON API for the merchant's own tools, under ``/api/v1``; its document at ``/api/openapi.json``.

Every ``/api/v1`` request needs ``Authorization: Bearer <token>``: an unknown or revoked token
is 401, a read-only token on a write operation 403. The token decides the shop, and every
query runs in a unit of work bound to it, so another shop's purchase order number is a 404
like a missing one. Parameters and bodies are checked against the OpenAPI document itself
(``connector.web.openapi``). Every error, including malformed JSON, unknown paths under /api,
wrong methods, oversized bodies and our own faults, has the shape
``{"error": {"code", "message", "field"}}``.

Each token may make ``API_READ_LIMIT_PER_MINUTE`` reads (GET) and ``API_WRITE_LIMIT_PER_MINUTE``
writes a minute, counted in the database so the limit holds across web workers; beyond it the
answer is 429 with ``Retry-After``. A receipt sent with an ``Idempotency-Key`` is recorded once
however often it is retried within 24 hours (see :func:`receive`).

``create_app`` registers ``bp``; the blueprint also installs app-wide 404/405 handlers that
answer in JSON only for paths under /api and leave every other path to Flask's defaults.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, RequestEntityTooLarge

from connector.config import Settings
from connector.db.engine import Database
from connector.errors import ConnectorError, NotFound, ValidationError
from connector.services import api_queries as q
from connector.services.outbox import NotRetryable, retry_dead
from connector.services.purchase_order_queries import purchase_order_detail
from connector.services.purchasing import receive_purchase_order
from connector.web.openapi import (
    IDEMPOTENCY_HEADER,
    MAX_BODY_BYTES,
    MAX_INT,
    RECEIPT_REQUEST,
    TEXT_PATTERN,
    SchemaViolation,
    check,
    openapi_document,
)
from connector.web.openapi import parse_parameters as _parse

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

Authenticator = Callable[[Database, str, datetime], q.ApiPrincipal | None]


class ApiError(Exception):
    """An error answer: HTTP status, stable code, message and the field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _error(status: int, code: str, message: str, field: str | None = None) -> Response:
    response = jsonify(error={"code": code, "message": message, "field": field})
    response.status_code = status
    return response


def _db() -> Database:
    db: Database = current_app.extensions["backorders.db"]
    return db


def _now() -> datetime:
    clock: Callable[[], datetime] | None = current_app.extensions.get("backorders.clock")
    return clock() if clock is not None else datetime.now(UTC)


def _is_api_path() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


# Authentication ------------------------------------------------------------------------------


@bp.before_request
def _authenticate() -> Response | None:
    # Flask checks MAX_CONTENT_LENGTH lazily; the API's own, smaller limit applies to its bodies.
    request.max_content_length = MAX_BODY_BYTES
    if request.endpoint == "api.openapi_json":
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized("send Authorization: Bearer <token> (create one on Settings → API tokens)")
    authenticate: Authenticator = current_app.extensions.get("backorders.api_authenticator", q.api_principal)
    principal = authenticate(_db(), token.strip(), _now())
    if principal is None:
        return _unauthorized("the token is unknown or revoked")
    g.api_principal = principal
    return _rate_limit(principal.shop_id, hashlib.sha256(token.strip().encode()).hexdigest())


def _rate_limit(shop_id: int, token_hash: str) -> Response | None:
    """Count the request in the token's current minute; 429 once it is over the limit.

    A fixed window: at most twice the limit can pass around a minute boundary, which is fine for
    protecting the service and costs one UPSERT instead of a log of timestamps per token.
    """
    settings: Settings = current_app.extensions.get("backorders.settings") or Settings()
    kind = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"
    limit = settings.api_read_limit_per_minute if kind == "read" else settings.api_write_limit_per_minute
    now = _now().timestamp()
    minute = int(now // 60)
    if q.count_api_request(_db(), shop_id, token_hash, kind, minute) <= limit:
        return None
    retry_after = max(1, math.ceil((minute + 1) * 60 - now))
    response = _error(429, "rate_limited", f"this token made more than {limit} {kind} requests this minute; "
                                           f"retry after {retry_after} s")
    response.headers["Retry-After"] = str(retry_after)
    return response


@bp.after_request
def _no_sniff_no_store(response: Response) -> Response:
    # Answers are one shop's data for one token: no shared cache may keep them, and no browser
    # may read a JSON error that echoes input as anything but JSON.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _unauthorized(message: str) -> Response:
    response = _error(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _shop_id() -> int:
    principal: q.ApiPrincipal = g.api_principal
    return principal.shop_id


def _require_write() -> None:
    principal: q.ApiPrincipal = g.api_principal
    if q.WRITE not in principal.scopes:
        raise ApiError(403, "forbidden", "this token may only read; create a read-write token to write")


# Parameters and bodies -------------------------------------------------------------------------


def _params(op_id: str, **path: str) -> dict[str, Any]:
    try:
        return _parse(op_id, request.args, path, request.headers)
    except SchemaViolation as exc:
        raise ApiError(400, "invalid", f"{exc.field} {exc.message}", exc.field) from None


def _page(params: dict[str, Any], decode_key: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> q.PageRequest:
    cursor, offset = params.get("cursor"), params.get("offset") or 0
    if cursor is None:
        return q.PageRequest(limit=params["limit"], offset=offset)
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list):
            raise ValueError("not a list")
        after = decode_key(tuple(raw))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise ApiError(400, "invalid", "cursor is not one this API handed out", "cursor") from None
    return q.PageRequest(limit=params["limit"], after=after, offset=offset)


def _cursor(key: tuple[Any, ...] | None) -> str | None:
    if key is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


# Cursors are opaque to clients but only base64 JSON to us, so a forged one must fail here, as
# 400, never deeper down as an overflow or an encoding error (500).
def _key_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INT:
        raise ValueError("bad cursor id")
    return value


def _key_text(value: Any) -> str:
    try:
        check({"type": "string", "maxLength": 255, "pattern": TEXT_PATTERN}, value, "cursor")
    except SchemaViolation as exc:
        raise ValueError("bad cursor text") from exc
    return str(value)


def _key_datetime(value: Any) -> datetime:
    when = datetime.fromisoformat(_key_text(value))
    if when.utcoffset() != timedelta(0) or not 1970 <= when.year <= 9998:
        raise ValueError("bad cursor time")
    return when


def _backorder_key(raw: tuple[Any, ...]) -> tuple[datetime, int]:
    stamp, line_id = raw
    return _key_datetime(stamp), _key_int(line_id)


def _po_key(raw: tuple[Any, ...]) -> tuple[int]:
    (po_id,) = raw
    return (_key_int(po_id),)


def _outbox_key(raw: tuple[Any, ...]) -> tuple[int]:
    (message_id,) = raw
    return (_key_int(message_id),)


def _supplier_key(raw: tuple[Any, ...]) -> tuple[str, int]:
    name, supplier_id = raw
    return _key_text(name), _key_int(supplier_id)


def _page_response(page: q.Page) -> Response:
    return _json({"data": page.items, "next_cursor": _cursor(page.last_key)})


def _json(body: Any, status: int = 200) -> Response:
    # Dates and datetimes as ISO 8601 (Flask's default provider would write HTTP dates).
    text = json.dumps(body, default=_iso, ensure_ascii=False, separators=(",", ":"))
    return current_app.response_class(text, status=status, mimetype="application/json")


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return DefaultJSONProvider.default(value)


def _json_body(schema: dict[str, Any]) -> Any:
    # The body is read as JSON whatever Content-Type says: a bearer token (never a cookie)
    # authorizes the request, so a cross-site form post gains nothing from this leniency.
    raw = request.get_data(cache=True)  # raises 413 above MAX_BODY_BYTES
    if not raw:
        raise ApiError(400, "malformed_json", "the body is empty; send a JSON object", "body")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
        raise ApiError(400, "malformed_json", "the body is not valid JSON", "body") from None
    try:
        check(schema, data, "")
    except SchemaViolation as exc:
        raise ApiError(400, "invalid", f"{exc.field or 'body'} {exc.message}", exc.field or "body") from None
    return data


def _no_body() -> None:
    """For operations without a body: nothing, or an empty JSON object (what many clients send)."""
    raw = request.get_data(cache=True)  # raises 413 above MAX_BODY_BYTES
    if not raw.strip():
        return
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "the body is not valid JSON", "body") from None
    if data != {}:
        raise ApiError(400, "invalid", "this operation takes no body (or an empty JSON object)", "body")


# Endpoints -------------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return _json(openapi_document())


@bp.get("/v1/backorders")
def list_backorders() -> Response:
    params = _params("list_backorders")
    page = _page(params, _backorder_key)
    return _page_response(q.backorders(_db(), _shop_id(), page, sku=params.get("sku"),
                                       supplier_id=params.get("supplier")))


@bp.get("/v1/purchase-orders")
def list_purchase_orders() -> Response:
    params = _params("list_purchase_orders")
    page = _page(params, _po_key)
    return _page_response(q.purchase_orders(_db(), _shop_id(), page, _now().date(), status=params.get("status"),
                                            supplier_id=params.get("supplier")))


@bp.get("/v1/purchase-orders/<number>")
def get_purchase_order(number: str) -> Response:
    _params("get_purchase_order", number=number)
    return _json(q.purchase_order(_db(), _shop_id(), number))


@bp.post("/v1/purchase-orders/<number>/receipts")
def receive(number: str) -> Response:
    """Record a receipt; with an ``Idempotency-Key``, at most once per key (as Stripe and Shopify).

    The key is claimed in the database before the receipt is recorded, so a concurrent
    duplicate cannot apply too (it gets 409 while the first runs, the stored answer after). A
    repeat with the same key and the same request gets the stored answer with
    ``Idempotent-Replayed: true``; the same key with another body or path is 422. Errors are not
    stored: nothing was recorded, so a retry with the same key runs again.
    """
    _require_write()
    key = _params("receive_purchase_order", number=number).get(IDEMPOTENCY_HEADER)
    if key is None:
        return _receive(number)
    shop_id = _shop_id()
    raw = request.get_data(cache=True)  # raises 413 above MAX_BODY_BYTES, before anything is claimed
    request_hash = hashlib.sha256(b"%s %s\n%s" % (request.method.encode(), request.path.encode(), raw)).hexdigest()
    try:
        stored = q.claim_idempotency_key(_db(), shop_id, key, request_hash, _now())
    except q.IdempotencyConflict as exc:
        status = 409 if exc.code == "idempotency_key_in_progress" else 422
        raise ApiError(status, exc.code, exc.message, IDEMPOTENCY_HEADER) from None
    if stored is not None:
        replay = current_app.response_class(stored.body, status=stored.status, mimetype="application/json")
        replay.headers["Idempotent-Replayed"] = "true"
        return replay
    try:
        response = _receive(number)
    except BaseException:
        q.release_idempotency_key(_db(), shop_id, key)
        raise
    q.complete_idempotency_key(_db(), shop_id, key, response.status_code, response.get_data(as_text=True), _now())
    return response


def _receive(number: str) -> Response:
    body = _json_body(RECEIPT_REQUEST)
    quantities: dict[str, int] = {}
    for i, line in enumerate(body["lines"]):
        if line["sku"] in quantities:
            raise ApiError(422, "duplicate_sku", f"SKU {line['sku']} appears twice; send it once",
                           f"lines[{i}].sku")
        quantities[line["sku"]] = int(line["quantity"])
    shop_id = _shop_id()
    po_id = q.purchase_order_id(_db(), shop_id, number)
    skus = {line.sku for line in purchase_order_detail(_db(), shop_id, po_id).lines}
    for i, line in enumerate(body["lines"]):
        if line["sku"] not in skus:
            raise ApiError(422, "unknown_sku", f"{number} has no line for SKU {line['sku']}", f"lines[{i}].sku")
    try:
        results = receive_purchase_order(_db(), shop_id, po_id, quantities, _now())
    except ValidationError as exc:  # e.g. a draft PO: send it before receiving
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    received = [
        {"sku": sku, "quantity": quantities[sku], "to_pegged_lines": r.to_pegged_lines,
         "to_other_lines": r.to_other_lines, "to_stock": r.to_stock}
        for sku, r in results.items()
    ]
    return _json({"received": received, "purchase_order": q.purchase_order(_db(), shop_id, number)}, 201)


@bp.get("/v1/suppliers")
def list_suppliers() -> Response:
    params = _params("list_suppliers")
    return _page_response(q.suppliers(_db(), _shop_id(), _page(params, _supplier_key)))


@bp.get("/v1/outbox")
def list_outbox() -> Response:
    params = _params("list_outbox")
    return _page_response(q.outbox_messages(_db(), _shop_id(), _page(params, _outbox_key), state=params.get("state")))


@bp.post("/v1/outbox/<message_id>/retry")
def retry_outbox_message(message_id: str) -> Response:
    _require_write()
    # The path segment is a string to Flask so a non-number gets the documented 400, not a 404.
    params = _params("retry_outbox_message", message_id=message_id)
    _no_body()
    shop_id = _shop_id()
    try:
        retry_dead(_db(), shop_id, params["message_id"], _now())
    except NotRetryable as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    except NotFound:
        raise ApiError(404, "not_found", f"no outbox message {params['message_id']}", "message_id") from None
    return _json(q.outbox_message(_db(), shop_id, params["message_id"]))


# Errors ----------------------------------------------------------------------------------------


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return _error(exc.status, exc.code, exc.message, exc.field)


@bp.errorhandler(ConnectorError)
def _connector_error(exc: ConnectorError) -> Response:
    field = exc.data.get("field")
    field = field if isinstance(field, str) else None
    if isinstance(exc, NotFound):
        return _error(404, "not_found", exc.message, field)
    if isinstance(exc, ValidationError):
        return _error(422, exc.code, exc.message, exc.field)
    log.exception("API request failed: %s", exc.message)
    return _error(500, "internal", "something went wrong on our side; it has been logged")


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc: RequestEntityTooLarge) -> Response:
    return _error(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes", "body")


@bp.errorhandler(InternalServerError)
def _internal(exc: InternalServerError) -> Response:
    # Reached for uncaught exceptions (Flask logs them first); never leak their text.
    return _error(500, "internal", "something went wrong on our side; it has been logged")


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return _http_json(exc)


def _http_json(exc: HTTPException) -> Response:
    status = exc.code or 500
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    messages = {404: f"no API endpoint at {request.path}", 405: f"{request.method} is not allowed here"}
    response = _error(status, codes.get(status, "http_error"), messages.get(status, exc.description or exc.name))
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


# Routing failures (unknown path, wrong method) happen before Flask knows the blueprint, so a
# blueprint handler never sees them: these app-wide ones answer JSON for /api paths only.
@bp.app_errorhandler(404)
def _app_not_found(exc: HTTPException) -> Any:
    return _http_json(exc) if _is_api_path() else exc


@bp.app_errorhandler(405)
def _app_method_not_allowed(exc: HTTPException) -> Any:
    return _http_json(exc) if _is_api_path() else exc
