"""Demo data for the WooCommerce sandbox, and ``python -m sandbox.woocommerce`` to serve it."""

from __future__ import annotations

import threading
from typing import Any

from .server import SandboxWoo


def seed_demo_store(store: SandboxWoo) -> dict[str, Any]:
    """A small clothing shop: one item short and on backorder, one variable product, three orders."""
    mug = store.create_product(
        "Enamel Mug", sku="MUG-ENAMEL", price="14.00", stock_quantity=2, backorders="notify"
    )
    poster = store.create_product(
        "Poster A2", sku="POSTER-A2", price="9.50", manage_stock=False, stock_quantity=None
    )
    hoodie = store.create_variable_product(
        "Hoodie",
        [
            {
                "options": {"Size": "M"},
                "sku": "HOOD-M",
                "price": "49.00",
                "stock_quantity": 5,
                "backorders": "notify",
            },
            {
                "options": {"Size": "L"},
                "sku": "HOOD-L",
                "price": "49.00",
                "stock_quantity": 0,
                "backorders": "notify",
            },
            {
                "options": {"Size": "XL"},
                "sku": "HOOD-XL",
                "price": "52.00",
                "stock_quantity": 1,
                "backorders": "no",
            },
        ],
    )
    large = hoodie["variations"][1]
    orders = [
        store.create_order([(mug["id"], 3), (poster["id"], 1)], email="ada@example.com"),
        store.create_order(
            [(hoodie["id"], large, 2)], email="grace@example.com", first_name="Grace", last_name="Hopper"
        ),
        store.create_order(
            [(mug["id"], 1)],
            status="pending",
            email="alan@example.com",
            first_name="Alan",
            last_name="Turing",
        ),
    ]
    return {"products": [mug, poster, store.product(hoodie["id"])], "orders": orders}


def main() -> None:
    store = SandboxWoo()
    url = store.start()
    seed_demo_store(store)
    print(f"WooCommerce sandbox at {url}")
    print(f"consumer key    {store.consumer_key}")
    print(f"consumer secret {store.consumer_secret}")
    print("Ctrl-C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        store.stop()


if __name__ == "__main__":
    main()
