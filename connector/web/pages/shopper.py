"""The shopper's public backorder page: what can be ordered now and when it should arrive."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, render_template, request

from connector.services.storefront_queries import shop_for_domain, storefront_backorders
from connector.web.pages import storefront
from connector.web.pages.common import get_db, utcnow


def _lookup(domain: str) -> tuple[int, str, dict[str, str]]:
    found = shop_for_domain(get_db(), domain)
    if found is None:
        abort(404)
    return found


@storefront.get("/shop/<domain>/backorders")
def backorders_page(domain: str) -> Any:
    shop_id, name, colours = _lookup(domain)
    query = (request.args.get("q") or "").strip()[:100]
    items = storefront_backorders(get_db(), shop_id, query, utcnow().date())
    response = render_template("pages/shopper.html", shop_name=name, colours=colours, items=items, q=query)
    return response, 200, {"Cache-Control": "public, max-age=60"}


@storefront.get("/shop/<domain>/backorders.json")
def backorders_json(domain: str) -> Any:
    shop_id, name, _ = _lookup(domain)
    query = (request.args.get("q") or "").strip()[:100]
    items = storefront_backorders(get_db(), shop_id, query, utcnow().date())
    response = jsonify(shop=name, items=items)
    response.headers["Cache-Control"] = "public, max-age=60"
    return response
