import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from supplier_doc_samples import make_po
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.suppliers.documents import po_json
from adapters.suppliers.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    post_signed_json,
    sign,
    signature_headers,
    signed_material,
    verify,
)
from connector.errors import DeliveryError, SignatureError

SECRET = "whsec_test_5f2c"


@dataclass
class SupplierEndpoint:
    """A supplier's API on loopback: records requests and answers with the queued statuses."""

    url: str = ""
    received: list[Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        self.bodies.append(request.get_data())
        self.received.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        response = Response(
            json.dumps({"ok": status < 300}),
            status=status,
            headers=self.headers,
            content_type="application/json",
        )
        return response(environ, start_response)


@pytest.fixture
def supplier_api() -> Iterator[SupplierEndpoint]:
    endpoint = SupplierEndpoint()
    server = make_server("127.0.0.1", 0, endpoint, threaded=True)
    endpoint.url = f"http://127.0.0.1:{server.server_port}/po"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_signed_po_arrives_with_a_valid_signature_and_the_idempotency_key(
    supplier_api: SupplierEndpoint,
) -> None:
    payload = po_json(make_po(3))
    response = post_signed_json(supplier_api.url, payload, SECRET, "shop-1:po:42")

    assert response.status_code == 200
    [request] = supplier_api.received
    body = supplier_api.bodies[0]
    assert json.loads(body) == payload
    assert request.headers[IDEMPOTENCY_HEADER] == "shop-1:po:42"
    assert request.headers[SIGNATURE_HEADER].startswith("sha256=")
    verify(
        body, SECRET, request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER], now=time.time()
    )


def test_signature_covers_the_timestamp_so_an_old_request_cannot_be_replayed() -> None:
    body = b'{"number":"PO-1"}'
    signed_at = 1_800_000_000
    signature = sign(signed_material(body, signed_at), SECRET)

    verify(body, SECRET, str(signed_at), signature, now=signed_at + 10)
    with pytest.raises(SignatureError):
        verify(body, SECRET, str(signed_at), signature, now=signed_at + 3600)  # replayed an hour later
    with pytest.raises(SignatureError):
        verify(body, SECRET, str(signed_at + 3600), signature, now=signed_at + 3600)  # timestamp swapped
    with pytest.raises(SignatureError):
        verify(body + b" ", SECRET, str(signed_at), signature, now=signed_at)
    with pytest.raises(SignatureError):
        verify(body, "other-secret", str(signed_at), signature, now=signed_at)
    with pytest.raises(SignatureError):
        verify(body, SECRET, None, signature, now=signed_at)


def test_a_500_answer_is_a_retryable_delivery_error(supplier_api: SupplierEndpoint) -> None:
    supplier_api.statuses.append(500)
    with pytest.raises(DeliveryError) as caught:
        post_signed_json(supplier_api.url, {"n": 1}, SECRET, "k-500")
    assert caught.value.retryable is True
    assert caught.value.data["status"] == 500


def test_429_is_retryable_and_reports_retry_after(supplier_api: SupplierEndpoint) -> None:
    supplier_api.statuses.append(429)
    supplier_api.headers["Retry-After"] = "30"
    with pytest.raises(DeliveryError) as caught:
        post_signed_json(supplier_api.url, {"n": 1}, SECRET, "k-429")
    assert caught.value.retryable is True
    assert caught.value.data["retry_after"] == 30.0


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_permanent(supplier_api: SupplierEndpoint, status: int) -> None:
    supplier_api.statuses.append(status)
    with pytest.raises(DeliveryError) as caught:
        post_signed_json(supplier_api.url, {"n": 1}, SECRET, "k")
    assert caught.value.retryable is False


def test_retry_sends_the_same_idempotency_key(supplier_api: SupplierEndpoint) -> None:
    supplier_api.statuses.append(503)
    with pytest.raises(DeliveryError):
        post_signed_json(supplier_api.url, {"n": 1}, SECRET, "same-key")
    with requests.Session() as session:
        post_signed_json(supplier_api.url, {"n": 1}, SECRET, "same-key", session=session)
    assert [r.headers[IDEMPOTENCY_HEADER] for r in supplier_api.received] == ["same-key", "same-key"]


def test_connection_refused_is_retryable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/po"
        with pytest.raises(DeliveryError) as caught:
            post_signed_json(url, {"n": 1}, SECRET, "k", timeout=2)
    assert caught.value.retryable is True


def test_signature_is_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1800000000." + body, hashlib.sha256).hexdigest()
    assert signature_headers(body, SECRET, 1_800_000_000) == {
        TIMESTAMP_HEADER: "1800000000",
        SIGNATURE_HEADER: f"sha256={expected}",
    }


def test_gateway_sends_a_po_by_webhook_with_the_confirm_url(supplier_api: SupplierEndpoint) -> None:
    from adapters.suppliers.gateway import SupplierChannel, SupplierDelivery

    class NoMail:
        def send(self, msg: object, message_id: str | None = None) -> str:
            raise AssertionError("a webhook supplier must not be e-mailed")

    delivery = SupplierDelivery(NoMail(), "orders@bois.test")
    channel = SupplierChannel("webhook", supplier_api.url, SECRET)
    key = delivery.send_purchase_order(
        make_po(2), channel, idempotency_key="po-42", confirm_url="https://c.test/x"
    )

    assert key == "po-42"
    [request] = supplier_api.received
    assert json.loads(supplier_api.bodies[0])["confirm_url"] == "https://c.test/x"
    verify(
        supplier_api.bodies[0],
        SECRET,
        request.headers[TIMESTAMP_HEADER],
        request.headers[SIGNATURE_HEADER],
        now=time.time(),
    )


def test_gateway_without_a_webhook_secret_fails_permanently() -> None:
    from adapters.suppliers.gateway import SupplierChannel, SupplierDelivery

    delivery = SupplierDelivery(None, "orders@bois.test")  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as caught:
        delivery.send_purchase_order(
            make_po(1),
            SupplierChannel("webhook", "http://127.0.0.1:9/x"),
            idempotency_key="k",
            confirm_url="u",
        )
    assert caught.value.retryable is False
