"""Regenerate ``templates/*.json`` (webhook payload skeletons) from Shopify's webhook schemas.

Run by hand when ../shared/shopify/webhook-schemas changes::

    .venv/bin/python -m sandbox.shopify.make_templates

Each skeleton has every property the schema lists (not only the required ones), with null
wherever null is allowed and an empty value of the right type otherwise. The sandbox fills in
real values on a copy; the skeletons are checked in so the sandbox runs without ../shared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "shopify" / "webhook-schemas"
OUT = Path(__file__).resolve().parent / "templates"

# (schema file, template name, JSON pointer of an array whose item skeleton is also saved)
TEMPLATES = [
    (
        "orders_create.json",
        "order",
        [("line_items", "order_line_item"), ("fulfillments", "order_fulfillment")],
    ),
    ("products_update.json", "product", [("variants", "product_variant")]),
    ("inventory_levels_update.json", "inventory_level", []),
    ("bulk_operations_finish.json", "bulk_operation", []),
    ("app_uninstalled.json", "shop", []),
]


def skeleton(schema: Any) -> Any:
    if schema is False or schema is True or not isinstance(schema, dict):
        return None
    types = schema.get("type", "object")
    types = types if isinstance(types, list) else [types]
    if "null" in types:
        return None
    kind = types[0]
    if kind == "object":
        return {k: skeleton(v) for k, v in sorted(schema.get("properties", {}).items())}
    if kind == "array":
        return []
    if kind == "string":
        return "2026-01-01T00:00:00-05:00" if schema.get("format") == "date-time" else ""
    return {"integer": 0, "number": 0.0, "boolean": False}.get(kind)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for filename, name, arrays in TEMPLATES:
        schema = json.loads((SCHEMAS / filename).read_text())
        (OUT / f"{name}.json").write_text(json.dumps(skeleton(schema), indent=1, sort_keys=True) + "\n")
        for key, item_name in arrays:
            if item_name:
                item = schema["properties"][key]["items"]
                (OUT / f"{item_name}.json").write_text(
                    json.dumps(skeleton(item), indent=1, sort_keys=True) + "\n"
                )


if __name__ == "__main__":
    main()
