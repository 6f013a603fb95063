"""Outbox delivery: claim due messages, hand them to a dispatcher, record what happened.

Delivery is **at least once**. A message is claimed in a short transaction that is committed
*before* the dispatcher runs (state ``sending``, ``attempts + 1``, ``next_attempt_at`` moved to
the end of a lease), so the slow network call never holds a database lock and two workers never
send the same message while the lease runs. On PostgreSQL the claim is ``SELECT ... FOR UPDATE
SKIP LOCKED``, so concurrent workers take disjoint batches; on SQLite the ``BEGIN IMMEDIATE``
write lock serializes the claims.

If a worker dies between the claim and the mark (killed, OOM, power cut), the message stays in
``sending`` until its lease expires and is then claimed again: it is never lost, but the
receiver may see it twice. That is why every dispatcher passes ``idempotency_key`` on (Message-ID,
``Idempotency-Key`` header) and receivers must deduplicate on it. Exactly-once delivery across a
network is not on offer; at-least-once plus an idempotency key is.

``attempts`` doubles as a fencing token: every mark is conditional on the message still being
``sending`` with the attempt number of our claim, so a worker whose lease ran out cannot
overwrite the outcome of the worker that re-claimed the message.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from connector.db.engine import Database
from connector.db.models import OutboxMessage
from connector.db.uow import UnitOfWork
from connector.errors import DeliveryError, ValidationError
from connector.ports import OutboxDispatcher, OutboxEnvelope

log = logging.getLogger(__name__)

STATES = ("pending", "sending", "sent", "dead", "skipped")
DEFAULT_LEASE = timedelta(minutes=5)
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=6)
# Claim a few messages at a time so a lease covers seconds of work, not a whole slow batch.
CLAIM_BATCH = 10
MAX_ERROR_CHARS = 2000


class NotRetryable(ValidationError):
    """A retry asked for a message that is not dead (pending, sending, sent or skipped)."""

    code = "not_retryable"


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dead: int = 0


def backoff_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with "equal jitter": half the step is fixed, half random.

    ``attempts`` is the number of attempts made so far (>= 1). The step doubles from
    ``BACKOFF_BASE`` and is capped at ``BACKOFF_CAP``; the jitter spreads a burst of failures
    (a store outage) so the retries do not arrive as one wave.
    """
    step = min(BACKOFF_CAP.total_seconds(), BACKOFF_BASE.total_seconds() * 2 ** max(0, attempts - 1))
    r = (rng or random).random()
    return timedelta(seconds=step / 2 + r * step / 2)


def _envelope(m: OutboxMessage) -> OutboxEnvelope:
    return OutboxEnvelope(
        id=m.id,
        shop_id=m.shop_id,
        kind=m.kind,
        target=m.target,
        subject=m.subject,
        payload=dict(m.payload or {}),
        idempotency_key=m.idempotency_key,
        attempts=m.attempts,
        created_at=m.created_at,
    )


def _claim(
    db: Database, shop_id: int, now: datetime, limit: int, lease: timedelta, max_attempts: int
) -> tuple[list[OutboxEnvelope], int]:
    """Claim up to ``limit`` due messages; returns them and how many were declared dead instead.

    Due means ``pending`` with ``next_attempt_at <= now``, or ``sending`` whose lease expired (a
    worker died mid-delivery). A message whose lease expired after its last allowed attempt goes
    to ``dead`` rather than being sent again: a message that kills its worker must not do so
    forever.
    """
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        if not shop.active:
            return [], 0
        rows = uow.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.state.in_(("pending", "sending")), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        claimed: list[OutboxEnvelope] = []
        dead = 0
        for m in rows:
            if m.state == "sending" and m.attempts >= max_attempts:
                m.state = "dead"
                m.last_error = f"lease expired after attempt {m.attempts} (worker died mid-delivery?)"
                dead += 1
                continue
            if m.state == "sending":
                log.warning("outbox message %s of shop %s: lease expired, delivering again", m.id, shop_id)
            m.state = "sending"
            m.attempts += 1
            m.next_attempt_at = now + lease
            claimed.append(_envelope(m))
        uow.commit()
        return claimed, dead


def _mark(db: Database, shop_id: int, message_id: int, claimed_attempts: int, **values: Any) -> bool:
    """Record an outcome if our claim still stands (same attempt, still sending)."""
    with UnitOfWork(db, shop_id) as uow:
        result = uow.session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.state == "sending",
                OutboxMessage.attempts == claimed_attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        uow.commit()
        won = bool(getattr(result, "rowcount", 0))
    if not won:
        log.warning("outbox message %s of shop %s: claim lost before marking %s", message_id, shop_id, values.get("state"))
    return won


def _release(db: Database, shop_id: int, message: OutboxEnvelope, now: datetime) -> None:
    """Give back a claim we will not use (the lease is nearly over): not an attempt."""
    _mark(db, shop_id, message.id, message.attempts, state="pending", attempts=message.attempts - 1, next_attempt_at=now)


