"""The OpenAPI 3.1 document of the JSON API, and the small validator the API checks input with.

The document is the single source of truth for what a request may carry: ``connector.web.api``
reads its parameter lists (``PARAMETERS``) and request-body schema (``RECEIPT_REQUEST``) from
here and validates every query string, path segment and JSON body against them with
:func:`check`, so the published limits (``limit`` 1..200, string lengths, patterns) and the
enforced ones cannot drift apart. The validator covers only the JSON Schema keywords this
document uses; a keyword it does not know raises at import time of the tests
(``test_validator_knows_every_keyword_the_document_uses``), not silently at request time.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from connector.services.outbox import STATES as OUTBOX_STATES

API_VERSION = "1.0.0"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_OFFSET = 1_000_000
MAX_INT = 2**31 - 1  # ids and quantities are 32-bit integers in the database
MAX_RECEIPT_QUANTITY = 100_000
MAX_RECEIPT_LINES = 200
# Room for the largest valid receipt (200 lines, 255-character SKUs written as \u escapes).
MAX_BODY_BYTES = 1024 * 1024
# Printable text: no control characters (PostgreSQL refuses NUL, and nothing legitimate needs them).
TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
IDEMPOTENCY_HEADER = "Idempotency-Key"

PO_STATUSES = ["draft", "ready", "sent", "confirmed", "partially_received", "received", "cancelled"]
LINE_KINDS = ["stock", "backorder", "preorder", "dropship", "oversold", "untracked"]


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    out["type"] = [schema["type"], "null"]
    return out


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(max_length: int, min_length: int = 0) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, "pattern": TEXT_PATTERN}


DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
COUNT = {"type": "integer", "minimum": 0}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """Every property is required (nullable ones say so): clients never guess at absence."""
    return {"type": "object", "additionalProperties": False, "required": list(properties), "properties": properties}


def _page(item: str) -> dict[str, Any]:
    return _object({
        "data": {"type": "array", "items": _ref(item)},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as `cursor` to get the next page; null on the last page.",
        },
    })


SCHEMAS: dict[str, Any] = {
    "Error": _object({
        "error": _object({
            "code": {"type": "string", "description": "Stable, machine-readable reason, e.g. `invalid`, "
                                                      "`unauthorized`, `not_found`."},
            "message": {"type": "string", "description": "A sentence for a person."},
            "field": {"type": ["string", "null"], "description": "The parameter or body field at fault, "
                                                                 "e.g. `limit` or `lines[0].quantity`."},
        }),
    }),
    "PurchaseOrderRef": _object({"number": {"type": "string"}, "units": COUNT}),
    "SupplierRef": _object({"id": ID, "name": {"type": "string"}}),
    "Backorder": _object({
        "line_id": ID,
        "order_number": {"type": "string"},
        "sku": {"type": ["string", "null"]},
        "title": {"type": "string"},
        "kind": {"type": "string", "enum": LINE_KINDS},
        "units": {**COUNT, "description": "Units still waiting (backordered)."},
        "pegged_units": {**COUNT, "description": "Of `units`, how many an open purchase order covers."},
        "waiting_since": DATETIME,
        "promised_eta": _nullable(DATE),
        "current_eta": _nullable(DATE),
        "supplier": {"oneOf": [_ref("SupplierRef"), {"type": "null"}]},
        "purchase_orders": {"type": "array", "items": _ref("PurchaseOrderRef")},
    }),
    "BackorderPage": _page("Backorder"),
    "PurchaseOrderSummary": _object({
        "number": {"type": "string"},
        "status": {"type": "string", "enum": PO_STATUSES},
        "supplier": _ref("SupplierRef"),
        "created_at": DATETIME,
        "expected_date": DATE,
        "late": {"type": "boolean"},
        "lines": COUNT,
        "ordered_units": COUNT,
        "received_units": COUNT,
    }),
    "PurchaseOrderPage": _page("PurchaseOrderSummary"),
    "PurchaseOrderLine": _object({
        "sku": {"type": "string"},
        "supplier_sku": {"type": ["string", "null"]},
        "ordered": COUNT,
        "received": COUNT,
        "pegged": {**COUNT, "description": "Units of waiting order lines this line will fill."},
        "unit_cost_cents": COUNT,
    }),
    "WaitingOrder": _object({"order_number": {"type": "string"}, "sku": {"type": ["string", "null"]},
                             "units": COUNT}),
    "PurchaseOrder": _object({
        "number": {"type": "string"},
        "status": {"type": "string", "enum": PO_STATUSES},
        "supplier": _ref("SupplierRef"),
        "currency": {"type": "string"},
        "created_at": DATETIME,
        "sent_at": _nullable(DATETIME),
        "expected_date": DATE,
        "expected_date_source": {"type": "string"},
        "receivable": {"type": "boolean"},
        "lines": {"type": "array", "items": _ref("PurchaseOrderLine")},
        "waiting_orders": {"type": "array", "items": _ref("WaitingOrder")},
    }),
    "ReceiptRequest": {
        **_object({
            "lines": {
                "type": "array", "minItems": 1, "maxItems": MAX_RECEIPT_LINES,
                "items": _object({
                    "sku": _text(255, 1),
                    "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_RECEIPT_QUANTITY},
                }),
            },
        }),
    },
    "ReceiptLineResult": _object({
        "sku": {"type": "string"},
        "quantity": COUNT,
        "to_pegged_lines": {**COUNT, "description": "Units that went to order lines waiting on this PO."},
        "to_other_lines": {**COUNT, "description": "Units that went to other waiting lines of the SKU."},
        "to_stock": {**COUNT, "description": "Units nobody waited for: now free stock."},
    }),
    "Receipt": _object({
        "received": {"type": "array", "items": _ref("ReceiptLineResult")},
        "purchase_order": _ref("PurchaseOrder"),
    }),
    "Supplier": _object({
        "id": ID,
        "name": {"type": "string"},
        "email": {"type": ["string", "null"]},
        "currency": {"type": "string"},
        "lead_time_days": COUNT,
        "dropship": {"type": "boolean"},
        "open_purchase_orders": COUNT,
    }),
    "SupplierPage": _page("Supplier"),
    "OutboxMessage": _object({
        "id": ID,
        "kind": {"type": "string", "description": "What the message does, e.g. `eta_changed` (a storefront "
                                                  "push), `backordered` (a customer e-mail), `purchase_order`."},
        "target": {"type": "string", "enum": ["customer", "storefront", "supplier", "merchant"]},
        "subject": {"type": ["string", "null"], "description": "What it is about, e.g. the store's order id."},
        "state": {"type": "string", "enum": list(OUTBOX_STATES),
                  "description": "`pending` waits for its next attempt, `sending` is being delivered, `sent` "
                                 "arrived, `dead` gave up (retry it), `skipped` was redacted."},
        "attempts": {**COUNT, "description": "Delivery attempts since it was created or last retried."},
        "next_attempt_at": {**_nullable(DATETIME), "description": "When it will be tried again (null unless "
                                                                  "`pending` or `sending`)."},
        "last_error": {"type": ["string", "null"], "description": "Why the last attempt failed (credentials "
                                                                  "masked); kept until it is delivered."},
        "created_at": DATETIME,
        "sent_at": _nullable(DATETIME),
    }),
    "OutboxPage": _page("OutboxMessage"),
}

RECEIPT_REQUEST: dict[str, Any] = SCHEMAS["ReceiptRequest"]


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PAGINATION = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
           "Items per page."),
    _query("cursor", {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[A-Za-z0-9_-]+$"},
           "Opaque: the `next_cursor` of the previous page (stable while data changes). A cursor "
           "this API did not hand out is refused with 400."),
    _query("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
           "Items to skip (simple paging; after the cursor's position when both are given)."),
]
PO_NUMBER = {"name": "number", "in": "path", "required": True, "schema": _text(32, 1),
             "description": "The purchase order number, e.g. `PO-00042`."}

PARAMETERS: dict[str, list[dict[str, Any]]] = {
    "list_backorders": [
        _query("sku", _text(255, 1), "Only lines of this SKU (exact match)."),
        _query("supplier", {"type": "integer", "minimum": 1, "maximum": MAX_INT},
               "Only lines whose variant this supplier (id from `/suppliers`) delivers."),
        *PAGINATION,
    ],
    "list_purchase_orders": [
        _query("status", {"type": "string", "enum": PO_STATUSES}, "Only purchase orders in this status."),
        _query("supplier", {"type": "integer", "minimum": 1, "maximum": MAX_INT}, "Only this supplier's."),
        *PAGINATION,
    ],
    "get_purchase_order": [PO_NUMBER],
    "receive_purchase_order": [
        PO_NUMBER,
        {"name": IDEMPOTENCY_HEADER, "in": "header", "required": False, "schema": _text(255, 1),
         "description": "Any unique string (a UUID) chosen by the client for this receipt. A retry with the "
                        "same key and the same body within 24 hours is not recorded again: it gets the first "
                        "answer back with `Idempotent-Replayed: true`. The same key with another body is "
                        "422 `idempotency_key_reused`; while the first request still runs, 409 "
                        "`idempotency_key_in_progress`. Errors are not stored (nothing was recorded), so "
                        "retrying after one runs the request again."},
    ],
    "list_suppliers": list(PAGINATION),
    "list_outbox": [
        _query("state", {"type": "string", "enum": list(OUTBOX_STATES)}, "Only messages in this state "
               "(`pending` and `dead` are the ones to watch)."),
        *PAGINATION,
    ],
    "retry_outbox_message": [
        {"name": "message_id", "in": "path", "required": True, "schema": ID,
         "description": "The message's `id` from `/outbox`."},
    ],
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


ERROR_RESPONSES = {
    "400": _error_response("The request does not match this document (bad parameter, malformed JSON, "
                           "a body of the wrong shape); `field` names what was wrong."),
    "401": _error_response("No bearer token, or an unknown or revoked one."),
    "403": _error_response("The token may read but not write."),
    "404": _error_response("No such resource in the token's shop (another shop's resources are "
                           "indistinguishable from missing ones)."),
    "405": _error_response("The path exists but not with this method (`Allow` lists the methods)."),
    "409": _error_response("A request with the same `Idempotency-Key` is still being processed; retry "
                           "shortly to get its answer."),
    "413": _error_response(f"The body is larger than {MAX_BODY_BYTES} bytes."),
    "422": _error_response("Well-formed, but it cannot be applied (unknown SKU on the PO, a PO that "
                           "cannot be received yet, the same SKU twice, a retry of a message that is not "
                           "dead)."),
    "429": {
        **_error_response("The token made more requests this minute than allowed (code `rate_limited`; by "
                          "default 120 reads and 60 writes a minute per token)."),
        "headers": {"Retry-After": {"description": "Seconds until the next minute starts and requests are "
                                                   "counted afresh.",
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 60}}},
    },
    "500": _error_response("A fault of ours; the message carries no detail."),
}


def _ok(description: str, schema: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


def _replayable(responses: dict[str, Any]) -> dict[str, Any]:
    """Success answers that may be a replay of an earlier request with the same Idempotency-Key."""
    header = {"Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier request with the same "
                       "`Idempotency-Key` (nothing was recorded again); absent otherwise.",
        "schema": {"type": "string", "enum": ["true"]}}}
    return {code: {**response, "headers": header} for code, response in responses.items()}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/E{code}"} for code in codes}


READ_ERRORS = ("400", "401", "404", "429", "500")
WRITE_ERRORS = ("400", "401", "403", "404", "413", "422", "429", "500")
IDEMPOTENT_WRITE_ERRORS = (*WRITE_ERRORS, "409")


def _operation(op_id: str, summary: str, responses: dict[str, Any], errors: tuple[str, ...], *,
               write: bool = False, body: str | None = None, description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": PARAMETERS[op_id],
        "responses": {**responses, **_errors(*errors)},
        "security": [{"bearer": ["write" if write else "read"]}],
    }
    if description:
        op["description"] = description
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return op


PATHS: dict[str, Any] = {
    "/api/v1/backorders": {"get": _operation(
        "list_backorders", "Order lines still waiting for stock, oldest first",
        _ok("A page of waiting order lines.", "BackorderPage"), READ_ERRORS,
    )},
    "/api/v1/purchase-orders": {"get": _operation(
        "list_purchase_orders", "Purchase orders, newest first",
        _ok("A page of purchase orders.", "PurchaseOrderPage"), READ_ERRORS,
    )},
    "/api/v1/purchase-orders/{number}": {"get": _operation(
        "get_purchase_order", "One purchase order with its lines and the orders waiting on it",
        _ok("The purchase order.", "PurchaseOrder"), READ_ERRORS,
    )},
    "/api/v1/purchase-orders/{number}/receipts": {"post": _operation(
        "receive_purchase_order", "Record goods received on a purchase order",
        _replayable(_ok("Received: units went to waiting order lines oldest first, the rest to stock.",
                        "Receipt", "201")),
        IDEMPOTENT_WRITE_ERRORS, write=True, body="ReceiptRequest",
        description="Each call adds to what was received. To retry safely (a timeout, a dropped "
                    "connection), send an `Idempotency-Key`: the receipt is then recorded once however "
                    "often the same request is repeated within 24 hours. Receiving more than ordered is "
                    "allowed; the surplus becomes stock.",
    )},
    "/api/v1/suppliers": {"get": _operation(
        "list_suppliers", "Suppliers, by name", _ok("A page of suppliers.", "SupplierPage"), READ_ERRORS,
    )},
    "/api/v1/outbox": {"get": _operation(
        "list_outbox", "Outbox messages (storefront pushes, e-mails, supplier documents), newest first",
        _ok("A page of outbox messages.", "OutboxPage"), READ_ERRORS,
        description="Messages wait here while a store is down or throttling and are retried with "
                    "backoff; after the last allowed attempt they are `dead` until retried. The payload "
                    "is not shown.",
    )},
    "/api/v1/outbox/{message_id}/retry": {"post": _operation(
        "retry_outbox_message", "Retry a dead outbox message",
        _ok("Queued again: `pending`, attempts back to 0, due now; `last_error` kept until it is "
            "delivered.", "OutboxMessage"),
        WRITE_ERRORS, write=True,
        description="Only `dead` messages can be retried (422 `not_retryable` otherwise: a pending "
                    "message is already queued, a sent one would arrive twice). Takes no body (an empty "
                    "JSON object is accepted). Retrying the same message twice in a row is harmless: the "
                    "second call gets 422 while the first retry is pending.",
    )},
}


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Backorder connector API",
            "version": API_VERSION,
            "description": "The merchant's own tools read backorders, purchase orders, suppliers and "
                           "the outbox, record receipts and retry dead outbox messages. Every request "
                           "carries `Authorization: Bearer <token>`; "
                           "tokens are created on /merchant/settings/api-tokens and see one shop only. "
                           "Errors always have the shape `{\"error\": {\"code\", \"message\", \"field\"}}`, "
                           "also for unknown paths under /api (404) and wrong methods (405). Each token "
                           "may make a limited number of requests a minute (429 with `Retry-After` "
                           "beyond it); receipts take an `Idempotency-Key` so they can be retried "
                           "safely.",
        },
        "servers": [{"url": "/"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"E{code}": response for code, response in ERROR_RESPONSES.items()},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token of the shop (`bo_…`). A read token gets 403 "
                                          "on write operations."},
            },
        },
        "security": [{"bearer": []}],
    }


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may not mutate the shared one)."""
    return copy.deepcopy(_document())


