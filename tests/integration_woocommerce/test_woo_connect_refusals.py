"""Connecting refuses what it cannot trust, and saves nothing when it refuses; the pull survives
a 429 storm without losing an order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from itsdangerous import TimestampSigner
from woo_integration_helpers import SECRET_KEY, csrf_from

from connector.db.models import Shop
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderRecord
from connector.errors import ThrottledError
from connector.services.woo_connect import make_connect_token
from sandbox.woocommerce import ApiKey


def _shops(live: Any) -> int:
    with UnitOfWork(live.db, readonly=True) as uow:
        return uow.session.query(Shop).count()


def _paste(live: Any, store_url: str, key: str, secret: str) -> requests.Response:
    browser = requests.Session()
    form = browser.get(f"{live.url}/woocommerce/keys", timeout=10)
    return browser.post(f"{live.url}/woocommerce/keys", timeout=20, data={
        "csrf_token": csrf_from(form.text), "store_url": store_url, "consumer_key": key, "consumer_secret": secret,
    })


def _callback(live: Any, user_id: str, key: str, secret: str) -> requests.Response:
    body = {"key_id": 9, "user_id": user_id, "consumer_key": key, "consumer_secret": secret,
            "key_permissions": "read_write"}
    return requests.post(f"{live.url}/woocommerce/callback", data=json.dumps(body),
                         headers={"Content-Type": "application/json"}, timeout=20)


def test_wrong_keys_are_refused_with_a_clear_message(live: Any) -> None:
    sandbox = live.sandbox
    wrong = _paste(live, sandbox.base_url, sandbox.consumer_key, "cs_" + "0" * 40)
    assert wrong.status_code == 400 and "WooCommerce refused these keys" in wrong.text
    unknown = _paste(live, sandbox.base_url, "ck_" + "1" * 40, "cs_" + "2" * 40)
    assert unknown.status_code == 400 and "refused these keys" in unknown.text
    garbage = _paste(live, sandbox.base_url, "hello", "world")
    assert garbage.status_code == 400 and "start with ck_" in garbage.text
    insecure = _paste(live, "http://shop.example", sandbox.consumer_key, sandbox.consumer_secret)
    assert insecure.status_code == 400 and "https" in insecure.text

    sandbox.keys["ck_readonly"] = ApiKey(key_id=5, user_id=1, secret="cs_readonly", permissions="read")
    read_only = _paste(live, sandbox.base_url, "ck_readonly", "cs_readonly")
    assert read_only.status_code == 400 and "Read/Write" in read_only.text

    no_csrf = requests.post(f"{live.url}/woocommerce/keys", timeout=10, data={
        "store_url": sandbox.base_url, "consumer_key": sandbox.consumer_key,
        "consumer_secret": sandbox.consumer_secret})
    assert no_csrf.status_code == 400

    assert _shops(live) == 0 and sandbox.webhooks == {}


def test_rest_api_disabled_is_explained(live: Any) -> None:
    live.sandbox.rest_api_enabled = False
    answer = _paste(live, live.sandbox.base_url, live.sandbox.consumer_key, live.sandbox.consumer_secret)
    assert answer.status_code == 400 and "REST API is not reachable" in answer.text and "permalinks" in answer.text
    assert _shops(live) == 0


def test_forged_or_expired_callbacks_are_refused(live: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = live.sandbox
    key, secret = sandbox.consumer_key, sandbox.consumer_secret  # working keys: only the user_id is wrong

    assert _callback(live, "42", key, secret).status_code == 403
    foreign = make_connect_token("some-other-app-secret", sandbox.base_url)
    assert _callback(live, foreign, key, secret).status_code == 403
    genuine = make_connect_token(SECRET_KEY, sandbox.base_url)
    altered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")
    assert _callback(live, altered, key, secret).status_code == 403
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 3600)
        expired = make_connect_token(SECRET_KEY, sandbox.base_url)
    answer = _callback(live, expired, key, secret)
    assert answer.status_code == 403 and "expired" in answer.json()["error"]["message"]
    assert _callback(live, genuine, "ck_" + "3" * 40, "cs_" + "4" * 40).status_code == 400  # keys fail the test call
    malformed = requests.post(f"{live.url}/woocommerce/callback", data=b"{not json", timeout=10)
    assert malformed.status_code == 400
    assert _shops(live) == 0 and sandbox.webhooks == {}

    forged_return = requests.get(f"{live.url}/woocommerce/return", params={"success": "1", "user_id": "42"},
                                 timeout=10)
    assert forged_return.status_code == 400 and "Store connected" not in forged_return.text


def test_declined_authorization_saves_nothing(live: Any) -> None:
    live.sandbox.auth_approves = False
    page = live.connect()
    assert page.status_code == 200 and "did not approve" in page.text
    assert _shops(live) == 0


def test_callback_with_valid_token_connects(live: Any) -> None:
    """The token in the authorize URL is what the callback accepts (no browser involved)."""
    start = requests.get(f"{live.url}/woocommerce/connect", params={"store_url": live.sandbox.base_url},
                         allow_redirects=False, timeout=10)
    user_id = parse_qs(urlsplit(start.headers["Location"]).query)["user_id"][0]
    answer = _callback(live, user_id, live.sandbox.consumer_key, live.sandbox.consumer_secret)
    assert answer.status_code == 200 and answer.json()["status"] == "connected"
    assert _shops(live) == 1


class _StormAfter:
    """A storefront whose order listing meets a 429 storm once ``after`` orders were read."""

    def __init__(self, inner: Any, sandbox: Any, after: int, attempts: int) -> None:
        self.inner, self.sandbox, self.after, self.attempts = inner, sandbox, after, attempts

    def fetch_products(self) -> Any:
        return self.inner.fetch_products()

    def fetch_inventory_levels(self) -> Any:
        return self.inner.fetch_inventory_levels()

    def push_variants(self, pushes: Any) -> None:
        raise AssertionError("a pull pushes nothing")

    def push_orders(self, pushes: Any) -> None:
        raise AssertionError("a pull pushes nothing")

    def fetch_orders_since(self, since: datetime | None) -> Iterator[OrderRecord]:
        for n, record in enumerate(self.inner.fetch_orders_since(since), start=1):
            yield record
            if n == self.after:
                self.sandbox.fail_next(self.attempts, 429, retry_after="0")


def test_429_storm_during_pull_loses_nothing(live: Any, catalogue: dict[str, Any]) -> None:
    from connector.services.sync import pull_store

    live.connect()
    sandbox = live.sandbox
    sandbox.deliver_webhooks = False  # only the pull can bring these
    ids = [sandbox.create_order([(catalogue["widget"]["id"], 1)])["id"] for _ in range(150)]

    # A short storm is waited out (Retry-After honoured), a long one stops the pull...
    sandbox.fail_next(3, 429, retry_after="2")
    shop_id = live.shop_id()
    with UnitOfWork(live.db, shop_id, readonly=True) as uow:
        storefront = live.gateway.storefront_for(uow.shop())
    stormy = _StormAfter(storefront, sandbox, after=100, attempts=5)  # 5 = every attempt of one call
    with pytest.raises(ThrottledError):
        pull_store(live.db, shop_id, stormy, datetime.now().astimezone())
    assert live.sleeps[:3] == [2.0, 2.0, 2.0]
    assert len(set(live.orders()) & {str(i) for i in ids}) == 100  # the first batch was committed

    # ...and the next pull resumes from the cursor: every order exactly once.
    live.pull()
    orders = live.orders()
    assert {str(i) for i in ids} <= set(orders)
    backordered = sum(o["lines"]["WIDGET"][2] for o in orders.values() if "WIDGET" in o["lines"])
    allocated = sum(o["lines"]["WIDGET"][1] for o in orders.values() if "WIDGET" in o["lines"])
    assert (allocated, backordered) == (2, 148)
