"""Demo data for the sandbox Shopify, and a stand-alone runner.

``python -m sandbox.shopify.demo`` starts a sandbox on loopback with a small tea shop (one
variant out of stock, one selling past zero), prints its URL, app credentials and an access
token, and serves until interrupted.
"""

from __future__ import annotations

import time

from sandbox.shopify.server import SandboxShopify


def seed_demo_shop(sb: SandboxShopify, shop: str | None = None) -> None:
    """A catalog where backorders happen as soon as a few orders come in."""
    sb.create_product(
        "Sencha Green Tea",
        [
            {"sku": "SEN-250", "title": "250 g", "price": 1450, "available": 3},
            {
                "sku": "SEN-1000",
                "title": "1 kg",
                "price": 4900,
                "available": 0,
                "inventory_policy": "continue",
            },
        ],
        tags=["tea", "green"],
        shop=shop,
    )
    sb.create_product("Cast Iron Teapot", [{"sku": "POT-CI", "price": 6500, "available": 1}], shop=shop)
    sb.create_product(
        "Matcha Whisk", [{"sku": "WHISK", "price": 1800, "available": 0, "incoming": 24}], shop=shop
    )
    sb.create_order([{"sku": "SEN-250", "quantity": 2}, {"sku": "POT-CI"}], shop=shop)
    sb.create_order(
        [{"sku": "SEN-1000", "quantity": 1}, {"title": "Gift wrapping", "price": 350}],
        shop=shop,
        email="grace@example.com",
        first_name="Grace",
        last_name="Hopper",
    )


def main() -> None:
    sb = SandboxShopify()
    base = sb.start()
    seed_demo_shop(sb)
    print(f"sandbox Shopify at {base}")
    print(f"shop {sb.default_shop}  api key {sb.api_key}  secret {sb.api_secret}")
    print(f"access token {sb.issue_token()}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sb.stop()


if __name__ == "__main__":
    main()
