"""Retention: processed webhook payloads and rows go, dedupe keys stay long enough, old runs go."""

from __future__ import annotations

from datetime import timedelta

import pytest
from jobs_support import T0, add_shop, fetch
from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import JobRun, WebhookEvent
from connector.db.uow import UnitOfWork
from connector.errors import ValidationError
from connector.services.retention import RetentionPolicy, prune


def _event(uow: UnitOfWork, event_id: str, age: timedelta, status: str = "processed") -> None:
    uow.add(WebhookEvent(platform="shopify", topic="orders/updated", event_id=event_id, payload='{"id": 1}',
                         received_at=T0 - age, processed_at=T0 - age if status == "processed" else None,
                         status=status))


def test_processed_events_lose_payload_and_row_after_their_retention(db: Database) -> None:
    shop, other = add_shop(db, "a"), add_shop(db, "b")
    with UnitOfWork(db, shop) as uow:
        _event(uow, "fresh", timedelta(days=1))
        _event(uow, "week", timedelta(days=8))
        _event(uow, "old", timedelta(days=15))
        _event(uow, "old-failed", timedelta(days=40), status="failed")
        _event(uow, "old-pending", timedelta(days=40), status="pending")
        uow.commit()
    with UnitOfWork(db, other) as uow:
        _event(uow, "theirs", timedelta(days=40))
        uow.commit()

    result = prune(db, shop, T0, RetentionPolicy(payload_after=timedelta(days=7), rows_after=timedelta(days=14)))

    assert (result.payloads_cleared, result.webhook_rows_deleted) == (1, 1)
    events = {e.event_id: e for e in fetch(db, select(WebhookEvent), shop)}
    assert set(events) == {"fresh", "week", "old-failed", "old-pending"}
    assert events["fresh"].payload and events["week"].payload is None
    assert events["old-failed"].payload and events["old-pending"].payload  # still need work
    with UnitOfWork(db, other, readonly=True) as uow:
        assert len(uow.all(select(WebhookEvent))) == 1  # another shop's rows untouched


def test_dedupe_keys_cannot_be_kept_less_than_seven_days(db: Database) -> None:
    shop = add_shop(db, "a")
    with pytest.raises(ValidationError):
        prune(db, shop, T0, RetentionPolicy(payload_after=timedelta(days=1), rows_after=timedelta(days=3)))


def test_old_job_runs_are_pruned_and_abandoned_runs_closed(db: Database) -> None:
    shop = add_shop(db, "a")
    with UnitOfWork(db) as uow:
        uow.add(JobRun(shop_id=shop, job="consolidate", started_at=T0 - timedelta(days=40), status="ok"))
        uow.add(JobRun(shop_id=None, job="consolidate", started_at=T0 - timedelta(days=40), status="ok"))
        uow.add(JobRun(shop_id=shop, job="consolidate", started_at=T0 - timedelta(days=2), status="running"))
        uow.add(JobRun(shop_id=shop, job="consolidate", started_at=T0 - timedelta(minutes=5), status="running"))
        uow.commit()
    result = prune(db, shop, T0)
    assert (result.job_runs_deleted, result.runs_abandoned) == (2, 1)
    runs = fetch(db, select(JobRun).order_by(JobRun.started_at))
    assert [r.status for r in runs] == ["failed", "running"]
