"""WooClient over real HTTP with the real ``woocommerce`` package against the sandbox."""

from __future__ import annotations

import math
import socket

import pytest

from adapters.woocommerce.client import WooClient, batch_errors
from connector.errors import AuthError, PlatformError, ThrottledError, ValidationError
from sandbox.woocommerce import SandboxWoo


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example",
        "ftp://shop.example",
        "shop.example",
        "",
        "https://user:pw@shop.example",
        "http://10.0.0.5",
    ],
)
def test_store_urls_must_be_https_unless_loopback(url):
    with pytest.raises(ValidationError) as caught:
        WooClient(url, "ck_x", "cs_x")
    assert caught.value.field == "url"


@pytest.mark.parametrize(
    "url", ["https://shop.example/", "http://127.0.0.1:8080", "http://localhost", "http://[::1]:81"]
)
def test_https_and_loopback_urls_are_accepted(url):
    assert WooClient(url, "ck_x", "cs_x").url == url.rstrip("/")


def test_keys_travel_as_basic_auth_over_loopback(sandbox, client):
    assert client.get("orders") == []
    assert sandbox.request_log[-1].query == {}  # no keys in the query string, no oauth_* parameters


def test_wrong_keys_raise_auth_error(sandbox):
    client = WooClient(sandbox.base_url, sandbox.consumer_key, "cs_wrong", sleep=lambda s: None)
    with pytest.raises(AuthError) as caught:
        client.get("orders")
    assert "consumer key/secret refused" in caught.value.message
    assert caught.value.status == 401 and not caught.value.retryable


def test_unknown_key_raises_auth_error(sandbox):
    with pytest.raises(AuthError):
        WooClient(sandbox.base_url, "ck_nobody", "cs_nobody").get("products")


def test_rest_api_disabled_gives_a_clear_404_message():
    with SandboxWoo(rest_api_enabled=False) as store:
        client = WooClient(store.base_url, store.consumer_key, store.consumer_secret)
        with pytest.raises(PlatformError) as caught:
            client.get("orders")
    assert "REST API disabled or permalinks not set" in caught.value.message
    assert caught.value.status == 404 and not isinstance(caught.value, AuthError)


def test_a_missing_object_is_a_plain_not_found(client):
    with pytest.raises(PlatformError) as caught:
        client.get("orders/999999")
    assert "woocommerce_rest_shop_order_invalid_id" in caught.value.message
    assert "permalinks" not in caught.value.message


def test_a_429_storm_honours_retry_after_and_loses_nothing(sandbox, client, sleeps):
    for n in range(150):
        sandbox.create_product(f"P{n}", sku=f"SKU-{n}")
    sandbox.reset_counters()
    sandbox.fail_next(3, status=429, retry_after="2")
    skus = [p["sku"] for p in client.paginate("products", {"orderby": "id", "order": "asc"})]
    assert skus == [f"SKU-{n}" for n in range(150)]
    assert sleeps == [2.0, 2.0, 2.0]
    assert sandbox.requests_served == 3 + 2


def test_retry_after_as_http_date_is_understood(sandbox, client, sleeps):
    sandbox.fail_next(1, status=503, retry_after="Fri, 27 Nov 2099 06:00:00 GMT")
    with pytest.raises(PlatformError) as caught:
        client.get("orders")
    # far beyond max_retry_after: give up at once and say when to come back
    assert caught.value.retryable and caught.value.retry_after > 60 and sleeps == []


def test_503_without_retry_after_backs_off_then_gives_up_retryable(sandbox, client, sleeps):
    sandbox.fail_next(10, status=503, retry_after=None)
    with pytest.raises(PlatformError) as caught:
        client.get("orders")
    assert caught.value.retryable and caught.value.status == 503
    # max_retries=4 -> 5 attempts; each wait is the doubling step (0.5, 1, 2, 4 s) with jitter
    # spreading it over its upper half.
    assert len(sleeps) == 4
    for wait, step in zip(sleeps, [0.5, 1.0, 2.0, 4.0], strict=True):
        assert step / 2 <= wait <= step
    assert sandbox.requests_served == 5


def test_persistent_429_becomes_a_throttled_error(sandbox, client):
    sandbox.fail_next(10, status=429, retry_after="1")
    with pytest.raises(ThrottledError) as caught:
        client.get("orders")
    assert caught.value.retryable and caught.value.retry_after == 1.0


def test_timeouts_are_retried(sandbox, sleeps):
    client = WooClient(
        sandbox.base_url, sandbox.consumer_key, sandbox.consumer_secret, timeout=0.2, sleep=sleeps.append
    )
    sandbox.slow_next(1, 0.6)
    assert client.get("orders") == []
    assert len(sleeps) == 1


def test_a_timed_out_post_is_not_retried_blindly(sandbox, sleeps):
    order = sandbox.create_order([])
    client = WooClient(
        sandbox.base_url, sandbox.consumer_key, sandbox.consumer_secret, timeout=0.2, sleep=sleeps.append
    )
    sandbox.slow_next(1, 0.6)
    with pytest.raises(PlatformError) as caught:
        client.post(f"orders/{order['id']}/notes", {"note": "hello"})
    assert caught.value.retryable and sleeps == []


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    client = WooClient(f"http://127.0.0.1:{port}", "ck_x", "cs_x", sleep=sleeps.append, max_retries=2)
    with pytest.raises(PlatformError) as caught:
        client.get("orders")
    assert "unreachable" in caught.value.message and caught.value.retryable
    assert len(sleeps) == 2


