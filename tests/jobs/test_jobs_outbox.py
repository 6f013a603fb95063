"""Outbox delivery on SQLite and PostgreSQL: sent, retried with backoff, dead, revived, held."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from jobs_support import T0, RecordingDispatcher, add_message, add_shop, message, retryable

from connector.db.engine import Database
from connector.errors import DeliveryError, ValidationError
from connector.services.outbox import (
    BACKOFF_CAP,
    DEFAULT_LEASE,
    backoff_delay,
    count_by_state,
    deliver_due,
    list_messages,
    retry_dead,
)


def test_due_message_is_sent_once_with_its_idempotency_key(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    later = add_message(db, shop, "k2", now=T0 + timedelta(hours=1))
    dispatcher = RecordingDispatcher()

    report = deliver_due(db, shop, dispatcher, T0)

    assert (report.sent, report.retried, report.dead) == (1, 0, 0)
    assert dispatcher.keys() == ["k1"] and dispatcher.delivered[0].shop_id == shop
    m = message(db, shop, mid)
    assert (m.state, m.attempts, m.sent_at, m.last_error) == ("sent", 1, T0, None)
    assert message(db, shop, later).state == "pending"
    assert deliver_due(db, shop, dispatcher, T0).sent == 0  # nothing sent twice


def test_retryable_failure_is_retried_after_a_jittered_exponential_backoff(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [retryable(), retryable()]})

    assert deliver_due(db, shop, dispatcher, T0).retried == 1
    first = message(db, shop, mid)
    assert first.state == "pending" and first.attempts == 1 and "503" in (first.last_error or "")
    assert timedelta(seconds=15) <= first.next_attempt_at - T0 <= timedelta(seconds=30)
    assert deliver_due(db, shop, dispatcher, T0 + timedelta(seconds=10)).retried == 0  # not due yet

    second_at = first.next_attempt_at
    assert deliver_due(db, shop, dispatcher, second_at).retried == 1
    second = message(db, shop, mid)
    assert timedelta(seconds=30) <= second.next_attempt_at - second_at <= timedelta(seconds=60)

    assert deliver_due(db, shop, dispatcher, second.next_attempt_at).sent == 1
    assert message(db, shop, mid).attempts == 3 and dispatcher.keys() == ["k1"]


def test_backoff_doubles_and_is_capped() -> None:
    rng = random.Random(7)
    for attempts in range(1, 30):
        delay = backoff_delay(attempts, rng)
        step = min(BACKOFF_CAP, timedelta(seconds=30 * 2 ** (attempts - 1)))
        assert step / 2 <= delay <= step
    assert backoff_delay(40, rng) <= BACKOFF_CAP


def test_message_is_dead_after_max_attempts_and_keeps_its_last_error(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [retryable(f"fail {i}") for i in range(5)]})
    now = T0
    outcomes = []
    for _ in range(3):
        outcomes.append(deliver_due(db, shop, dispatcher, now, max_attempts=3))
        now = message(db, shop, mid).next_attempt_at
    assert [(r.retried, r.dead) for r in outcomes] == [(1, 0), (1, 0), (0, 1)]
    m = message(db, shop, mid)
    assert m.state == "dead" and m.attempts == 3 and "fail 2" in (m.last_error or "")
    assert deliver_due(db, shop, dispatcher, now + timedelta(days=1)).dead == 0  # stays dead


def test_non_retryable_failure_goes_straight_to_dead(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [DeliveryError("no such mailbox", retryable=False)]})
    assert deliver_due(db, shop, dispatcher, T0).dead == 1
    m = message(db, shop, mid)
    assert (m.state, m.attempts) == ("dead", 1) and "no such mailbox" in (m.last_error or "")


def test_a_dispatcher_bug_is_retried_and_does_not_strand_the_batch(db: Database) -> None:
    shop = add_shop(db, "a")
    add_message(db, shop, "k1")
    add_message(db, shop, "k2")
    dispatcher = RecordingDispatcher(failures={"k1": [KeyError("boom")]})
    report = deliver_due(db, shop, dispatcher, T0)
    assert (report.sent, report.retried) == (1, 1) and dispatcher.keys() == ["k2"]


def test_retry_dead_requeues_with_a_fresh_budget(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [DeliveryError("rejected", retryable=False)]})
    deliver_due(db, shop, dispatcher, T0)
    later = T0 + timedelta(hours=2)

    revived = retry_dead(db, shop, mid, later)

    assert revived["state"] == "pending" and revived["attempts"] == 0 and revived["last_error"]
    assert deliver_due(db, shop, dispatcher, later).sent == 1
    with pytest.raises(ValidationError):
        retry_dead(db, shop, mid, later)  # sent, not dead


def test_retry_dead_cannot_reach_another_shops_message(db: Database) -> None:
    from connector.errors import NotFound

    a, b = add_shop(db, "a"), add_shop(db, "b")
    mid = add_message(db, a, "k1")
    with pytest.raises(NotFound):
        retry_dead(db, b, mid, T0)


def test_messages_of_an_uninstalled_shop_are_not_delivered(db: Database) -> None:
    gone = add_shop(db, "gone", status="uninstalled")
    mid = add_message(db, gone, "k1")
    dispatcher = RecordingDispatcher()
    assert deliver_due(db, gone, dispatcher, T0) == deliver_due(db, gone, dispatcher, T0 + timedelta(days=1))
    assert dispatcher.delivered == [] and message(db, gone, mid).state == "pending"


def test_crash_between_claim_and_mark_redelivers_once_after_the_lease(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [SystemExit(1)]})

    with pytest.raises(SystemExit):
        deliver_due(db, shop, dispatcher, T0)

    m = message(db, shop, mid)
    assert m.state == "sending" and m.next_attempt_at == T0 + DEFAULT_LEASE
    assert deliver_due(db, shop, dispatcher, T0 + timedelta(minutes=1)).sent == 0  # lease still held
    report = deliver_due(db, shop, dispatcher, T0 + DEFAULT_LEASE)
    assert report.sent == 1 and dispatcher.keys() == ["k1"]
    assert deliver_due(db, shop, dispatcher, T0 + DEFAULT_LEASE * 3).sent == 0
    assert message(db, shop, mid).attempts == 2


def test_a_message_that_kills_its_worker_every_time_ends_dead(db: Database) -> None:
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [SystemExit(1), SystemExit(1)]})
    now = T0
    for _ in range(2):
        with pytest.raises(SystemExit):
            deliver_due(db, shop, dispatcher, now, max_attempts=2)
        now += DEFAULT_LEASE
    assert deliver_due(db, shop, dispatcher, now, max_attempts=2).dead == 1
    m = message(db, shop, mid)
    assert m.state == "dead" and "lease expired" in (m.last_error or "")


def test_killed_worker_process_loses_nothing(db: Database, tmp_path: object) -> None:
    """A real process dies (os._exit) inside the dispatcher; the next worker delivers after the lease."""
    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    script = textwrap.dedent(
        f"""
        import os
        from datetime import datetime, UTC
        from connector import crypto
        from connector.config import DEMO_FERNET_KEY
        from connector.db.engine import Database
        from connector.services.outbox import deliver_due
        crypto.configure_cipher([DEMO_FERNET_KEY])
        deliver_due(Database({db.url!r}), {shop}, lambda m: os._exit(9), datetime.fromisoformat({T0.isoformat()!r}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    assert message(db, shop, mid).state == "sending"
    dispatcher = RecordingDispatcher()
    assert deliver_due(db, shop, dispatcher, T0 + DEFAULT_LEASE).sent == 1
    assert dispatcher.keys() == ["k1"]


def test_list_messages_pages_newest_first_and_filters_by_state(db: Database) -> None:
    shop, other = add_shop(db, "a"), add_shop(db, "b")
    for i in range(5):
        add_message(db, shop, f"k{i}", now=T0 + timedelta(minutes=i))
    add_message(db, other, "theirs")
    deliver_due(db, shop, RecordingDispatcher(), T0 + timedelta(minutes=1))

    page = list_messages(db, shop, limit=2, offset=1)
    assert [m["idempotency_key"] for m in page] == ["k3", "k2"]
    assert {m["idempotency_key"] for m in list_messages(db, shop, state="sent")} == {"k0", "k1"}
    assert "payload" not in page[0] and list_messages(db, shop, limit=1, include_payload=True)[0]["payload"]
    assert count_by_state(db, shop) == {"pending": 3, "sent": 2}
    with pytest.raises(ValidationError):
        list_messages(db, shop, state="bogus")


def test_claims_left_when_the_lease_runs_short_are_given_back_unsent(db: Database) -> None:
    import time

    shop = add_shop(db, "a")
    ids = [add_message(db, shop, f"k{i}") for i in range(3)]

    def slow(message: object) -> None:
        time.sleep(0.05)

    report = deliver_due(db, shop, slow, T0, lease=timedelta(milliseconds=20))

    assert report.sent == 1
    rest = [message(db, shop, mid) for mid in ids[1:]]
    assert [(m.state, m.attempts, m.next_attempt_at) for m in rest] == [("pending", 0, T0)] * 2


def test_concurrent_workers_never_send_a_message_twice(db: Database) -> None:
    """Four workers deliver one shop's outbox at once, without the per-shop lock: PostgreSQL
    claims disjoint batches (SKIP LOCKED + lease), SQLite serializes claims on its write lock."""
    import threading
    import time
    shop = add_shop(db, "busy")
    for i in range(60):
        add_message(db, shop, f"k{i:02d}")
    dispatcher = RecordingDispatcher()

    def slow(message: object) -> None:
        time.sleep(0.002)
        dispatcher(message)  # type: ignore[arg-type]

    reports = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        reports.append(deliver_due(db, shop, slow, T0, limit=100))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sorted(dispatcher.keys()) == [f"k{i:02d}" for i in range(60)]  # each exactly once
    assert sum(r.sent for r in reports) == 60
    assert sum(1 for r in reports if r.sent) >= 2  # the work really was shared
    assert count_by_state(db, shop) == {"sent": 60}


def test_the_default_retry_budget_keeps_a_message_waiting_about_a_day() -> None:
    from connector.config import Settings

    attempts = Settings().outbox_max_attempts
    # The waits between attempts with the jitter at its lowest (half a step) and at its highest
    # (test_backoff_doubles_and_is_capped holds backoff_delay to these bounds).
    shortest = sum((_step(a) / 2 for a in range(1, attempts)), timedelta())
    longest = sum((_step(a) for a in range(1, attempts)), timedelta())
    assert timedelta(hours=12) <= shortest and longest <= timedelta(hours=30), (shortest, longest)


def _step(attempts: int) -> timedelta:
    return min(BACKOFF_CAP, timedelta(seconds=30 * 2 ** (attempts - 1)))


def test_the_deliver_outbox_job_gives_up_after_the_configured_attempts(db: Database) -> None:
    from connector.config import Settings
    from jobs.registry import JobContext, deliver_outbox

    shop = add_shop(db, "a")
    mid = add_message(db, shop, "k1")
    dispatcher = RecordingDispatcher(failures={"k1": [retryable(f"fail {i}") for i in range(5)]})
    ctx = JobContext(db=db, settings=Settings(demo=True, outbox_max_attempts=2), dispatcher_factory=lambda _s: dispatcher)
    first = deliver_outbox(ctx, shop, T0)
    second = deliver_outbox(ctx, shop, message(db, shop, mid).next_attempt_at)
    assert (first["retried"], first["dead"], second["dead"]) == (1, 0, 1)
    assert message(db, shop, mid).attempts == 2
