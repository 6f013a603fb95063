"""Webhook verification: unit paths and real deliveries from the sandbox store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Response

from adapters.woocommerce.webhooks import (
    WebhookPayloadInvalid,
    WebhookSignatureInvalid,
    WebhookTooLarge,
    WooDelivery,
    WooPing,
    verify_webhook,
)
from connector.errors import SignatureError, ValidationError

SECRET = "s3cr&t<key>"


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers_for(body: bytes, topic: str = "order.updated", **extra: str) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "X-WC-Webhook-Signature": sign(body),
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": "99",
        "X-WC-Webhook-Source": "https://shop.example/",
        **extra,
    }


BODY = json.dumps({"id": 727, "status": "processing", "date_modified_gmt": "2026-03-29T01:05:40"}).encode()


def test_a_signed_delivery_verifies_and_carries_a_dedupe_key():
    delivery = verify_webhook(BODY, headers_for(BODY), SECRET, max_bytes=10_000)
    assert isinstance(delivery, WooDelivery)
    assert (delivery.topic, delivery.resource, delivery.event) == ("order.updated", "order", "updated")
    assert (delivery.webhook_id, delivery.delivery_id, delivery.source) == (
        "7",
        "99",
        "https://shop.example/",
    )
    assert delivery.payload["id"] == 727
    assert delivery.dedupe_key == "order:727:2026-03-29T01:05:40"


def test_header_names_are_case_insensitive():
    headers = {k.lower(): v for k, v in headers_for(BODY).items()}
    assert isinstance(verify_webhook(BODY, headers, SECRET, max_bytes=10_000), WooDelivery)


def test_the_secret_is_html_entity_decoded_before_signing():
    body = b'{"id": 1}'
    # WordPress stored "s3cr&amp;t&lt;key&gt;" and signs with the decoded form; we hold it escaped too.
    headers = {**headers_for(body), "X-WC-Webhook-Signature": sign(body, "s3cr&t<key>")}
    assert isinstance(verify_webhook(body, headers, "s3cr&amp;t&lt;key&gt;", max_bytes=10_000), WooDelivery)


def test_wrong_signature_is_refused_with_401():
    headers = {**headers_for(BODY), "X-WC-Webhook-Signature": sign(BODY, "other")}
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify_webhook(BODY, headers, SECRET, max_bytes=10_000)
    assert caught.value.http_status == 401 and isinstance(caught.value, SignatureError)


def test_tampered_body_is_refused_with_401():
    with pytest.raises(WebhookSignatureInvalid):
        verify_webhook(BODY.replace(b"processing", b"cancelled"), headers_for(BODY), SECRET, max_bytes=10_000)


def test_missing_signature_on_json_is_refused_with_401():
    headers = headers_for(BODY)
    del headers["X-WC-Webhook-Signature"]
    with pytest.raises(WebhookSignatureInvalid) as caught:
        verify_webhook(BODY, headers, SECRET, max_bytes=10_000)
    assert caught.value.http_status == 401


def test_the_unsigned_creation_ping_is_recognised():
    ping = verify_webhook(
        b"webhook_id=42", {"Content-Type": "application/x-www-form-urlencoded"}, SECRET, max_bytes=10_000
    )
    assert ping == WooPing(webhook_id="42")


def test_malformed_json_with_a_valid_signature_is_400():
    body = b'{"id": 727,'
    with pytest.raises(WebhookPayloadInvalid) as caught:
        verify_webhook(body, headers_for(body), SECRET, max_bytes=10_000)
    assert caught.value.http_status == 400 and isinstance(caught.value, ValidationError)


def test_json_that_is_not_an_object_is_400():
    body = b"[1, 2]"
    with pytest.raises(WebhookPayloadInvalid):
        verify_webhook(body, headers_for(body), SECRET, max_bytes=10_000)


def test_oversize_body_is_413_before_any_signature_work():
    body = b"x" * 2049
    with pytest.raises(WebhookTooLarge) as caught:
        verify_webhook(body, {}, SECRET, max_bytes=2048)
    assert caught.value.http_status == 413


def test_deleted_resources_dedupe_on_the_id():
    body = b'{"id":727}'
    delivery = verify_webhook(body, headers_for(body, "order.deleted"), SECRET, max_bytes=10_000)
    assert delivery.dedupe_key == "order:727:deleted"


# ---------------------------------------------------------------------- real deliveries


def test_sandbox_deliveries_verify_end_to_end(sandbox, storefront, receiver):
    secret = "hook&secret"
    outcomes = []

    def answer(request):
        try:
            result = verify_webhook(request.body, request.headers, secret, max_bytes=1_000_000)
        except (WebhookSignatureInvalid, WebhookPayloadInvalid, WebhookTooLarge) as error:
            outcomes.append(error.http_status)
            return Response(status=error.http_status)
        outcomes.append(result)
        return Response("ok", status=200)

    receiver.answer = answer
    ids = storefront.register_webhooks(receiver.url + "/hooks/woo", secret)
    assert set(ids) == {"order.created", "order.updated", "order.deleted", "product.updated"}
    # one unsigned ping per created webhook, each answered 200
    assert [type(o) for o in outcomes] == [WooPing] * 4
    assert all(d.status == 200 for d in sandbox.deliveries if d.ping)

    product = sandbox.create_product("Mug", sku="MUG", stock_quantity=5)
    order = sandbox.create_order([(product["id"], 2)])
    sandbox.update_order(order["id"], status="completed")
    deliveries = [o for o in outcomes if isinstance(o, WooDelivery)]
    assert [d.topic for d in deliveries] == ["order.created", "order.updated"]
    assert deliveries[1].payload["status"] == "completed"
    assert deliveries[0].dedupe_key != deliveries[1].dedupe_key
    assert deliveries[0].source == sandbox.base_url + "/"


def test_a_wrong_secret_gets_401_and_five_failures_disable_the_webhook(sandbox, storefront, receiver):
    def answer(request):
        try:
            verify_webhook(request.body, request.headers, "not-the-secret", max_bytes=1_000_000)
        except WebhookSignatureInvalid as error:
            return Response(status=error.http_status)
        return Response("ok")

    receiver.answer = answer
    ids = storefront.register_webhooks(receiver.url, "the-secret", topics=("order.updated",))
    order = sandbox.create_order([])
    for _ in range(5):
        sandbox.update_order(order["id"], customer_note="again")
    statuses = [d.status for d in sandbox.deliveries if not d.ping]
    assert statuses == [401] * 5
    assert sandbox.webhooks[ids["order.updated"]]["status"] == "disabled"
    # registering again reactivates the same webhook instead of adding a second one
    assert storefront.register_webhooks(receiver.url, "the-secret", topics=("order.updated",)) == ids
    assert sandbox.webhooks[ids["order.updated"]]["status"] == "active"
    assert len(sandbox.webhooks) == 1


def test_a_secret_with_other_entities_is_keyed_like_wordpress_does():
    body = b'{"id": 5}'
    stored = "a&copy;b&amp;c"  # wp_specialchars_decode leaves &copy; alone, html.unescape would not
    headers = {**headers_for(body), "X-WC-Webhook-Signature": sign(body, "a&copy;b&c")}
    assert isinstance(verify_webhook(body, headers, stored, max_bytes=10_000), WooDelivery)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=300),
    st.dictionaries(
        st.sampled_from(
            ["X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Event", "Content-Type"]
        ),
        st.text(max_size=40),
    ),
    st.booleans(),
)
def test_arbitrary_requests_verify_or_raise_an_http_error(body, headers, sign_it):
    if sign_it:
        headers["X-WC-Webhook-Signature"] = sign(body)
    try:
        result = verify_webhook(body, headers, SECRET, max_bytes=200)
    except (WebhookSignatureInvalid, WebhookPayloadInvalid, WebhookTooLarge) as error:
        assert error.http_status in (400, 401, 413)
        return
    assert isinstance(result, WooDelivery | WooPing)


def test_changes_made_through_the_api_are_delivered_in_the_background(sandbox, storefront, receiver):
    storefront.register_webhooks(receiver.url, "secret", topics=("order.updated",))
    order = sandbox.create_order([])
    storefront.complete_order_with_tracking(str(order["id"]), "Tracking: 1Z999")
    sandbox.wait_for_deliveries()
    (delivery,) = [d for d in sandbox.deliveries if not d.ping]
    assert delivery.status == 200
    verified = verify_webhook(delivery.body, delivery.headers, "secret", max_bytes=1_000_000)
    assert verified.payload["status"] == "completed"


def test_fire_webhook_redelivers_on_demand(sandbox, storefront, receiver):
    ids = storefront.register_webhooks(receiver.url, "secret", topics=("order.updated",))
    order = sandbox.create_order([])
    (delivery,) = sandbox.fire_webhook("order.updated", order["id"])
    assert delivery.webhook_id == ids["order.updated"] and delivery.status == 200
    assert b"\\/" in delivery.body  # slashes escaped like wp_json_encode: verify the raw bytes
