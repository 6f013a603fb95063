"""``backorders inspect PLATFORM KIND FILE.json``: a webhook payload as its normalized record.

Support uses it to see what the connector makes of a merchant's payload: the record as JSON, or
the mapping error naming the field (exit code 2).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from connector.errors import ConnectorError


def _mappers() -> dict[tuple[str, str], Callable[[Any], Any]]:
    from adapters.shopify import mapping as shopify
    from adapters.woocommerce import mapping as woo

    return {
        ("shopify", "order"): shopify.order_from_webhook,
        ("shopify", "product"): shopify.product_from_webhook,
        ("shopify", "inventory_level"): shopify.inventory_level_from_webhook,
        ("woocommerce", "order"): woo.order_from_payload,
        ("woocommerce", "product"): woo.product_from_payload,
    }


KINDS = {"shopify": ("order", "product", "inventory_level"), "woocommerce": ("order", "product")}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def inspect_payload(platform: str, kind: str, path: str) -> int:
    mapper = _mappers().get((platform, kind))
    if mapper is None:
        print(f"error: no mapper for {platform} {kind}; try one of {', '.join(KINDS.get(platform, ()))}",
              file=sys.stderr)
        return 2
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read {path} as JSON: {exc}", file=sys.stderr)
        return 2
    try:
        record = mapper(payload)
    except ConnectorError as exc:
        field = exc.data.get("field")
        print(f"error: {exc.message}" + (f" (field: {field})" if field else ""), file=sys.stderr)
        return 2
    print(json.dumps(_plain(record), indent=2, sort_keys=True))
    return 0
