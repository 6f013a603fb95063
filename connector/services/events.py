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

from sqlalchemy import select
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
}


@dataclass
class Changes:
    """Events raised during one unit of work, flushed to the outbox before commit."""

    now: datetime
    line_events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    other: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    touched_lines: set[int] = field(default_factory=set)

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
    webhook processed twice, a retried job) finds the message already there.
    """
    rows: list[tuple[str, str | None, dict[str, Any]]] = []
    for (kind, order), lines in sorted(changes.line_events.items()):
        rows.append((kind, order, {"order": order, "lines": lines}))
    rows.extend(changes.other)
    written = 0
    for kind, subject, payload in rows:
        key = _key(kind, subject, payload)
        exists = session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.shop_id == shop_id, OutboxMessage.idempotency_key == key)
        )
        if exists is not None:
            continue
        session.add(
            OutboxMessage(
                shop_id=shop_id,
                kind=kind,
                target=TARGETS.get(kind, "merchant"),
                subject=subject,
                payload=payload,
                idempotency_key=key,
                next_attempt_at=changes.now,
                created_at=changes.now,
            )
        )
        written += 1
    changes.line_events.clear()
    changes.other.clear()
    return written
