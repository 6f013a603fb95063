"""The merchant uninstalls while a pull is paging through the store's orders: the pull stops
before its next page request, raises nothing, writes nothing after the uninstall (whole batches
only, the cursor with them), and the shop ends uninstalled without tokens.

The timing is real: the sandbox holds one orders page back (injected latency) and, while that
request is in flight, another thread uninstalls (a signed ``app/uninstalled`` to our server)."""

from __future__ import annotations

import threading
import time

from integration_shopify_helpers import shop_row
from sqlalchemy import func, select

from connector.db.models import SalesOrder, SyncCursor
from connector.db.uow import UnitOfWork
from connector.services.sync import BATCH

PAGE = 18  # adapters.shopify.queries.ORDERS_PAGE_SIZE: the sandbox pages exactly like Shopify
ORDERS = BATCH + 2 * PAGE  # the first batch (100 orders, 6 pages) commits; the pull dies in page 7
REQUESTS_BEFORE_HELD = 3 + 6  # shop { ianaTimezone }, products since, ordersCount; orders pages 1-6


def _orders_held(harness, shop_id: int) -> tuple[int, str | None]:
    with UnitOfWork(harness.db, shop_id, readonly=True) as uow:
        count = uow.session.scalar(select(func.count(SalesOrder.id)))
        cursor = uow.session.scalar(select(SyncCursor.cursor).where(SyncCursor.resource == "orders"))
    return int(count or 0), cursor


def _uninstall_during_the_held_request(harness, uninstall) -> tuple[dict[str, int], threading.Thread]:
    """Hold the 10th GraphQL request (before it: the shop's time zone, products, the orders count
    of a first pull, orders pages 1-6; so the 7th page) and uninstall while it is in flight;
    returns how many requests the sandbox had answered then."""
    sb = harness.sandbox
    sb.delay_next(count=REQUESTS_BEFORE_HELD, seconds=0)
    sb.delay_next(count=1, seconds=1.0)
    seen: dict[str, int] = {}

    def uninstall_when_held() -> None:
        deadline = time.monotonic() + 10
        while sb.faults and time.monotonic() < deadline:  # the held request took the last fault
            time.sleep(0.005)
        uninstall()
        seen["answered"] = len(sb.requests)

    thread = threading.Thread(target=uninstall_when_held, daemon=True)
    thread.start()
    return seen, thread


def _seed(harness) -> None:
    for _ in range(ORDERS):
        harness.sandbox.create_order([{"sku": "MUG-1", "quantity": 1}], notify=False)


def test_an_uninstall_mid_pull_stops_it_before_the_next_page_without_an_error(harness, installed):
    sb = harness.sandbox
    _seed(harness)
    before = _orders_held(harness, installed)
    requests_before = len(sb.requests)
    seen, thread = _uninstall_during_the_held_request(harness, sb.uninstall_app)

    report = harness.pull(installed)  # no exception: a stop, not a failure
    thread.join(5)

    assert report.skipped == "shop was uninstalled during the pull"
    assert report.orders.applied == BATCH  # the first batch, committed before the uninstall
    count, cursor = _orders_held(harness, installed)
    assert count == before[0] + BATCH and cursor is not None
    newest_of_batch = sorted(sb.shop().orders.values(), key=lambda o: (o.updated_at, o.id))[BATCH - 1]
    assert cursor == newest_of_batch.updated_at.isoformat()  # the cursor went only as far as the data
    # the held request came back 401 (Shopify dropped the token) and nothing was asked after it:
    # no second page, no token refresh, no inventory read
    after = sb.requests[seen["answered"]:]
    assert after == [{"status": 401}]
    assert len(sb.requests) - requests_before == REQUESTS_BEFORE_HELD + 1
    assert not [t for t, grant in sb.tokens.items() if grant.shop == harness.shop]
    shop = shop_row(harness.db, installed)
    assert shop.status == "uninstalled" and shop.credentials is None
    # the next scheduled pull does nothing at all
    assert harness.pull(installed).skipped == "shop is uninstalled"
    assert len(sb.requests) - requests_before == REQUESTS_BEFORE_HELD + 1


def test_an_uninstall_that_lands_while_a_page_is_in_flight_voids_that_page(harness, installed):
    """Here Shopify still answers the page in flight (the app/uninstalled delivery outran the
    token's removal): its orders arrive after the uninstall and are not written."""
    sb = harness.sandbox
    _seed(harness)
    requests_before = len(sb.requests)
    seen, thread = _uninstall_during_the_held_request(
        harness, lambda: harness.send("app/uninstalled", {"domain": harness.shop, "id": sb.shop().id}))

    report = harness.pull(installed)
    thread.join(5)

    assert report.skipped == "shop was uninstalled during the pull"
    assert report.orders.applied == BATCH
    assert _orders_held(harness, installed)[0] == BATCH
    answered = sb.requests[seen["answered"]:]
    assert [r["status"] for r in answered] == [200]  # the page in flight, and no request after it
    assert len(sb.requests) - requests_before == REQUESTS_BEFORE_HELD + 1
    shop = shop_row(harness.db, installed)
    assert shop.status == "uninstalled" and shop.credentials is None