@pytest.mark.parametrize("count", [0, 1, 99, 100, 101, 250])
def test_pagination_makes_exactly_the_requests_needed(sandbox, client, count):
    for n in range(count):
        sandbox.create_product(f"P{n}")
    sandbox.reset_counters()
    ids = [p["id"] for p in client.paginate("products")]
    assert len(ids) == len(set(ids)) == count
    assert sandbox.requests_served == max(1, math.ceil(count / 100))
    assert all(r.query["per_page"] == "100" for r in sandbox.request_log)


def test_pagination_stops_lazily(sandbox, client):
    for n in range(150):
        sandbox.create_product(f"P{n}")
    sandbox.reset_counters()
    first = next(iter(client.paginate("products")))
    assert first["id"] and sandbox.requests_served == 1


def test_batches_are_chunked_to_at_most_100_objects(sandbox, client):
    products = [sandbox.create_product(f"P{n}", sku=f"S{n}") for n in range(250)]
    sandbox.reset_counters()
    result = client.batch(
        "products/batch", update=[{"id": p["id"], "backorders": "notify"} for p in products]
    )
    assert len(result["update"]) == 250 and batch_errors(result) == []
    calls = sandbox.requests_to("products/batch")
    assert len(calls) == 3
    assert all(sandbox.product(p["id"])["backorders"] == "notify" for p in products)


def test_the_store_refuses_batches_over_100_with_413(sandbox, client):
    with pytest.raises(PlatformError) as caught:
        client.post("products/batch", {"update": [{"id": n} for n in range(101)]})
    assert caught.value.status == 413 and "woocommerce_rest_request_entity_too_large" in caught.value.message


def test_batch_reports_refused_objects(sandbox, client):
    product = sandbox.create_product("Mug")
    result = client.batch(
        "products/batch",
        update=[{"id": product["id"], "backorders": "notify"}, {"id": 987654, "backorders": "notify"}],
    )
    errors = batch_errors(result)
    assert [e["id"] for e in errors] == [987654]


def test_a_gateway_timeout_on_post_is_not_repeated_but_on_get_it_is(sandbox, client, sleeps):
    order = sandbox.create_order([])
    sandbox.fail_next(1, status=504, retry_after=None)
    with pytest.raises(PlatformError) as caught:
        client.post(f"orders/{order['id']}/notes", {"note": "once"})
    assert caught.value.status == 504 and caught.value.retryable and sleeps == []
    sandbox.fail_next(1, status=504, retry_after=None)
    assert client.get(f"orders/{order['id']}")["id"] == order["id"]
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_a_host_that_strips_authorization_gets_a_hint_and_query_auth_works():
    with SandboxWoo(strips_authorization_header=True) as store:
        with pytest.raises(AuthError) as caught:
            WooClient(store.base_url, store.consumer_key, store.consumer_secret).get("orders")
        assert "strip the Authorization header" in caught.value.message
        client = WooClient(store.base_url, store.consumer_key, store.consumer_secret, query_string_auth=True)
        assert client.get("orders") == []
        assert store.request_log[-1].query["consumer_key"] == store.consumer_key


def test_the_backoff_is_jittered_and_bounded(sandbox):
    sleeps: list[float] = []
    lowest = WooClient(sandbox.base_url, sandbox.consumer_key, sandbox.consumer_secret, sleep=sleeps.append,
                       max_retries=10, backoff=0.5, max_retry_after=3.0, jitter=lambda: 0.0)
    sandbox.fail_next(20, status=503, retry_after=None)
    with pytest.raises(PlatformError):
        lowest.get("orders")
    highest = WooClient(sandbox.base_url, sandbox.consumer_key, sandbox.consumer_secret, sleep=sleeps.append,
                        max_retries=10, backoff=0.5, max_retry_after=3.0, jitter=lambda: 1.0)
    sandbox.fail_next(20, status=503, retry_after=None)
    with pytest.raises(PlatformError):
        highest.get("orders")
    steps = [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]  # doubling, capped at max_retry_after
    assert sleeps == [s / 2 for s in steps] + steps


def test_a_dropped_connection_on_a_read_is_retried_and_answers(sandbox, client, sleeps):
    sandbox.drop_next(2)
    assert client.get("orders") == []
    assert sandbox.connections_dropped == 2 and len(sleeps) == 2


def test_a_post_whose_connection_dropped_after_it_was_applied_is_not_repeated(sandbox, client, sleeps):
    order = sandbox.create_order([])
    sandbox.drop_next(1, after_apply=True)
    with pytest.raises(PlatformError) as caught:
        client.post(f"orders/{order['id']}/notes", {"note": "once"})
    assert caught.value.retryable and caught.value.data.get("maybe_applied") is True and sleeps == []
    assert [n["note"] for n in sandbox.order_notes(order["id"])] == ["once"]  # applied, exactly once


def test_a_post_dropped_before_it_was_applied_is_not_repeated_blindly_either(sandbox, client, sleeps):
    # The client cannot tell a drop before from one after: it does not repeat the POST itself.
    order = sandbox.create_order([])
    sandbox.drop_next(1)
    with pytest.raises(PlatformError) as caught:
        client.post(f"orders/{order['id']}/notes", {"note": "lost"})
    assert caught.value.retryable and sandbox.order_notes(order["id"]) == []
