"""Connect a sandbox store over real HTTP, then orders arrive by webhook and by poll."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import requests
from sqlalchemy import text
from woo_integration_helpers import csrf_from

from connector.db.models import Shop
from connector.db.uow import UnitOfWork


def test_connect_registers_webhooks_pulls_and_receives_orders(live: Any, catalogue: dict[str, Any]) -> None:
    sandbox = live.sandbox
    widget = catalogue["widget"]
    before = sandbox.create_order([(widget["id"], 1)])  # placed before the connection: the pull brings it

    page = live.connect()
    assert page.status_code == 200 and "Store connected" in page.text
    domain = sandbox.base_url.removeprefix("http://")
    assert f"/shop/{domain}/backorders" in page.text

    shop = live.shop()
    assert (shop.platform, shop.domain, shop.status) == ("woocommerce", domain, "installed")
    assert shop.credentials is not None and shop.credentials["store_url"] == sandbox.base_url
    assert shop.credentials["consumer_key"] in sandbox.keys  # the key the wc-auth flow created
    # Encrypted at rest: the raw columns hold neither the keys nor the secret.
    with UnitOfWork(live.db, readonly=True) as uow:
        raw = uow.session.execute(text("SELECT credentials, webhook_secret FROM shops")).one()
    assert shop.credentials["consumer_secret"] not in str(raw[0]) and "ck_" not in str(raw[0])
    assert shop.webhook_secret and shop.webhook_secret not in str(raw[1])

    hooks = {h["topic"]: h for h in sandbox.webhooks.values()}
    assert set(hooks) == {"order.created", "order.updated", "order.deleted", "product.updated"}
    for hook in hooks.values():
        assert hook["delivery_url"] == f"{live.url}/webhooks/woocommerce" and hook["status"] == "active"
        assert sandbox.webhook_secret(hook["id"]) == shop.webhook_secret
    pings = [d for d in sandbox.deliveries if d.ping]
    assert len(pings) == 4 and all(d.status == 200 for d in pings)

    orders = live.orders()
    assert orders[str(before["id"])]["state"] == "open"  # initial pull
    assert {"WIDGET", "SHIRT-M", "SHIRT-L"} <= {sku for sku, _, _ in live.variants().values()}

    # A checkout past stock: arrives by webhook (REST-created, delivered from the sandbox's worker).
    client = live.gateway.storefront_for(live.shop()).client
    created = client.post("orders", {"set_paid": True, "line_items": [
        {"product_id": widget["id"], "quantity": 4},
        {"product_id": catalogue["shirt"]["id"], "variation_id": catalogue["shirt"]["variations"][1], "quantity": 2},
    ], "billing": {"email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper"}})
    sandbox.wait_for_deliveries()
    order_deliveries = [d for d in sandbox.deliveries if d.topic == "order.created"]
    assert order_deliveries and all(d.status == 200 for d in order_deliveries)
    assert live.kicks and live.kicks[-1][0] == "woocommerce"
    report = live.process()
    assert report.failed == 0 and report.processed >= 1
    lines = live.orders()[str(created["id"])]["lines"]
    # 2 on hand, 1 held by the earlier order: 1 allocated, 3 backordered; SHIRT-L has none.
    assert lines["WIDGET"] == (4, 1, 3, 0)
    assert lines["SHIRT-L"] == (2, 0, 2, 0)

    # By poll: deliveries switched off, the pull still finds the order.
    sandbox.deliver_webhooks = False
    polled = sandbox.create_order([(widget["id"], 2)])
    report_pull = live.pull()
    assert report_pull.orders.applied >= 1
    assert live.orders()[str(polled["id"])]["lines"]["WIDGET"] == (2, 0, 2, 0)


def test_variable_product_update_by_webhook_fetches_variations(live: Any, catalogue: dict[str, Any]) -> None:
    live.connect()
    sandbox = live.sandbox
    shirt = catalogue["shirt"]
    sandbox.create_variation(shirt["id"], options={"Size": "XL"}, sku="SHIRT-XL", stock_quantity=0,
                             backorders="notify")
    report = live.process()
    assert report.failed == 0
    assert "SHIRT-XL" in {sku for sku, _, _ in live.variants().values()}
    assert any(t == "product.updated" and s == "processed" for t, _, s in live.events())


def test_paste_keys_form(live: Any, catalogue: dict[str, Any]) -> None:
    sandbox = live.sandbox
    browser = requests.Session()
    form = browser.get(f"{live.url}/woocommerce/keys", timeout=10)
    assert form.status_code == 200
    answer = browser.post(f"{live.url}/woocommerce/keys", timeout=20, data={
        "csrf_token": csrf_from(form.text), "store_url": sandbox.base_url + "/",
        "consumer_key": sandbox.consumer_key, "consumer_secret": sandbox.consumer_secret,
    })
    assert answer.status_code == 200 and "Store connected" in answer.text
    assert len(sandbox.webhooks) == 4
    assert live.shop().credentials["consumer_key"] == sandbox.consumer_key
    assert "WIDGET" in {sku for sku, _, _ in live.variants().values()}

    # Connecting again re-keys the same webhooks instead of adding more, and keeps the secret.
    secret = live.shop().webhook_secret
    again = browser.post(f"{live.url}/woocommerce/keys", timeout=20, data={
        "csrf_token": csrf_from(form.text), "store_url": sandbox.base_url,
        "consumer_key": sandbox.consumer_key, "consumer_secret": sandbox.consumer_secret,
    })
    assert again.status_code == 200
    assert len(sandbox.webhooks) == 4 and live.shop().webhook_secret == secret

    snippet = requests.get(f"{live.url}/woocommerce/snippet/{live.shop().domain}", timeout=10)
    assert snippet.status_code == 200 and f"/shop/{live.shop().domain}/backorders" in snippet.text
    assert requests.get(f"{live.url}/woocommerce/snippet/nope.example", timeout=10).status_code == 404


def test_connect_page_and_url_rules(live: Any) -> None:
    page = requests.get(f"{live.url}/woocommerce/connect", timeout=10)
    assert page.status_code == 200 and "store_url" in page.text
    insecure = requests.get(f"{live.url}/woocommerce/connect", params={"store_url": "http://shop.example"},
                            allow_redirects=False, timeout=10)
    assert insecure.status_code == 400 and "https" in insecure.text
    secure = requests.get(f"{live.url}/woocommerce/connect", params={"store_url": "https://shop.example/"},
                          allow_redirects=False, timeout=10)
    assert secure.status_code == 302
    location = secure.headers["Location"]
    assert location.startswith("https://shop.example/wc-auth/v1/authorize?")
    assert "callback_url=" + quote(f"{live.url}/woocommerce/callback", safe="") in location
    assert "scope=read_write" in location
    with UnitOfWork(live.db, readonly=True) as uow:
        assert uow.session.query(Shop).count() == 0


def test_initial_pull_runs_after_the_response_by_default(live: Any, catalogue: dict[str, Any]) -> None:
    del live.app.extensions["backorders.woocommerce_pull"]
    order = live.sandbox.create_order([(catalogue["widget"]["id"], 1)])
    page = live.connect()
    assert page.status_code == 200 and "Store connected" in page.text
    deadline = time.monotonic() + 10
    while str(order["id"]) not in live.orders():
        assert time.monotonic() < deadline, "the initial pull did not run after the response"
        time.sleep(0.05)
