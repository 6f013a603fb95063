"""ShopifyClient against the sandbox over real HTTP: throttling, outages, auth, errors."""

from __future__ import annotations

import threading

import pytest

from adapters.shopify import queries
from adapters.shopify.client import ShopifyClient, raise_user_errors, sanitize_shop_domain
from connector.errors import AuthError, PlatformError, ValidationError


@pytest.fixture
def catalog(sandbox):
    for n in range(12):
        sandbox.create_product(
            f"Product {n}", [{"sku": f"SKU-{n}-{v}", "price": 1000 + v, "available": v} for v in range(3)]
        )
    return sandbox


def variants_page(client: ShopifyClient, first: int = 30) -> dict:
    return client.execute(queries.VARIANTS_PAGE, {"first": first})


def test_execute_returns_data_and_reads_the_bucket(catalog, client):
    data = variants_page(client)
    assert len(data["productVariants"]["nodes"]) == 30
    assert client.throttle.maximum_available == 1000
    assert client.throttle.restore_rate == 100_000


def test_throttle_storm_loses_no_request_and_raises_nothing(make_client, catalog, token):
    catalog.set_rate_limit(bucket_size=200, restore_rate=1500)
    results, failures = [], []

    def worker():
        client = make_client(catalog, token)  # one client per worker, sharing the shop's bucket
        for _ in range(5):
            try:
                results.append(len(variants_page(client)["productVariants"]["nodes"]))
            except Exception as exc:  # noqa: BLE001 - the assertion below reports it
                failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert results == [30] * 40
    assert any(r.get("throttled") for r in catalog.requests), "the storm should have hit the limit"


def test_a_paced_client_alone_is_not_throttled(make_client, catalog, token):
    catalog.set_rate_limit(bucket_size=200, restore_rate=2000)
    client = make_client(catalog, token)
    for _ in range(10):
        variants_page(client)
    throttled = [r for r in catalog.requests if r.get("throttled")]
    assert len(throttled) <= 1  # only the first, before the client has seen the query's cost
    assert client.stats["paced_seconds"] > 0


def test_throttled_wait_uses_requested_minus_available_over_restore_rate(make_client, catalog, token):
    catalog.set_rate_limit(bucket_size=100, restore_rate=1000)
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        import time

        time.sleep(seconds)

    client = make_client(catalog, token, sleep=sleep, reserve=0)
    client.execute(queries.VARIANTS_PAGE, {"first": 30})  # 92 of 100 points
    client._expected_cost.clear()  # forget the cost so the next call is throttled, not paced
    client.execute(queries.VARIANTS_PAGE, {"first": 30})
    assert client.stats["throttled"] >= 1
    assert 0 < waits[0] <= 0.1  # (92 - ~8) / 1000


def test_server_errors_are_retried_until_recovery(catalog, client):
    catalog.fail_next(3, status=503)
    assert len(variants_page(client)["productVariants"]["nodes"]) == 30
    assert [r["status"] for r in catalog.requests[:3]] == [503, 503, 503]
    assert client.stats["server_errors"] == 3


def test_persistent_server_errors_become_a_retryable_platform_error(catalog, client):
    catalog.fail_next(20, status=500)
    with pytest.raises(PlatformError) as exc:
        variants_page(client)
    assert exc.value.retryable is True
    assert exc.value.status == 500
    assert client.stats["requests"] == 5  # first try + 4 retries


def test_timeouts_are_retried(make_client, catalog, token):
    catalog.delay_next(1, seconds=0.6)
    client = make_client(catalog, token, timeout=0.2)
    assert len(variants_page(client)["productVariants"]["nodes"]) == 30
    assert client.stats["server_errors"] == 1


def test_unreachable_shop_is_a_retryable_platform_error():
    client = ShopifyClient(
        "nobody.myshopify.com", "t", base_url="http://127.0.0.1:9", backoff_base=0.001, max_retries=2
    )
    with pytest.raises(PlatformError) as exc:
        client.execute(queries.CURRENT_BULK_OPERATION)
    assert exc.value.retryable is True


def test_401_refreshes_the_token_once_and_retries(make_client, catalog, token):
    calls = []

    def refresh():
        calls.append(1)
        return catalog.issue_token()

    client = make_client(catalog, token, on_unauthorized=refresh)
    catalog.expire_token(token)
    assert len(variants_page(client)["productVariants"]["nodes"]) == 30
    assert calls == [1]
    assert client.access_token != token


def test_401_without_a_fresh_token_is_an_auth_error(make_client, catalog, token):
    client = make_client(catalog, token, on_unauthorized=lambda: None)
    catalog.expire_token(token)
    with pytest.raises(AuthError) as exc:
        variants_page(client)
    assert exc.value.status == 401


def test_401_after_refresh_is_an_auth_error_not_a_loop(make_client, catalog, token):
    calls = []
    client = make_client(catalog, token, on_unauthorized=lambda: calls.append(1) or "shpat_revoked")
    catalog.expire_token(token)
    with pytest.raises(AuthError):
        variants_page(client)
    assert calls == [1]


def test_user_errors_name_the_field(catalog, client):
    product = catalog.shop().products[next(iter(catalog.shop().products))]
    data = client.execute(
        queries.PRODUCT_VARIANTS_BULK_UPDATE,
        {
            "productId": f"gid://shopify/Product/{product.id}",
            "variants": [{"id": "gid://shopify/ProductVariant/1", "inventoryPolicy": "CONTINUE"}],
        },
    )
    with pytest.raises(ValidationError) as exc:
        raise_user_errors(data, "productVariantsBulkUpdate")
    assert exc.value.field == "variants.0.id"
    assert "does not exist" in exc.value.message


def test_user_errors_without_a_field_are_platform_errors():
    with pytest.raises(PlatformError) as exc:
        raise_user_errors({"tagsAdd": {"userErrors": [{"field": None, "message": "Internal"}]}}, "tagsAdd")
    assert exc.value.retryable is False


def test_graphql_errors_are_platform_errors(catalog, client):
    with pytest.raises(PlatformError, match="GraphQL errors"):
        client.execute("query { orders(first: 1) { nodes { noSuchField } } }")


def test_queries_over_the_cost_cap_are_refused(catalog, client):
    with pytest.raises(PlatformError, match="exceeds"):
        client.execute(queries.ORDERS_PAGE, {"first": queries.ORDERS_PAGE_SIZE + 1})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("jane-s-teas", "jane-s-teas.myshopify.com"),
        ("https://Jane-S-Teas.myshopify.com/", "jane-s-teas.myshopify.com"),
    ],
)
def test_sanitize_shop_domain(given, expected):
    assert sanitize_shop_domain(given) == expected


@pytest.mark.parametrize("bad", ["evil.com", "shop.myshopify.com.evil.com", "-x.myshopify.com", "", "a b"])
def test_sanitize_shop_domain_refuses_others(bad):
    with pytest.raises(ValidationError):
        sanitize_shop_domain(bad)


def test_injected_401_is_recovered_by_refreshing(make_client, catalog, token):
    calls = []
    client = make_client(catalog, token, on_unauthorized=lambda: calls.append(1) or token)
    catalog.fail_next(1, status=401)
    assert len(variants_page(client)["productVariants"]["nodes"]) == 30
    assert calls == [1]