# Validation ----------------------------------------------------------------------------------

KNOWN_KEYWORDS = {
    "type", "minimum", "maximum", "minLength", "maxLength", "pattern", "enum", "properties", "required",
    "additionalProperties", "items", "minItems", "maxItems", "default", "description", "format",
}


class SchemaViolation(ValueError):
    """A value that does not match its schema; ``field`` is a path like ``lines[0].sku``."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # ECMA-262 `$` (no multiline) matches only at the very end; Python's also before a final newline.
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "integer":
        # JSON Schema counts 3.0 as an integer (callers convert with int()).
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "string":
        return isinstance(value, str)
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "null":
        return value is None
    raise AssertionError(f"type {expected!r} not supported by the validator")


def check(schema: dict[str, Any], value: Any, field: str) -> None:
    """Raise :class:`SchemaViolation` unless ``value`` matches ``schema`` (the subset used above)."""
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(value, t) for t in allowed):
            raise SchemaViolation(f"must be {' or '.join(allowed)}", field)
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(f"must be one of: {', '.join(map(str, schema['enum']))}", field)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(f"must be at least {schema['minimum']}", field)
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(f"must be at most {schema['maximum']}", field)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise SchemaViolation("must not be empty" if schema["minLength"] == 1
                                  else f"needs at least {schema['minLength']} characters", field)
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaViolation(f"must be at most {schema['maxLength']} characters", field)
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            raise SchemaViolation("contains characters that are not allowed", field)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800" escape
            raise SchemaViolation("is not valid Unicode text", field) from None
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise SchemaViolation(f"needs at least {schema['minItems']} item(s)", field)
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise SchemaViolation(f"takes at most {schema['maxItems']} items", field)
        if "items" in schema:
            for i, item in enumerate(value):
                check(schema["items"], item, f"{field}[{i}]")
    elif isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaViolation("is required", _join(field, name))
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            for name in value:
                if name not in properties:
                    raise SchemaViolation("is not a known field", _join(field, str(name)))
        for name, sub in properties.items():
            if name in value:
                check(sub, value[name], _join(field, name))


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def parse_parameters(op_id: str, query: Any, path: dict[str, str], headers: Any = None) -> dict[str, Any]:
    """The documented parameters of ``op_id`` from a query string (``MultiDict``), the path and
    the headers, converted and checked; defaults filled in, absent optional ones left out."""
    out: dict[str, Any] = {}
    known = {param["name"] for param in PARAMETERS[op_id] if param["in"] == "query"}
    for name in query:
        # Strict on purpose: a misspelt filter (`limt=5`, `suplier=3`) must not silently return
        # everything.
        if name not in known:
            raise SchemaViolation("is not a parameter of this operation", name)
        if len(query.getlist(name)) > 1:
            raise SchemaViolation("may be given only once", name)
    for param in PARAMETERS[op_id]:
        name, schema = param["name"], param["schema"]
        where = param["in"]
        raw = path.get(name) if where == "path" else (headers or {}).get(name) if where == "header" else query.get(name)
        if raw is None:
            if "default" in schema:
                out[name] = schema["default"]
            elif param["required"]:
                raise SchemaViolation("is required", name)
            continue
        value: Any = raw
        if schema.get("type") == "integer":
            # ASCII digits only: int() would also take " 7", "٣" and "1_000".
            if not re.fullmatch(r"-?[0-9]{1,12}", raw):
                raise SchemaViolation("must be an integer", name)
            value = int(raw)
        check(schema, value, name)
        out[name] = value
    return out
