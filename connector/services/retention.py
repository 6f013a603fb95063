"""Retention: keep webhook payloads and job history only as long as they are useful.

Webhook events are two things at once: a payload (large, personal data, only needed until it
is processed and a little longer for debugging) and a dedupe key (``event_id``, tiny, needed as
long as the platform may redeliver: Shopify retries for 48 hours, WooCommerce less). So the
payload of a processed event is cleared after ``payload_after`` and the row, its key, deleted
after ``rows_after``, which may never be shorter than ``MIN_KEY_RETENTION`` (7 days). Pending and
failed events are never pruned: they still need work or a human.

Job runs are deleted after ``job_runs_after``; a run still ``running`` long after it started
belongs to a worker that died, and is closed as ``failed`` so dashboards stop showing it live.
API ``Idempotency-Key`` records are deleted once they expire (24 hours), and the API's
per-minute request counters an hour after their minute.

Outbox rows are not pruned here: their idempotency keys are what stops a replayed change from
sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, or_, update

from connector.db.engine import Database
from connector.db.models import ApiIdempotencyKey, ApiRateWindow, JobRun, WebhookEvent
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from connector.services.api_queries import IDEMPOTENCY_TTL

MIN_KEY_RETENTION = timedelta(days=7)
DONE_WEBHOOK_STATUSES = ("processed", "ignored")


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    payload_after: timedelta = timedelta(days=14)
    rows_after: timedelta = timedelta(days=14)
    job_runs_after: timedelta = timedelta(days=30)
    abandoned_after: timedelta = timedelta(hours=6)
    rate_windows_after: timedelta = timedelta(hours=1)

    def validate(self) -> None:
        if self.rows_after < MIN_KEY_RETENTION:
            raise ValidationError(
                f"webhook dedupe keys must be kept at least {MIN_KEY_RETENTION.days} days", field="rows_after"
            )
        if self.payload_after > self.rows_after:
            raise ValidationError("payload_after cannot exceed rows_after", field="payload_after")


@dataclass(frozen=True, slots=True)
class RetentionResult:
    payloads_cleared: int
    webhook_rows_deleted: int
    job_runs_deleted: int
    runs_abandoned: int
    idempotency_keys_deleted: int = 0
    rate_windows_deleted: int = 0


def _count(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def prune(db: Database, shop_id: int, now: datetime, policy: RetentionPolicy | None = None) -> RetentionResult:
    """One retention pass for a shop, in one transaction.

    Also prunes the fleet-wide job runs (``shop_id`` NULL): they belong to no shop, the pass is
    idempotent, and it keeps retention a per-shop job like every other.
    """
    policy = policy or RetentionPolicy()
    policy.validate()
    with UnitOfWork(db, shop_id) as uow:
        s = uow.session
        done = WebhookEvent.status.in_(DONE_WEBHOOK_STATUSES)
        deleted = _count(s.execute(
            delete(WebhookEvent)
            .where(done, WebhookEvent.received_at < now - policy.rows_after)
            .execution_options(synchronize_session=False)
        ))
        cleared = _count(s.execute(
            update(WebhookEvent)
            .where(done, WebhookEvent.payload.is_not(None), WebhookEvent.received_at < now - policy.payload_after)
            .values(payload=None)
            .execution_options(synchronize_session=False)
        ))
        ours = or_(JobRun.shop_id == shop_id, JobRun.shop_id.is_(None))
        abandoned = _count(s.execute(
            update(JobRun)
            .where(ours, JobRun.status == "running", JobRun.started_at < now - policy.abandoned_after)
            .values(status="failed", finished_at=now, detail={"error": "abandoned: still running at retention"})
            .execution_options(synchronize_session=False)
        ))
        runs = _count(s.execute(
            delete(JobRun)
            .where(ours, JobRun.started_at < now - policy.job_runs_after)
            .execution_options(synchronize_session=False)
        ))
        keys = _count(s.execute(
            delete(ApiIdempotencyKey)
            .where(ApiIdempotencyKey.created_at <= now - IDEMPOTENCY_TTL)
            .execution_options(synchronize_session=False)
        ))
        windows = _count(s.execute(
            delete(ApiRateWindow)
            .where(ApiRateWindow.window_minute < int((now - policy.rate_windows_after).timestamp() // 60))
            .execution_options(synchronize_session=False)
        ))
        uow.commit()
    return RetentionResult(cleared, deleted, runs, abandoned, keys, windows)
