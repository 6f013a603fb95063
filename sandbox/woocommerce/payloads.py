"""Full REST v3 JSON shapes (every field the real API returns, nulls included).

Modelled on WooCommerce 9.x responses. The sandbox keeps these dicts as its state and serves
them as-is, so the mapping tests and the client tests see the same shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any


def money(value: Decimal | str | int | float) -> str:
    return f"{Decimal(str(value)):.2f}"


def wc_dates(prefix: str, moment: datetime | None, site_tz: timezone) -> dict[str, str | None]:
    """``date_x`` (site time, no offset) and ``date_x_gmt`` (UTC, no offset), like the API."""
    if moment is None:
        return {prefix: None, f"{prefix}_gmt": None}
    return {
        prefix: moment.astimezone(site_tz).strftime("%Y-%m-%dT%H:%M:%S"),
        f"{prefix}_gmt": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    }


def links(base: str, path: str, collection: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    result = {
        "self": [
            {
                "href": f"{base}/wp-json/wc/v3/{path}",
                "targetHints": {"allow": ["GET", "POST", "PUT", "PATCH", "DELETE"]},
            }
        ],
        "collection": [{"href": f"{base}/wp-json/wc/v3/{collection}"}],
    }
    result.update(extra or {})
    return result


def stock_status_for(manage_stock: bool, quantity: int | None, backorders: str, current: str) -> str:
    if not manage_stock:
        return current
    if (quantity or 0) > 0:
        return "instock"
    return "onbackorder" if backorders != "no" else "outofstock"


def product_json(
    *,
    base: str,
    product_id: int,
    name: str,
    kind: str,
    sku: str,
    price: str,
    manage_stock: bool,
    stock_quantity: int | None,
    backorders: str,
    stock_status: str,
    created: datetime,
    site_tz: timezone,
) -> dict[str, Any]:
    slug = name.lower().replace(" ", "-")
    return {
        "id": product_id,
        "name": name,
        "slug": slug,
        "permalink": f"{base}/product/{slug}/",
        **wc_dates("date_created", created, site_tz),
        **wc_dates("date_modified", created, site_tz),
        "type": kind,
        "status": "publish",
        "featured": False,
        "catalog_visibility": "visible",
        "description": f"<p>{name}, sandbox product.</p>\n",
        "short_description": "",
        "sku": sku,
        "global_unique_id": "",
        "price": price,
        "regular_price": price if kind != "variable" else "",
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "price_html": f'<span class="woocommerce-Price-amount amount"><bdi>{price}&nbsp;<span class="woocommerce-Price-currencySymbol">&euro;</span></bdi></span>',
        "on_sale": False,
        "purchasable": True,
        "total_sales": 0,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "external_url": "",
        "button_text": "",
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": manage_stock,
        "stock_quantity": stock_quantity if manage_stock else None,
        "backorders": backorders,
        "backorders_allowed": backorders != "no",
        "backordered": stock_status == "onbackorder",
        "low_stock_amount": None,
        "sold_individually": False,
        "weight": "0.5",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_required": True,
        "shipping_taxable": True,
        "shipping_class": "",
        "shipping_class_id": 0,
        "reviews_allowed": True,
        "average_rating": "0.00",
        "rating_count": 0,
        "upsell_ids": [],
        "cross_sell_ids": [],
        "parent_id": 0,
        "purchase_note": "",
        "categories": [{"id": 15, "name": "Uncategorized", "slug": "uncategorized"}],
        "brands": [],
        "tags": [],
        "images": [],
        "attributes": [],
        "default_attributes": [],
        "variations": [],
        "grouped_products": [],
        "menu_order": 0,
        "related_ids": [],
        "meta_data": [],
        "stock_status": stock_status,
        "has_options": kind == "variable",
        "post_password": "",
        "_links": links(base, f"products/{product_id}", "products"),
    }


def variation_json(
    *,
    base: str,
    product_id: int,
    variation_id: int,
    product_name: str,
    options: dict[str, str],
    sku: str,
    price: str,
    manage_stock: bool | str,
    stock_quantity: int | None,
    backorders: str,
    stock_status: str,
    created: datetime,
    site_tz: timezone,
) -> dict[str, Any]:
    return {
        "id": variation_id,
        "type": "variation",
        **wc_dates("date_created", created, site_tz),
        **wc_dates("date_modified", created, site_tz),
        "description": "",
        "permalink": f"{base}/product/{product_name.lower().replace(' ', '-')}/?"
        + "&".join(f"attribute_{k.lower()}={v}" for k, v in options.items()),
        "sku": sku,
        "global_unique_id": "",
        "price": price,
        "regular_price": price,
        "sale_price": "",
        "date_on_sale_from": None,
        "date_on_sale_from_gmt": None,
        "date_on_sale_to": None,
        "date_on_sale_to_gmt": None,
        "on_sale": False,
        "status": "publish",
        "purchasable": True,
        "virtual": False,
        "downloadable": False,
        "downloads": [],
        "download_limit": -1,
        "download_expiry": -1,
        "tax_status": "taxable",
        "tax_class": "",
        "manage_stock": manage_stock,
        "stock_quantity": stock_quantity if manage_stock is True else None,
        "stock_status": stock_status,
        "backorders": backorders,
        "backorders_allowed": backorders != "no",
        "backordered": stock_status == "onbackorder",
        "low_stock_amount": None,
        "weight": "",
        "dimensions": {"length": "", "width": "", "height": ""},
        "shipping_class": "",
        "shipping_class_id": 0,
        "image": None,
        "attributes": [
            {"id": 0, "name": name, "slug": name.lower(), "option": option}
            for name, option in options.items()
        ],
        "menu_order": 0,
        "meta_data": [],
        "name": f"{product_name} - {', '.join(options.values())}",
        "parent_id": product_id,
        "_links": links(
            base,
            f"products/{product_id}/variations/{variation_id}",
            f"products/{product_id}/variations",
            {"up": [{"href": f"{base}/wp-json/wc/v3/products/{product_id}"}]},
        ),
    }


def address(first: str, last: str, *, email: str | None = None, with_phone: bool = True) -> dict[str, str]:
    result = {
        "first_name": first,
        "last_name": last,
        "company": "",
        "address_1": "12 Rue des Lilas",
        "address_2": "",
        "city": "Lyon",
        "state": "",
        "postcode": "69003",
        "country": "FR",
        "phone": "+33 4 72 00 00 00" if with_phone else "",
    }
    if email is not None:
        result["email"] = email
    return result


def order_json(
    *,
    base: str,
    order_id: int,
    number: str,
    status: str,
    currency: str,
    line_items: list[dict[str, Any]],
    billing: dict[str, str],
    shipping: dict[str, str],
    customer_id: int,
    created: datetime,
    site_tz: timezone,
    order_key: str,
    shipping_total: str = "4.90",
) -> dict[str, Any]:
    items_total = sum((Decimal(item["total"]) for item in line_items), Decimal(0))
    paid = status in ("processing", "completed", "on-hold", "refunded")
    return {
        "id": order_id,
        "parent_id": 0,
        "status": status,
        "currency": currency,
        "version": "9.4.2",
        "prices_include_tax": False,
        **wc_dates("date_created", created, site_tz),
        **wc_dates("date_modified", created, site_tz),
        "discount_total": "0.00",
        "discount_tax": "0.00",
        "shipping_total": shipping_total,
        "shipping_tax": "0.00",
        "cart_tax": "0.00",
        "total": money(items_total + Decimal(shipping_total)),
        "total_tax": "0.00",
        "customer_id": customer_id,
        "order_key": order_key,
        "billing": billing,
        "shipping": shipping,
        "payment_method": "bacs",
        "payment_method_title": "Direct bank transfer",
        "transaction_id": "",
        "customer_ip_address": "203.0.113.7",
        "customer_user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
        "created_via": "checkout",
        "customer_note": "",
        **wc_dates("date_completed", None, site_tz),
        **wc_dates("date_paid", created if paid else None, site_tz),
        "cart_hash": "d1f3a7c0b5e2f4a6c8e0b2d4f6a8c0e2",
        "number": number,
        "meta_data": [
            {"id": 9001 + order_id, "key": "is_vat_exempt", "value": "no"},
        ],
        "line_items": line_items,
        "tax_lines": [],
        "shipping_lines": [
            {
                "id": 50000 + order_id,
                "method_title": "Flat rate",
                "method_id": "flat_rate",
                "instance_id": "1",
                "total": shipping_total,
                "total_tax": "0.00",
                "taxes": [],
                "tax_status": "taxable",
                "meta_data": [
                    {
                        "id": 60000 + order_id,
                        "key": "Items",
                        "value": ", ".join(
                            f"{item['name']} &times; {item['quantity']}" for item in line_items
                        ),
                        "display_key": "Items",
                        "display_value": ", ".join(
                            f"{item['name']} &times; {item['quantity']}" for item in line_items
                        ),
                    }
                ],
            },
        ],
        "fee_lines": [],
        "coupon_lines": [],
        "refunds": [],
        "payment_url": f"{base}/checkout/order-pay/{order_id}/?pay_for_order=true&key={order_key}",
        "is_editable": status in ("pending", "on-hold", "auto-draft"),
        "needs_payment": status in ("pending", "failed"),
        "needs_processing": True,
        "currency_symbol": "€" if currency == "EUR" else "$",
        "_links": links(
            base,
            f"orders/{order_id}",
            "orders",
            {"customer": [{"href": f"{base}/wp-json/wc/v3/customers/{customer_id}"}]}
            if customer_id
            else None,
        ),
    }


def line_item_json(
    *,
    item_id: int,
    name: str,
    product_id: int,
    variation_id: int,
    quantity: int,
    sku: str,
    price: str,
    parent_name: str | None,
    attributes: dict[str, str],
) -> dict[str, Any]:
    total = money(Decimal(price) * quantity)
    meta = [
        {
            "id": 70000 + item_id * 10 + i,
            "key": f"pa_{name_.lower()}",
            "value": option.lower(),
            "display_key": name_,
            "display_value": option,
        }
        for i, (name_, option) in enumerate(attributes.items())
    ]
    return {
        "id": item_id,
        "name": name,
        "product_id": product_id,
        "variation_id": variation_id,
        "quantity": quantity,
        "tax_class": "",
        "subtotal": total,
        "subtotal_tax": "0.00",
        "total": total,
        "total_tax": "0.00",
        "taxes": [],
        "meta_data": meta,
        "sku": sku,
        "global_unique_id": "",
        "price": float(Decimal(price)),
        "image": {"id": "", "src": ""},
        "parent_name": parent_name,
    }


def site_timezone(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))
