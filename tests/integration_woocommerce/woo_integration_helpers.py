"""Small helpers for the WooCommerce integration tests (signed bodies, CSRF tokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

SECRET_KEY = "integration-test-secret-key"
MAX_BYTES = 64_000


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def signed_headers(sandbox_body: bytes, secret: str, **extra: str) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), sandbox_body, hashlib.sha256).digest()).decode()
    return {"Content-Type": "application/json", "X-WC-Webhook-Signature": signature, **extra}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
