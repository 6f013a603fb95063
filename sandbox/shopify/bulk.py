"""Bulk operations of the sandbox Shopify: run the query in full, serve the JSONL over HTTP.

``bulkOperationRunQuery`` executes the inner query at once (connections without ``first`` return
everything) and flattens the result the way Shopify does: one JSON row per node, children of a
nested connection as rows carrying ``__parentId``, each after its parent. The operation then
reports RUNNING for ``bulk_polls`` polls of ``currentBulkOperation`` before COMPLETED with a URL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from graphql import GraphQLError, execute_sync, parse
from werkzeug.wrappers import Response

from sandbox.shopify import store
from sandbox.shopify.graph import Root
from sandbox.shopify.schemas import sandbox_schema
from sandbox.shopify.store import Shop

if TYPE_CHECKING:
    from sandbox.shopify.server import SandboxShopify


@dataclass
class BulkOp:
    id: int
    shop: str
    query: str
    status: str
    created_at: datetime
    lines: list[bytes] = field(default_factory=list)
    root_count: int = 0
    polls_left: int = 1
    completed_at: datetime | None = None
    error_code: str | None = None


class BulkOperations:
    """Mixed into :class:`sandbox.shopify.server.SandboxShopify`."""

    bulk_ops: dict[int, BulkOp]
    bulk_polls: int
    base_url: str

    def _validate(self, document: Any, version: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _after_commit(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

    def _emit(self, shop: Shop, topic: str, payload: dict[str, Any]) -> None:
        raise NotImplementedError

    def _start_bulk(self, shop: Shop, query: str) -> dict[str, Any]:
        if any(
            op.shop == shop.domain and op.status in ("CREATED", "RUNNING") for op in self.bulk_ops.values()
        ):
            return {
                "bulkOperation": None,
                "userErrors": [
                    {
                        "field": ["query"],
                        "code": "OPERATION_IN_PROGRESS",
                        "message": "A bulk query operation for this app and shop is already in progress",
                    }
                ],
            }
        try:
            document = parse(query)
        except GraphQLError as exc:
            return {
                "bulkOperation": None,
                "userErrors": [
                    {"field": ["query"], "code": "INVALID", "message": f"Invalid bulk query: {exc.message}"}
                ],
            }
        errors = self._validate(document, "2025-01")
        if errors:
            return {
                "bulkOperation": None,
                "userErrors": [
                    {
                        "field": ["query"],
                        "code": "INVALID",
                        "message": f"Invalid bulk query: {errors[0]['message']}",
                    }
                ],
            }
        result = execute_sync(
            sandbox_schema(), document, root_value=Root(cast("SandboxShopify", self), shop, bulk=True)
        )
        if result.errors or not result.data:
            return {
                "bulkOperation": None,
                "userErrors": [
                    {
                        "field": ["query"],
                        "code": "INVALID",
                        "message": f"Invalid bulk query: {result.errors[0].message if result.errors else 'no data'}",
                    }
                ],
            }
        op = BulkOp(
            id=store.next_id(),
            shop=shop.domain,
            query=query,
            status="CREATED",
            created_at=store.utcnow(),
            polls_left=self.bulk_polls,
        )
        for conn in result.data.values():
            for node in _conn_nodes(conn):
                op.root_count += 1
                _flatten(node, None, op.lines)
        self.bulk_ops[op.id] = op
        return {"bulkOperation": self._bulk_view(op), "userErrors": []}

    def _current_bulk(self, shop: Shop, op_type: str) -> dict[str, Any] | None:
        ops = [op for op in self.bulk_ops.values() if op.shop == shop.domain]
        if op_type != "QUERY" or not ops:
            return None
        op = ops[-1]
        if op.status in ("CREATED", "RUNNING"):
            if op.polls_left > 0:
                op.polls_left -= 1
                op.status = "RUNNING"
            else:
                op.status = "COMPLETED"
                op.completed_at = store.utcnow()
                payload = store.template("bulk_operation")
                payload.update(
                    admin_graphql_api_id=store.gid("BulkOperation", op.id),
                    completed_at=store.iso(op.completed_at),
                    created_at=store.iso(op.created_at),
                    error_code=None,
                    status="completed",
                    type="query",
                )
                self._after_commit(lambda: self._emit(shop, "BULK_OPERATIONS_FINISH", payload))
        return self._bulk_view(op)

    def _bulk_view(self, op: BulkOp) -> dict[str, Any]:
        done = op.status == "COMPLETED"
        return {
            "__typename": "BulkOperation",
            "id": store.gid("BulkOperation", op.id),
            "status": op.status,
            "errorCode": op.error_code,
            "objectCount": str(len(op.lines) if done else 0),
            "rootObjectCount": str(op.root_count if done else 0),
            "fileSize": str(sum(len(line) for line in op.lines)) if done else None,
            "url": f"{self.base_url}/bulk/{op.id}.jsonl" if done and op.lines else None,
            "partialDataUrl": None,
            "createdAt": store.iso(op.created_at),
            "completedAt": store.iso(op.completed_at),
            "query": op.query,
            "type": "QUERY",
        }

    def _bulk_file(self, path: str) -> Response:
        try:
            op = self.bulk_ops[int(path.removeprefix("/bulk/").removesuffix(".jsonl"))]
        except (ValueError, KeyError):
            return Response(json.dumps({"errors": "Not Found"}), status=404, mimetype="application/json")
        lines = list(op.lines)
        return Response((line for line in lines), mimetype="application/jsonl", direct_passthrough=True)


def _conn_nodes(conn: Any) -> list[dict[str, Any]]:
    if not isinstance(conn, dict):
        return []
    if conn.get("edges") is not None:
        return [e["node"] for e in conn["edges"]]
    return list(conn.get("nodes") or [])


def _flatten(node: dict[str, Any], parent_id: str | None, out: list[bytes]) -> None:
    """Shopify's JSONL: a row per node, nested connections become rows with ``__parentId``."""
    row: dict[str, Any] = {}
    children: list[dict[str, Any]] = []
    for key, value in node.items():
        if isinstance(value, dict) and ("edges" in value or "nodes" in value):
            children += _conn_nodes(value)
        else:
            row[key] = value
    if parent_id is not None:
        row["__parentId"] = parent_id
    out.append(json.dumps(row).encode() + b"\n")
    for child in children:
        _flatten(child, node.get("id"), out)
