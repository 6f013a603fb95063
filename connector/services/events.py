"""Collect what customers, storefronts and suppliers must hear of, and write it to the outbox
in the same transaction as the change (so a crash can neither lose nor invent a message).

Line-level events are grouped into one message per order and kind: a customer gets one
e-mail covering all the lines that changed, never one per line.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.db.models import OutboxMessage

# Who hears of each kind of event.
TARGETS = {
    "backordered": "customer",
    "preorder": "customer",
    "dropship": "customer",
    "oversold": "merchant",
    "delayed": "customer",
    "allocated": "customer",
    "eta_changed": "storefront",
    "po_ready": "merchant",
    "purchase_order": "supplier",
    "stock_short": "merchant",
    "dropship_forward": "supplier",
    "fulfil_dropship": "storefront",
    "cancellation_requested": "merchant",
    "customer_data_report": "merchant",
    # Customer communication: lines shipped (dropship tracking, or the store reporting the order
    # fulfilled), the store's own cancel + refund, the thirty-day notice's answers and outcome.
    "shipped": "customer",
    "store_cancellation": "storefront",
    "store_cancellation_failed": "merchant",
    "wait_consent": "merchant",
    "auto_cancelled": "customer",
}


@dataclass
class Changes:
    """Events raised during one unit of work, flushed to the outbox before commit."""

    now: datetime
    line_events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    other: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    touched_lines: set[int] = field(default_factory=set)
    # Why dates move in this unit of work (a supplier's or merchant's words), told to customers.
    reason: str | None = None

    def line(self, kind: str, order_external_id: str, **data: Any) -> None:
        self.line_events[(kind, order_external_id)].append(data)

    def event(self, kind: str, subject: str | None, **payload: Any) -> None:
        self.other.append((kind, subject, payload))

    def touch(self, line_id: int) -> None:
        self.touched_lines.add(line_id)


def _key(kind: str, subject: str | None, payload: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"{kind}:{subject or '-'}:{digest}"


def flush(session: Session, shop_id: int, changes: Changes) -> int:
    """Write the collected events as outbox messages; returns how many were written.

    The idempotency key is derived from the content, so replaying the same change (a duplicate
    webhook processed twice, a retried job) finds the message already there. Written in bulk:
    a consolidation of a large backlog can raise tens of thousands of events at once.
    """
    rows: list[tuple[str, str | None, dict[str, Any]]] = []
    for (kind, order), lines in sorted(changes.line_events.items()):
        rows.append((kind, order, {"order": order, "lines": lines}))
    rows.extend(changes.other)
    changes.line_events.clear()
    changes.other.clear()
    if not rows:
        return 0
    keyed = {_key(kind, subject, payload): (kind, subject, payload) for kind, subject, payload in rows}
    keys = list(keyed)
    existing: set[str] = set()
    for i in range(0, len(keys), 5_000):
        existing.update(
            session.scalars(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.shop_id == shop_id, OutboxMessage.idempotency_key.in_(keys[i : i + 5_000])
                )
            )
        )
    new = [
        {
            "shop_id": shop_id,
            "kind": kind,
            "target": TARGETS.get(kind, "merchant"),
            "subject": subject,
            "payload": payload,
            "idempotency_key": key,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": changes.now,
            "created_at": changes.now,
        }
        for key, (kind, subject, payload) in keyed.items()
        if key not in existing
    ]
    if new:
        session.connection().execute(insert(OutboxMessage), new)
    return len(new)
