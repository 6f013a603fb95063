"""The gateway's own rules without HTTP: store identity, event ids, translation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from woo_integration_helpers import body_of, signed_headers

from adapters.woocommerce.gateway import VariationsUnavailable, WooGateway, store_domain
from connector.domain.records import OrderState
from connector.errors import ValidationError
from connector.ports import OrderRecord, VerifiedDelivery

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def _verify(gateway: WooGateway, topic: str, payload: dict[str, object], delivery: str = "1") -> VerifiedDelivery:
    body = body_of(payload)
    resource, _, event = topic.partition(".")
    headers = signed_headers(body, "s3cret", **{
        "X-WC-Webhook-Source": "https://Shop.example/", "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event, "X-WC-Webhook-Delivery-ID": delivery,
    })
    return gateway.verify(body, headers, "s3cret")


def test_store_identity() -> None:
    assert store_domain("https://Shop.Example:443/") == "shop.example"
    assert store_domain("http://127.0.0.1:8080/wp/") == "127.0.0.1:8080/wp"
    gateway = WooGateway()
    assert gateway.shop_key({"X-WC-Webhook-Source": "https://shop.example/"}) == "shop.example"
    assert gateway.shop_domain(gateway.normalize_store_url("https://shop.example/")) == "shop.example"
    with pytest.raises(ValidationError):
        WooGateway(allow_loopback=False).normalize_store_url("http://127.0.0.1:8080")
    with pytest.raises(ValidationError):
        WooGateway(allow_loopback=False).normalize_store_url("https://localhost")


def test_event_ids_follow_versions_not_delivery_ids() -> None:
    gateway = WooGateway(now=lambda: NOW)
    v1 = {"id": 7, "status": "processing", "date_modified_gmt": "2026-11-27T06:00:00", "line_items": []}
    a = _verify(gateway, "order.created", v1, delivery="x")
    b = _verify(gateway, "order.updated", v1, delivery="y")  # same save, other topic, other delivery id
    assert a.event_id == b.event_id
    same_second = dict(v1, status="on-hold")  # a second save within the same second
    c = _verify(gateway, "order.updated", same_second)
    assert c.event_id != a.event_id
    assert c.resource_updated_at == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)

    deleted = _verify(gateway, "order.deleted", {"id": 7}, delivery="z")
    [record] = gateway.translate("order.deleted", deleted.payload)
    assert isinstance(record, OrderRecord)
    assert record.state is OrderState.CLOSED and record.updated_at == NOW


def test_variable_product_needs_a_bound_client() -> None:
    with pytest.raises(VariationsUnavailable):
        WooGateway().translate("product.updated", {"id": 3, "type": "variable", "name": "Shirt"})
    assert WooGateway().translate("coupon.updated", {"id": 3}) == []
