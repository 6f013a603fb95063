"""Shop lifecycle: install (encrypted tokens), token refresh, re-authorization, uninstall, and the
privacy requests platforms send (shop redact, customer redact, customer data request).

Credentials are a plain dict stored in ``Shop.credentials`` (an ``EncryptedJSON`` column), so a
database dump never holds a token in clear. Platform code (OAuth, HTTP) is never imported here:
a refresh is a callable handed in by the adapter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, or_, select, update

from connector.db.engine import Database
from connector.db.models import (
    Base,
    OrderLine,
    OutboxMessage,
    SalesOrder,
    Shop,
    WebhookEvent,
)
from connector.db.uow import UnitOfWork
from connector.errors import AuthError, NotFound, ValidationError

log = logging.getLogger(__name__)

INSTALLED, UNINSTALLED, NEEDS_REAUTH = "installed", "uninstalled", "needs_reauth"


@dataclass(frozen=True, slots=True)
class ShopAccess:
    """What an adapter needs to open a storefront client for a shop (a detached copy)."""

    shop_id: int
    platform: str
    domain: str
    status: str
    credentials: dict[str, Any]

    @property
    def installed_at(self) -> datetime | None:
        raw = self.credentials.get("installed_at")
        try:
            return datetime.fromisoformat(str(raw)) if raw else None
        except ValueError:
            return None

    @property
    def access_token(self) -> str | None:
        token = self.credentials.get("access_token")
        return str(token) if token else None


def _find(uow: UnitOfWork, platform: str, domain: str) -> Shop | None:
    return uow.session.scalars(select(Shop).where(Shop.platform == platform, Shop.domain == domain)).first()


def install_shop(
    db: Database,
    platform: str,
    domain: str,
    credentials: dict[str, Any],
    now: datetime,
    *,
    scopes: str = "",
    name: str = "",
) -> tuple[int, bool]:
    """Create or re-activate the shop with fresh credentials → (shop id, created).

    A shop that was uninstalled (or needed re-authorization) keeps its data and becomes
    ``installed`` again; its settings are left as the merchant had them.
    """
    if not credentials.get("access_token"):
        raise ValidationError("credentials without an access token", field="credentials")
    with UnitOfWork(db) as uow:
        shop = _find(uow, platform, domain)
        created = shop is None
        if shop is None:
            shop = Shop(platform=platform, domain=domain, name=name or domain, created_at=now, settings={})
            uow.add(shop)
        shop.status = INSTALLED
        # installed_at lets a late, retried app/uninstalled of an earlier install be recognised
        shop.credentials = {**credentials, "installed_at": now.isoformat()}
        shop.scopes = scopes[:500]
        shop.uninstalled_at = None
        if "reauth" in (shop.settings or {}):
            shop.settings = {k: v for k, v in shop.settings.items() if k != "reauth"}
        if name:
            shop.name = name
        uow.commit()
        return shop.id, created


def shop_access(db: Database, shop_id: int) -> ShopAccess:
    with UnitOfWork(db, readonly=True) as uow:
        shop = uow.session.get(Shop, shop_id)
        if shop is None:
            raise NotFound(f"shop {shop_id} not found", id=shop_id)
        return ShopAccess(shop.id, shop.platform, shop.domain, shop.status, dict(shop.credentials or {}))


def find_shop_id(db: Database, platform: str, domain: str, *, installed_only: bool = True) -> int | None:
    with UnitOfWork(db, readonly=True) as uow:
        stmt = select(Shop.id).where(Shop.platform == platform, Shop.domain == domain)
        if installed_only:
            stmt = stmt.where(Shop.status == INSTALLED)
        return uow.session.scalar(stmt)


def save_credentials(db: Database, shop_id: int, credentials: dict[str, Any]) -> None:
    with UnitOfWork(db) as uow:
        shop = uow.session.get(Shop, shop_id)
        if shop is None:
            raise NotFound(f"shop {shop_id} not found", id=shop_id)
        shop.credentials = dict(credentials)
        uow.commit()


PLATFORM_TIMEZONE = "platform_timezone"  # settings key: the zone last taken from the platform
DEFAULT_TIMEZONE = "UTC"  # Shop.timezone before anyone set it


def adopt_platform_timezone(db: Database, shop_id: int, zone: str) -> bool:
    """Set ``Shop.timezone`` to the platform's zone unless the merchant chose another; True if set.

    The settings page writes ``Shop.timezone`` directly, so a merchant's choice shows as a zone
    different from the one last taken from the platform (remembered in the settings under
    ``platform_timezone``). A zone Python does not know is ignored (and logged): dates computed
    in a wrong zone are worse than in the previous one.
    """
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("shop %s: the platform's time zone %r is not an IANA zone; kept the current one", shop_id, zone)
        return False
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        settings = dict(shop.settings or {})
        taken = settings.get(PLATFORM_TIMEZONE)
        untouched = shop.timezone == (taken if taken is not None else DEFAULT_TIMEZONE) or not shop.timezone
        if not untouched or (shop.timezone == zone and taken == zone):
            return False
        shop.timezone = zone
        shop.settings = {**settings, PLATFORM_TIMEZONE: zone}  # a new dict: JSON is not mutation-tracked
        uow.commit()
        return True


def mark_needs_reauth(db: Database, shop_id: int, now: datetime, reason: str = "") -> None:
    """The store refused our credentials and they cannot be refreshed: the merchant must open
    the app again. Jobs skip such a shop (it is not ``installed``) until then."""
    log.warning("shop %s needs re-authorization: %s", shop_id, reason)
    with UnitOfWork(db) as uow:
        shop = uow.session.get(Shop, shop_id)
        if shop is not None and shop.status == INSTALLED:
            shop.status = NEEDS_REAUTH
            settings = dict(shop.settings or {})
            settings["reauth"] = {"since": now.isoformat(), "reason": reason[:300]}
            shop.settings = settings
            uow.commit()


def refresh_credentials(
    db: Database,
    shop_id: int,
    stale_token: str | None,
    refresher: Callable[[dict[str, Any]], dict[str, Any]],
    now: datetime,
) -> dict[str, Any] | None:
    """Replace a refused access token; the new credentials, or None (shop marked needs_reauth).

    Runs in one write transaction holding the shop row, so two workers that both saw a 401 do
    not both spend the (single-use) refresh token: the second finds a token different from the
    one it was refused and simply uses it. ``refresher`` gets the stored credentials and returns
    new ones; an :class:`AuthError` from it means the grant is gone.
    """
    with UnitOfWork(db) as uow:
        shop = uow.session.scalars(select(Shop).where(Shop.id == shop_id).with_for_update()).first()
        if shop is None or shop.status != INSTALLED or not shop.credentials:
            return None
        current = dict(shop.credentials)
        if current.get("access_token") and current.get("access_token") != stale_token:
            return current  # someone else refreshed already
        if not current.get("refresh_token"):
            reason = "the token was refused and there is no refresh token"
        else:
            try:
                fresh = refresher(current)
            except AuthError as exc:
                reason = f"token refresh refused: {exc.message}"
            else:
                fresh = {**fresh, "installed_at": current.get("installed_at")}
                shop.credentials = fresh
                uow.commit()
                return fresh
    mark_needs_reauth(db, shop_id, now, reason)
    return None


def uninstall_shop(db: Database, shop_id: int, now: datetime) -> bool:
    """The merchant removed the app: drop the credentials, stop processing; keep the data
    (the platform sends ``shop/redact`` later when it must go)."""
    with UnitOfWork(db) as uow:
        shop = uow.session.get(Shop, shop_id)
        if shop is None:
            return False
        shop.status = UNINSTALLED
        shop.credentials = None
        shop.webhook_secret = None
        shop.uninstalled_at = now
        uow.commit()
        return True


def shop_redact(db: Database, shop_id: int) -> int:
    """Delete every row of the shop, the shop itself last; returns the number of rows deleted.

    Tables are emptied children first (reverse dependency order), so this works without relying
    on ``ON DELETE CASCADE`` being enforced.
    """
    owned = [t for t in reversed(Base.metadata.sorted_tables) if "shop_id" in t.c]
    deleted = 0
    with UnitOfWork(db) as uow:
        for table in owned:
            result = uow.session.execute(delete(table).where(table.c.shop_id == shop_id))
            deleted += int(getattr(result, "rowcount", 0) or 0)
        result = uow.session.execute(delete(Shop).where(Shop.id == shop_id))
        deleted += int(getattr(result, "rowcount", 0) or 0)
        uow.commit()
    return deleted


def _customer_orders(
    uow: UnitOfWork, customer_external_id: str | None, email: str | None, order_external_ids: Iterable[str]
) -> list[SalesOrder]:
    conditions: list[Any] = []
    ids = [str(i) for i in order_external_ids if i is not None and str(i)]
    if ids:
        conditions.append(SalesOrder.external_id.in_(ids))
    if customer_external_id:
        conditions.append(SalesOrder.customer_external_id == str(customer_external_id))
    if email:
        conditions.append(func.lower(SalesOrder.customer_email) == email.strip().lower())
    if not conditions:
        return []
    return list(uow.session.scalars(select(SalesOrder).where(or_(*conditions)).order_by(SalesOrder.id)))


def customers_redact(
    db: Database,
    shop_id: int,
    now: datetime,
    *,
    customer_external_id: str | None = None,
    email: str | None = None,
    order_external_ids: Iterable[str] = (),
) -> int:
    """Erase a customer's personal data on their orders; returns the number of orders touched.

    E-mail, name, customer id and ship-to go; quantities, SKUs and dates stay (the engine still
    needs them for stock and purchasing). Stored webhook payloads of those orders lose their body
    (an unprocessed one is marked ignored so it cannot write the data back), and customer
    messages still waiting in the outbox are skipped and emptied.
    """
    with UnitOfWork(db, shop_id) as uow:
        orders = _customer_orders(uow, customer_external_id, email, order_external_ids)
        external_ids = [o.external_id for o in orders]
        for order in orders:
            order.customer_email = None
            order.customer_name = None
            order.customer_external_id = None
            order.ship_to = None
        if external_ids:
            uow.session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.resource_id.in_(external_ids), WebhookEvent.topic.like("orders/%"),
                       WebhookEvent.processed_at.is_(None))
                .values(status="ignored", processed_at=now, error="customer data redacted")
            )
            uow.session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.resource_id.in_(external_ids), WebhookEvent.topic.like("orders/%"))
                .values(payload=None)
            )
            uow.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.target == "customer", OutboxMessage.subject.in_(external_ids),
                       OutboxMessage.state.in_(("pending", "dead")))
                .values(state="skipped", payload={"redacted": True}, last_error="customer data redacted")
            )
            uow.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.target == "customer", OutboxMessage.subject.in_(external_ids))
                .values(payload={"redacted": True})
            )
        uow.commit()
        return len(orders)


def customers_data_request(
    db: Database,
    shop_id: int,
    *,
    customer_external_id: str | None = None,
    email: str | None = None,
    order_external_ids: Iterable[str] = (),
) -> dict[str, Any]:
    """Everything we hold about a customer: their orders with contact, ship-to and line status."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        orders = _customer_orders(uow, customer_external_id, email, order_external_ids)
        out = []
        for o in orders:
            lines = uow.session.scalars(select(OrderLine).where(OrderLine.order_id == o.id).order_by(OrderLine.id))
            out.append({
                "order": o.number,
                "external_id": o.external_id,
                "placed_at": o.placed_at.isoformat(),
                "email": o.customer_email,
                "name": o.customer_name,
                "customer_id": o.customer_external_id,
                "ship_to": o.ship_to,
                "state": o.state,
                "lines": [
                    {
                        "sku": ln.sku,
                        "title": ln.title,
                        "ordered": ln.ordered,
                        "backordered": ln.backordered,
                        "status": ln.kind,
                        "current_eta": ln.current_eta.isoformat() if ln.current_eta else None,
                        "promised_eta": ln.promised_eta.isoformat() if ln.promised_eta else None,
                    }
                    for ln in lines
                ],
            })
        return {"customer": {"id": customer_external_id, "email": email}, "orders": out}


def record_data_report(db: Database, shop_id: int, key: str, report: dict[str, Any], now: datetime) -> bool:
    """Queue a customer-data report for the merchant (outbox, target ``merchant``); False when
    the same request (``key``) was already queued."""
    with UnitOfWork(db, shop_id) as uow:
        exists = uow.session.scalar(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
        if exists is not None:
            return False
        uow.add(OutboxMessage(kind="customer_data_report", target="merchant", subject=None, payload=report,
                              idempotency_key=key, next_attempt_at=now, created_at=now))
        uow.commit()
        return True
