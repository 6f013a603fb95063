"""Bad input at the webhook endpoint, duplicates and out-of-order deliveries, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from woo_integration_helpers import MAX_BYTES, body_of, signed_headers


def _headers(live: Any, topic: str, body: bytes, *, secret: str | None = None, delivery: str = "1",
             source: str | None = None) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return signed_headers(body, secret or live.shop().webhook_secret, **{
        "X-WC-Webhook-Source": source or live.sandbox.base_url + "/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "2",
        "X-WC-Webhook-Delivery-ID": delivery,
    })


@pytest.fixture
def connected(live: Any, catalogue: dict[str, Any]) -> Any:
    page = live.connect()
    assert page.status_code == 200
    return live


def test_refusals(connected: Any, catalogue: dict[str, Any]) -> None:
    live = connected
    order = live.sandbox.create_order([(catalogue["widget"]["id"], 1)])
    delivered = next(d for d in live.sandbox.deliveries if d.topic == "order.created" and d.status == 200)

    tampered = delivered.body.replace(b'"quantity":1', b'"quantity":9')
    assert tampered != delivered.body
    answer = live.post_webhook(tampered, delivered.headers)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
    wrong_secret = live.post_webhook(delivered.body, _headers(live, "order.created", delivered.body, secret="nope"))
    assert wrong_secret.status_code == 401
    unsigned = {k: v for k, v in delivered.headers.items() if k != "X-WC-Webhook-Signature"}
    assert live.post_webhook(delivered.body, unsigned).status_code == 401

    ping = live.post_webhook(b"webhook_id=7", {"Content-Type": "application/x-www-form-urlencoded"})
    assert ping.status_code == 200 and ping.text == ""

    bad_json = b'{"id": 5, "status": '
    assert live.post_webhook(bad_json, _headers(live, "order.updated", bad_json)).status_code == 400
    not_object = b"[1, 2]"
    assert live.post_webhook(not_object, _headers(live, "order.updated", not_object)).status_code == 400

    big = body_of({"id": 1, "pad": "x" * (MAX_BYTES + 10)})
    assert live.post_webhook(big, _headers(live, "order.updated", big)).status_code == 413

    elsewhere = _headers(live, "order.created", delivered.body, source="https://other-store.example/")
    unknown = live.post_webhook(delivered.body, elsewhere)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_shop"

    no_source = {k: v for k, v in delivered.headers.items() if k != "X-WC-Webhook-Source"}
    assert live.post_webhook(delivered.body, no_source).status_code == 400

    # Only the genuine delivery was stored; processing it gives the order.
    events = live.events()
    assert len([e for e in events if e[0].startswith("order.")]) == 1
    live.process()
    assert str(order["id"]) in live.orders()


def test_duplicates_collapse(connected: Any, catalogue: dict[str, Any]) -> None:
    live = connected
    sandbox = live.sandbox
    order = sandbox.create_order([(catalogue["widget"]["id"], 3)])
    delivered = next(d for d in sandbox.deliveries if d.topic == "order.created")
    assert delivered.status == 200
    stored_before = len(live.events())

    # The same delivery again (a retry), and the same version under a new delivery id.
    again = live.post_webhook(delivered.body, delivered.headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    redelivered = dict(delivered.headers, **{"X-WC-Webhook-Delivery-ID": "fresh-id"})
    assert live.post_webhook(delivered.body, redelivered).json()["status"] == "duplicate"
    # order.updated for the same saved version (one save fires both topics): same event.
    as_update = _headers(live, "order.updated", delivered.body, delivery="other")
    assert live.post_webhook(delivered.body, as_update).json()["status"] == "duplicate"
    # The sandbox firing the webhook again for the unchanged order: duplicate too.
    for d in sandbox.fire_webhook("order.updated", order["id"]):
        assert d.status == 200
    assert len(live.events()) == stored_before

    report = live.process()
    assert report.failed == 0
    assert live.orders()[str(order["id"])]["lines"]["WIDGET"] == (3, 2, 1, 0)


def test_out_of_order_deliveries_end_in_newest_state(connected: Any, catalogue: dict[str, Any]) -> None:
    live = connected
    sandbox = live.sandbox
    sandbox.deliver_webhooks = False  # we deliver by hand, in the wrong order
    order = sandbox.create_order([(catalogue["widget"]["id"], 3)])
    v1 = sandbox.order(order["id"])
    sandbox.update_order(order["id"], status="on-hold")
    v2 = sandbox.order(order["id"])
    sandbox.update_order(order["id"], status="cancelled")
    v3 = sandbox.order(order["id"])
    assert v1["date_modified_gmt"] < v2["date_modified_gmt"] < v3["date_modified_gmt"]

    for n, (topic, version) in enumerate([("order.updated", v3), ("order.created", v1), ("order.updated", v2)]):
        body = body_of(version)
        answer = live.post_webhook(body, _headers(live, topic, body, delivery=f"d{n}"))
        assert answer.status_code == 200 and answer.json()["status"] == "stored"
    assert live.process().failed == 0
    state = live.orders()[str(order["id"])]
    assert state["state"] == "closed"
    assert state["updated_at"].replace(tzinfo=None).isoformat() == v3["date_modified_gmt"]
    # The cancellation came first: its lines are stored cancelled, holding nothing, and the late
    # create and update (older) did not allocate them.
    assert state["lines"]["WIDGET"] == (3, 0, 0, 3)

    # A deletion, then a late (older) update: the order stays closed.
    other = sandbox.create_order([(catalogue["widget"]["id"], 1)])
    early = sandbox.order(other["id"])
    body = body_of(early)
    live.post_webhook(body, _headers(live, "order.created", body, delivery="e1"))
    live.process()
    assert live.orders()[str(other["id"])]["state"] == "open"
    gone = body_of({"id": other["id"]})
    assert live.post_webhook(gone, _headers(live, "order.deleted", gone, delivery="e2")).status_code == 200
    late = sandbox.order(other["id"])
    late_body = body_of(dict(late, status="processing"))
    live.post_webhook(late_body, _headers(live, "order.updated", late_body, delivery="e3"))
    assert live.process().failed == 0
    assert live.orders()[str(other["id"])]["state"] == "closed"
