"""A store outage seen from the outbox: the sandbox Shopify answers 500 and 429 for a while.

The whole product runs as ``backorders serve`` wires it (``bootstrap.demo.DemoWorld``: the
runtime, the web app over loopback HTTP, the sandbox stores, the SMTP sink). Orders come in as
signed webhooks; the ``deliver_outbox`` job pushes to the store with the real dispatcher. While
the store fails, the storefront pushes wait (``pending``, attempts growing, the error recorded)
and the merchant sees them through the JSON API; when it recovers every push arrives exactly
once. A push that outlives its last attempt is ``dead``, shown by the API, and a retry through
the API delivers it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from adapters.shopify.gateway import ShopifyGateway
from bootstrap.demo import DemoWorld
from connector.db.engine import Database
from connector.services.accounts import create_api_token
from jobs.runner import run_job_for_shop

PAST_ANY_BACKOFF = timedelta(hours=7)  # the backoff is capped at 6 hours


class Outage:
    """The world, its Shopify shop, an API token and the simulated clock of the delivery job."""

    def __init__(self, world: DemoWorld) -> None:
        self.world = world
        self.sb = world.shopify
        # Every GraphQL call of an outage fails: the pushes cannot get through whatever the
        # client's own retries do. The bucket is large so only the injected faults interfere.
        self.sb.set_rate_limit(bucket_size=100_000, restore_rate=100_000)
        self.sb.create_product("Oak chair", [{"sku": "CHAIR", "price": 12000, "available": 0,
                                               "inventory_policy": "continue"}])
        self.shop_id = world.install_shopify()
        # The same gateway `build_runtime` makes, with the client's in-call back-off shortened
        # (0.5 s .. 8 s by default) so the test waits milliseconds, not minutes, per attempt.
        s = world.settings
        world.rt.shopify = ShopifyGateway(s.shopify_api_key, s.shopify_api_secret, s.shopify_api_version,
                                          lambda _shop: self.sb.base_url, max_bytes=s.webhook_max_bytes,
                                          timeout=5, client_options={"backoff_base": 0.005, "backoff_cap": 0.02})
        _, token = create_api_token(world.rt.db, self.shop_id, "ops", datetime.now(UTC))
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {token}"
        self.now = datetime.now(UTC)
        self.orders: list[Any] = []

    def order(self, n: int) -> list[str]:
        """``n`` orders past stock, delivered as signed webhooks and processed."""
        new = [self.sb.create_order([{"sku": "CHAIR", "quantity": 2}], email=f"c{len(self.orders) + i}@example.com",
                                    first_name="C", last_name=str(i)) for i in range(n)]
        self.orders.extend(new)
        self.world.settle([self.shop_id], self.now)
        return [str(o.id) for o in new]

    def down(self, status: int) -> None:
        with self.sb.lock:
            self.sb.faults.clear()
        self.sb.fail_next(1_000_000, status)

    def up(self) -> None:
        with self.sb.lock:
            self.sb.faults.clear()

    def deliver(self) -> dict[str, Any]:
        outcome = run_job_for_shop(self.world.rt.job_ctx, "deliver_outbox", self.shop_id, self.now)
        assert outcome.status == "ok", outcome
        self.now += PAST_ANY_BACKOFF
        return outcome.detail

    def outbox(self, state: str) -> dict[str, dict[str, Any]]:
        """Storefront messages in ``state`` through the JSON API, by subject (the order id)."""
        r = self.api.get(f"{self.world.url}/api/v1/outbox", params={"state": state, "limit": "200"}, timeout=10)
        assert r.status_code == 200, r.text
        return {m["subject"]: m for m in r.json()["data"] if m["target"] == "storefront"}

    def tagged(self) -> set[str]:
        return {str(o.id) for o in self.orders if "backordered" in self.sb.shop().orders[o.id].tags}

    def successful(self, since: int) -> Counter[str]:
        return Counter(r["operation"] for r in self.sb.requests[since:] if r.get("status") == 200 and "operation" in r)


@pytest.fixture
def outage(db: Database) -> Iterator[Outage]:
    world = DemoWorld(0, db.url)
    world.rt.kick_enabled = False  # webhooks are processed by `settle`, at known moments
    try:
        yield Outage(world)
    finally:
        world.close()


def test_pushes_wait_through_500s_and_429s_and_arrive_exactly_once_after(outage: Outage) -> None:
    subjects = outage.order(3)
    start = len(outage.sb.requests)

    for attempt, status in enumerate((500, 429, 500), start=1):
        outage.down(status)
        outage.deliver()
        waiting = outage.outbox("pending")
        assert set(waiting) == set(subjects)
        for message in waiting.values():
            assert message["kind"] == "eta_changed" and message["attempts"] == attempt
            assert str(status) in (message["last_error"] or ""), message
            assert message["next_attempt_at"] is not None
    assert outage.successful(start) == Counter(), "a push got through during the outage"
    assert outage.tagged() == set()
    assert outage.outbox("dead") == {}
    # The customer e-mails do not wait for the store: one each, already out.
    assert len(outage.world.sink.messages) == 3

    outage.up()
    recovered = len(outage.sb.requests)
    outage.deliver()

    sent = outage.outbox("sent")
    assert set(sent) == set(subjects) and outage.outbox("pending") == {}
    assert {m["attempts"] for m in sent.values()} == {4}
    assert all(m["last_error"] is None and m["sent_at"] for m in sent.values())
    assert outage.tagged() == set(subjects)
    assert outage.successful(recovered)["TagsAdd"] == 3  # one tag push per order: none twice
    again = len(outage.sb.requests)
    assert outage.deliver()["sent"] == 0 and len(outage.sb.requests) == again  # nothing left to send
    ids = [m["Message-ID"] for m in outage.world.sink.messages]
    assert len(ids) == 3 == len(set(ids))


def test_a_push_that_outlives_its_attempts_is_dead_shown_and_delivered_after_a_retry(outage: Outage) -> None:
    (subject,) = outage.order(1)
    outage.down(429)
    max_attempts = outage.world.settings.outbox_max_attempts  # what the deliver_outbox job passes
    assert max_attempts == 14  # the default: about a day of backoff before a message is dead

    for attempt in range(1, max_attempts + 1):
        detail = outage.deliver()
        assert detail["dead"] == (1 if attempt == max_attempts else 0), (attempt, detail)

    assert outage.outbox("pending") == {}
    dead = outage.outbox("dead")[subject]
    assert dead["attempts"] == max_attempts and "429" in dead["last_error"] and dead["next_attempt_at"] is None
    # Retrying while the store is still down just gets it dead again later; retry once it is up.
    outage.up()
    before = len(outage.sb.requests)

    r = outage.api.post(f"{outage.world.url}/api/v1/outbox/{dead['id']}/retry", timeout=10)

    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["attempts"]) == ("pending", 0)
    assert len(outage.sb.requests) == before  # the retry only queues; the job delivers
    assert outage.deliver()["sent"] == 1
    sent = outage.outbox("sent")[subject]
    assert (sent["id"], sent["attempts"], sent["last_error"]) == (dead["id"], 1, None)
    assert outage.tagged() == {subject}
    assert outage.successful(before)["TagsAdd"] == 1
    again = outage.api.post(f"{outage.world.url}/api/v1/outbox/{dead['id']}/retry", timeout=10)
    assert again.status_code == 422 and again.json()["error"]["code"] == "not_retryable"
