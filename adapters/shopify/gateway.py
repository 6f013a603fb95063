"""Shopify's edge for the connector: the webhook gateway (``connector.ports.PlatformGateway``),
storefront clients per shop with token refresh, and the OAuth/app-proxy/session-token checks
the web blueprint (``connector.web.shopify_app``) needs.

The composition root builds one :class:`ShopifyGateway` and one :class:`ShopifyAuth` from the
settings and hands them to the web app; ``base_url_for`` maps a shop domain to the URL to call
instead of ``https://{shop}`` (the sandbox in tests and the demo).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from adapters.shopify import mapping
from adapters.shopify.client import (
    DEFAULT_API_VERSION,
    ShopifyClient,
    ShopifyOAuth,
    TokenGrant,
    sanitize_shop_domain,
    validate_oauth_query,
)
from adapters.shopify.storefront import DEFAULT_BULK_BACKFILL_ORDERS, ShopifyStorefront
from adapters.shopify.webhooks import (
    MalformedDelivery,
    _header,
    decode_session_token,
    verify_app_proxy,
    verify_webhook,
)
from connector.db.engine import Database
from connector.errors import MappingError, ValidationError
from connector.ports import VerifiedDelivery
from connector.services import shops

log = logging.getLogger(__name__)

ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled", "orders/paid", "orders/fulfilled",
                          "orders/edited"})
PRODUCT_TOPICS = frozenset({"products/update", "products/create"})
INVENTORY_TOPICS = frozenset({"inventory_levels/update"})
REFRESH_MARGIN = timedelta(minutes=2)  # refresh a token this close to its expiry before using it


def _utcnow() -> datetime:
    return datetime.now(UTC)


def credentials_from_grant(grant: TokenGrant) -> dict[str, Any]:
    """A token grant as the JSON bundle stored (encrypted) in ``Shop.credentials``."""
    return {
        "access_token": grant.access_token,
        "scope": grant.scope,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "refresh_token": grant.refresh_token,
        "refresh_token_expires_at": grant.refresh_token_expires_at.isoformat()
        if grant.refresh_token_expires_at
        else None,
    }


def _expires_at(credentials: Mapping[str, Any]) -> datetime | None:
    raw = credentials.get("expires_at")
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(str(raw))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _BaseUrls:
    def __init__(self, base_url_for: Callable[[str], str | None] | None) -> None:
        self._base_url_for = base_url_for

    def base_url(self, shop: str) -> str | None:
        return self._base_url_for(shop) if self._base_url_for is not None else None


class ShopifyGateway(_BaseUrls):
    """Webhook verification and translation, and storefront clients for installed shops."""

    platform = "shopify"

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        api_version: str = DEFAULT_API_VERSION,
        base_url_for: Callable[[str], str | None] | None = None,
        *,
        max_bytes: int = 1_000_000,
        timeout: float = 10,
        clock: Callable[[], datetime] = _utcnow,
        client_options: Mapping[str, Any] | None = None,
        bulk_backfill_orders: int = DEFAULT_BULK_BACKFILL_ORDERS,
    ) -> None:
        super().__init__(base_url_for)
        if not api_secret:
            raise ValidationError("the Shopify app secret is required", field="api_secret")
        self.api_key = api_key
        self._secret = api_secret
        self.api_version = api_version
        self.max_bytes = max_bytes
        self._timeout = timeout
        self._clock = clock
        self._client_options = dict(client_options or {})
        self._bulk_backfill_orders = bulk_backfill_orders
        self._http = requests.Session()

    # -- PlatformGateway ------------------------------------------------------------------------

    def shop_key(self, headers: Any) -> str | None:
        raw = _header(headers, "X-Shopify-Shop-Domain")
        if not raw:
            return None
        try:
            return sanitize_shop_domain(raw.strip())
        except ValidationError:
            return None

    def verify(self, raw_body: bytes, headers: Any, secret: str | None) -> VerifiedDelivery:
        """Shopify signs every webhook with the app secret (``secret``, a per-shop secret, is
        not used). Refusals carry ``http_status`` 413/401/400."""
        d = verify_webhook(raw_body, headers, self._secret, self.max_bytes)
        event_id = d.event_id or d.webhook_id
        resource_id, updated_at = _resource(d.topic, d.payload)
        return VerifiedDelivery(
            platform=self.platform,
            topic=d.topic,
            shop_key=d.shop_domain,
            event_id=event_id[:128],
            payload=d.payload,
            resource_id=resource_id,
            resource_updated_at=updated_at,
            raw_body=raw_body,  # the payload is this body's JSON, unchanged
        )

    def translate(self, topic: str, payload: dict[str, Any]) -> list[object]:
        if topic in ORDER_TOPICS:
            return [mapping.order_from_webhook(payload)]
        if topic in PRODUCT_TOPICS:
            return [mapping.product_from_webhook(payload)]
        if topic in INVENTORY_TOPICS:
            if payload.get("available") is None:
                return []  # an untracked item: no stock number to record
            return [mapping.inventory_level_from_webhook(payload)]
        return []

    # -- storefronts ----------------------------------------------------------------------------

    def oauth_for(self, shop: str) -> ShopifyOAuth:
        return ShopifyOAuth(shop, self.api_key, self._secret, api_version=self.api_version, session=self._http,
                            base_url=self.base_url(shop), timeout=self._timeout, clock=self._clock)

    def refresh(self, shop: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
        """New credentials from the refresh token (AuthError when Shopify refuses it)."""
        grant = self.oauth_for(shop).refresh_token(str(credentials.get("refresh_token") or ""))
        return credentials_from_grant(grant)

    def storefront_for(self, access: shops.ShopAccess, db: Database) -> ShopifyStorefront:
        """A storefront for an installed shop, from its decrypted credentials.

        An expiring token close to its end is refreshed first; a 401 during use refreshes once
        (``on_unauthorized``) and persists the new token; a refused refresh marks the shop
        ``needs_reauth`` and the call fails with ``AuthError``.
        """
        domain = sanitize_shop_domain(access.domain)
        credentials = dict(access.credentials)
        token = access.access_token
        if not token:
            raise ValidationError(f"shop {domain} has no access token", field="credentials")
        expires = _expires_at(credentials)
        if expires is not None and expires - REFRESH_MARGIN <= self._clock() and credentials.get("refresh_token"):
            fresh = self._refresh_stored(db, access.shop_id, domain, token)
            if fresh:
                token = fresh
        holder: dict[str, ShopifyClient] = {}

        def on_unauthorized() -> str | None:
            stale = holder["client"].access_token
            return self._refresh_stored(db, access.shop_id, domain, stale)

        client = ShopifyClient(domain, token, self.api_version, session=requests.Session(),
                               base_url=self.base_url(domain), on_unauthorized=on_unauthorized,
                               timeout=self._timeout, **self._client_options)
        holder["client"] = client
        return ShopifyStorefront(client, bulk_threshold=self._bulk_backfill_orders)

    def refresh_if_due(self, db: Database, shop_id: int, within: timedelta = timedelta(minutes=15)) -> bool:
        """The ``refresh_tokens`` job: renew an expiring token before it runs out; True when renewed.

        A refused refresh marks the shop ``needs_reauth`` (see ``shops.refresh_credentials``).
        """
        access = shops.shop_access(db, shop_id)
        if access.platform != self.platform or access.status != shops.INSTALLED:
            return False
        expires = _expires_at(access.credentials)
        if expires is None or not access.credentials.get("refresh_token") or expires - within > self._clock():
            return False
        fresh = self._refresh_stored(db, shop_id, sanitize_shop_domain(access.domain), access.access_token)
        return fresh is not None and fresh != access.access_token

    def _refresh_stored(self, db: Database, shop_id: int, domain: str, stale: str | None) -> str | None:
        fresh = shops.refresh_credentials(db, shop_id, stale, lambda creds: self.refresh(domain, creds), self._clock())
        token = (fresh or {}).get("access_token")
        return str(token) if token else None


class ShopifyAuth(_BaseUrls):
    """The checks and grants of the install/embedded flows (``connector.web.shopify_app``'s
    ``ShopifyAuthPort``). Credentials it returns are ``Shop.credentials`` bundles."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        api_version: str = DEFAULT_API_VERSION,
        base_url_for: Callable[[str], str | None] | None = None,
        *,
        timeout: float = 10,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        super().__init__(base_url_for)
        self.api_key = api_key
        self._secret = api_secret
        self.api_version = api_version
        self._timeout = timeout
        self._clock = clock
        self._http = requests.Session()

    def _oauth(self, shop: str) -> ShopifyOAuth:
        return ShopifyOAuth(shop, self.api_key, self._secret, api_version=self.api_version, session=self._http,
                            base_url=self.base_url(shop), timeout=self._timeout, clock=self._clock)

    def sanitize_shop(self, raw: str) -> str:
        return sanitize_shop_domain(raw)

    def permission_url(self, shop: str, scopes: tuple[str, ...], redirect_uri: str, state: str) -> str:
        return self._oauth(shop).permission_url(scopes, redirect_uri, state)

    def validate_callback(self, params: Mapping[str, str], expected_state: str) -> str:
        return validate_oauth_query(params, self.api_key, self._secret, expected_state)

    def exchange_code(self, shop: str, code: str) -> dict[str, Any]:
        return credentials_from_grant(self._oauth(shop).exchange_code(code, expiring=True))

    def token_exchange(self, shop: str, session_token: str) -> dict[str, Any]:
        return credentials_from_grant(self._oauth(shop).token_exchange(session_token, expiring=True))

    def verify_session_token(self, token: str) -> str:
        return decode_session_token(token, self.api_key, self._secret)

    def verify_app_proxy(self, query: Any) -> str:
        return verify_app_proxy(query, self._secret)


def _resource(topic: str, payload: Mapping[str, Any]) -> tuple[str | None, datetime | None]:
    """The resource a delivery is about and its version, for ordering late deliveries."""
    try:
        if topic in INVENTORY_TOPICS:
            item, location = payload.get("inventory_item_id"), payload.get("location_id")
            rid = f"{mapping.external_id(item)}:{mapping.external_id(location)}" if item and location else None
        else:
            raw = payload.get("id")
            rid = mapping.external_id(raw) if raw is not None else None
    except MappingError:
        rid = None
    updated: datetime | None = None
    raw_updated = payload.get("updated_at")
    if isinstance(raw_updated, str):
        try:
            updated = datetime.fromisoformat(raw_updated.replace("Z", "+00:00"))
        except ValueError as exc:
            raise MalformedDelivery("updated_at is not ISO 8601", field="updated_at") from exc
        if updated.tzinfo is None:
            raise MalformedDelivery("updated_at has no offset", field="updated_at")
    return (rid[:64] if rid else None), updated