def deliver_due(
    db: Database,
    shop_id: int,
    dispatcher: OutboxDispatcher,
    now: datetime,
    limit: int = 100,
    max_attempts: int = 14,
    *,
    lease: timedelta = DEFAULT_LEASE,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Deliver up to ``limit`` due messages of one shop; each outcome is committed on its own.

    The dispatcher runs outside any transaction. ``DeliveryError(retryable=True)`` (or any
    unexpected exception, logged with its traceback) schedules a retry with backoff, or ``dead``
    once ``max_attempts`` is reached; ``DeliveryError(retryable=False)`` goes straight to
    ``dead``. ``last_error`` keeps the reason. Messages of a shop that is not installed are
    left untouched. A ``BaseException`` (SystemExit, KeyboardInterrupt) propagates: the
    messages still claimed are redelivered after their lease.
    """
    if max_attempts < 1:
        raise ValidationError("max_attempts must be >= 1", field="max_attempts")
    sent = retried = dead = 0
    budget = lease.total_seconds() * 0.8
    while sent + retried + dead < limit:
        batch, expired_dead = _claim(db, shop_id, now, min(CLAIM_BATCH, limit - sent - retried - dead), lease, max_attempts)
        dead += expired_dead
        if not batch:
            if expired_dead:
                continue
            break
        claimed_at = time.monotonic()
        for i, message in enumerate(batch):
            if time.monotonic() - claimed_at > budget:
                # Our lease is nearly over: another worker may claim these soon, so do not send.
                for rest in batch[i:]:
                    _release(db, shop_id, rest, now)
                return DeliveryReport(sent, retried, dead)
            outcome = _dispatch(dispatcher, message)
            if outcome is None:
                if _mark(db, shop_id, message.id, message.attempts, state="sent", sent_at=now, last_error=None):
                    sent += 1
                continue
            error, retryable = outcome
            if retryable and message.attempts < max_attempts:
                delay = backoff_delay(message.attempts, rng)
                if _mark(db, shop_id, message.id, message.attempts, state="pending", next_attempt_at=now + delay,
                         last_error=error):
                    retried += 1
            elif _mark(db, shop_id, message.id, message.attempts, state="dead", last_error=error):
                dead += 1
                log.error("outbox message %s (%s) of shop %s is dead after %s attempts: %s",
                          message.id, message.kind, shop_id, message.attempts, error)
    return DeliveryReport(sent, retried, dead)


def _dispatch(dispatcher: OutboxDispatcher, message: OutboxEnvelope) -> tuple[str, bool] | None:
    """Call the dispatcher; None when delivered, else (error text, retryable)."""
    try:
        dispatcher(message)
    except DeliveryError as exc:
        return f"{exc.code}: {exc.message}"[:MAX_ERROR_CHARS], exc.retryable
    except Exception as exc:  # a bug in a dispatcher must not strand the rest of the batch
        log.exception("dispatcher raised for outbox message %s (%s) of shop %s", message.id, message.kind, message.shop_id)
        return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS], True
    return None


def retry_dead(db: Database, shop_id: int, message_id: int, now: datetime) -> dict[str, Any]:
    """Put a dead message back in the queue with a fresh attempt budget (the merchant's button).

    ``last_error`` is kept so the merchant still sees why it died until it is delivered. Any
    other state is :class:`NotRetryable`: a pending or sending message is already queued, a sent
    one would reach the receiver twice, a skipped one was redacted on purpose.
    """
    with UnitOfWork(db, shop_id) as uow:
        message = uow.get(OutboxMessage, message_id)
        if message.state != "dead":
            raise NotRetryable(f"message {message_id} is {message.state}; only dead messages can be retried",
                               field="state", state=message.state)
        message.state = "pending"
        message.attempts = 0
        message.next_attempt_at = now
        uow.commit()
        return message_as_dict(message)


def message_as_dict(m: OutboxMessage, *, include_payload: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": m.id,
        "kind": m.kind,
        "target": m.target,
        "subject": m.subject,
        "state": m.state,
        "attempts": m.attempts,
        "idempotency_key": m.idempotency_key,
        "next_attempt_at": m.next_attempt_at.isoformat() if m.next_attempt_at else None,
        "last_error": m.last_error,
        "created_at": m.created_at.isoformat() if m.created_at else None,
        "sent_at": m.sent_at.isoformat() if m.sent_at else None,
    }
    if include_payload:
        out["payload"] = m.payload
    return out


def list_messages(
    db: Database,
    shop_id: int,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
    *,
    include_payload: bool = False,
) -> list[dict[str, Any]]:
    """A page of a shop's outbox, newest first, as plain dicts for the JSON API."""
    if state is not None and state not in STATES:
        raise ValidationError(f"state must be one of {', '.join(STATES)}", field="state")
    if not 1 <= limit <= 500:
        raise ValidationError("limit must be between 1 and 500", field="limit")
    if offset < 0:
        raise ValidationError("offset must be >= 0", field="offset")
    stmt = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if state is not None:
        stmt = stmt.where(OutboxMessage.state == state)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return [message_as_dict(m, include_payload=include_payload) for m in uow.all(stmt.limit(limit).offset(offset))]


def count_by_state(db: Database, shop_id: int) -> dict[str, int]:
    """How many messages of a shop are in each state (for the dashboard and monitoring)."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows = uow.session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    return {state: int(n) for state, n in rows}


__all__ = [
    "DeliveryReport",
    "NotRetryable",
    "backoff_delay",
    "count_by_state",
    "deliver_due",
    "list_messages",
    "retry_dead",
]
