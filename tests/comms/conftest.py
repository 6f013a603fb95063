from collections.abc import Iterator

import pytest
from comms_support import Clock

from adapters.mail.sink import SmtpSink
from adapters.shopify.client import ShopifyClient
from adapters.shopify.storefront import ShopifyStorefront
from adapters.woocommerce.client import WooClient
from adapters.woocommerce.storefront import WooStorefront
from sandbox.shopify.server import SandboxShopify
from sandbox.woocommerce import SandboxWoo


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- the sandbox stores over real HTTP (store cancellation, store notes) ---------------------

@pytest.fixture
def woo_sandbox() -> Iterator[SandboxWoo]:
    with SandboxWoo() as store:
        yield store


@pytest.fixture
def woo_storefront(woo_sandbox: SandboxWoo) -> WooStorefront:
    client = WooClient(woo_sandbox.base_url, woo_sandbox.consumer_key, woo_sandbox.consumer_secret, timeout=5,
                       sleep=lambda _: None, max_retries=0)
    return WooStorefront(client)


@pytest.fixture
def shopify_sandbox() -> Iterator[SandboxShopify]:
    sb = SandboxShopify(restore_rate=100_000, bucket_size=1000)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def shopify_storefront(shopify_sandbox: SandboxShopify) -> ShopifyStorefront:
    client = ShopifyClient(shopify_sandbox.default_shop, shopify_sandbox.issue_token(), "2025-01",
                           base_url=shopify_sandbox.base_url, backoff_base=0.01, backoff_cap=0.05, timeout=5,
                           max_retries=0)
    return ShopifyStorefront(client, bulk_poll_interval=0.01)
