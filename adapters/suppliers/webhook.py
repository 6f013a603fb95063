"""Signed JSON webhooks to suppliers that take purchase orders and dropship batches by API.

Signature scheme (documented for suppliers):

* ``X-Backorder-Timestamp``: Unix time in whole seconds when the request was signed.
* ``X-Backorder-Signature``: ``sha256=`` + lowercase hex HMAC-SHA256, keyed with the shared
  secret (UTF-8), over ``<timestamp> + "." + <raw request body bytes>``.
* ``Idempotency-Key``: the same value on every retry of the same document; a receiver that
  has seen it already should answer 2xx without acting again.

A receiver recomputes the HMAC over the raw body, compares in constant time, and rejects
timestamps more than a few minutes away from its clock, so a captured request cannot be
replayed later (the timestamp is inside the signed material and cannot be refreshed).
:func:`verify` does exactly that and is what our own tests and sandbox use.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from connector.errors import DeliveryError, SignatureError

SIGNATURE_HEADER = "X-Backorder-Signature"
TIMESTAMP_HEADER = "X-Backorder-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300
_RETRYABLE_STATUSES = {408, 425, 429}


def signed_material(body: bytes, timestamp: int) -> bytes:
    """What is signed: ``<timestamp>.<body>``, so the timestamp cannot be swapped for a fresh one."""
    return f"{int(timestamp)}.".encode("ascii") + body


def sign(body: bytes, secret: str) -> str:
    """``sha256=`` + hex HMAC-SHA256 of exactly *body* (pass :func:`signed_material` output)."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_headers(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The two headers a receiver needs to verify *body*."""
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: sign(signed_material(body, timestamp), secret),
    }


def verify(
    body: bytes,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless *signature* is valid and *timestamp* is fresh."""
    if not timestamp or not signature:
        raise SignatureError("missing signature or timestamp header")
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a whole number of seconds", timestamp=timestamp) from None
    if abs(now - ts) > tolerance:
        raise SignatureError("timestamp outside the accepted window (replay?)", timestamp=ts, now=int(now))
    expected = sign(signed_material(body, ts), secret)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise SignatureError("signature does not match")


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted UTF-8 JSON: the bytes that are signed are the bytes that are sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def post_signed_json(
    url: str,
    payload: Mapping[str, Any],
    secret: str,
    idempotency_key: str,
    session: requests.Session | None = None,
    timeout: float = 10,
    *,
    now: float | None = None,
) -> requests.Response:
    """POST *payload* signed; return the 2xx response or raise :class:`DeliveryError`.

    Connection problems, timeouts, 5xx, 408/425/429 are retryable (``retry_after`` is taken
    from the Retry-After header when present); other statuses, redirects included, are not:
    a supplier endpoint that moved must be fixed in the supplier settings.
    """
    body = encode_payload(payload)
    ts = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "backorder-connector",
        **signature_headers(body, secret, ts),
        IDEMPOTENCY_HEADER: idempotency_key,
    }
    http = session or requests.Session()
    try:
        response = http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryError(f"webhook to {url} failed: {exc}", retryable=True, url=url) from exc
    finally:
        if session is None:
            http.close()
    if 200 <= response.status_code < 300:
        return response
    status = response.status_code
    retryable = status >= 500 or status in _RETRYABLE_STATUSES
    raise DeliveryError(
        f"webhook to {url} answered {status}: {response.text[:200]}",
        retryable=retryable,
        status=status,
        url=url,
        retry_after=_retry_after(response.headers.get("Retry-After"), now=ts),
    )


def _retry_after(value: str | None, *, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None
