"""The webhook endpoint's shop cache never hides a new install, a reinstall or a new secret."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.db.engine import Database
from connector.db.models import Shop
from connector.db.uow import UnitOfWork
from connector.services.webhooks import ShopLookup

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def _set(db: Database, domain: str, **values: object) -> int:
    with UnitOfWork(db) as uow:
        shop = uow.find(Shop, domain=domain)
        if shop is None:
            shop = uow.add(Shop(platform="shopify", domain=domain, created_at=NOW, settings={}))
        for key, value in values.items():
            setattr(shop, key, value)
        uow.commit()
        return shop.id


def test_unknown_and_uninstalled_stores_are_always_read_fresh(db: Database) -> None:
    lookup = ShopLookup(ttl_seconds=60)
    assert lookup(db, "shopify", "new.myshopify.com") == (None, False)
    shop_id = _set(db, "new.myshopify.com", status="installed", webhook_secret="s1")
    assert lookup(db, "shopify", "new.myshopify.com") == ((shop_id, "installed", "s1"), False)  # install seen at once
    assert lookup(db, "shopify", "new.myshopify.com")[1] is True  # now cached
    _set(db, "new.myshopify.com", status="uninstalled")
    lookup.forget()  # what the uninstall hook does
    assert lookup(db, "shopify", "new.myshopify.com") == ((shop_id, "uninstalled", "s1"), False)
    _set(db, "new.myshopify.com", status="installed")  # reinstall: not cached while uninstalled
    assert lookup(db, "shopify", "new.myshopify.com") == ((shop_id, "installed", "s1"), False)


def test_a_fresh_read_sees_a_new_secret_inside_the_ttl(db: Database) -> None:
    lookup = ShopLookup(ttl_seconds=60)
    shop_id = _set(db, "keyed.example", status="installed", webhook_secret="old")
    lookup(db, "shopify", "keyed.example")
    _set(db, "keyed.example", webhook_secret="new")
    assert lookup(db, "shopify", "keyed.example") == ((shop_id, "installed", "old"), True)
    assert lookup(db, "shopify", "keyed.example", fresh=True) == ((shop_id, "installed", "new"), False)
