"""Connecting a WooCommerce store: the signed ``user_id`` of the wc-auth flow, checking the keys,
registering webhooks, saving the shop, and the initial pull.

WooCommerce's key flow (``/wc-auth/v1/authorize``) POSTs the new keys to our callback URL with the
``user_id`` we put in the authorize URL, unauthenticated. ``user_id`` is therefore a signed,
expiring token (itsdangerous) naming the store URL the merchant asked to connect; the callback
only trusts that store URL, and the keys are used for a test call against *that* store before
anything is saved. A forged callback needs our signing key; a replayed one within the expiry
only re-saves keys that demonstrably work on the store named in the token.

Order of a connection (nothing is saved unless every check passed): keys checked with a read
call → webhooks registered with the shop's secret (a read-only key fails here) → shop saved with
the keys and secret encrypted (``Shop.credentials`` / ``Shop.webhook_secret`` are Fernet
columns) → initial pull. A reconnect keeps the shop, its data and its webhook secret.

The adapter comes in as a :class:`WooConnector` argument (``adapters.woocommerce.gateway.WooGateway``
implements it); this module imports no adapter and no Flask.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import Shop
from connector.db.uow import UnitOfWork
from connector.errors import AuthError, ConnectorError, PlatformError, SignatureError, ValidationError
from connector.ports import Storefront
from connector.services.sync import PullReport, pull_store

log = logging.getLogger(__name__)

PLATFORM = "woocommerce"
TOKEN_SALT = "backorders.woocommerce.connect"
TOKEN_MAX_AGE = 15 * 60  # seconds between "connect" and WooCommerce's callback


class WooConnector(Protocol):
    """What the connect flow needs from the WooCommerce adapter."""

    def normalize_store_url(self, url: str) -> str: ...

    def shop_domain(self, store_url: str) -> str: ...

    def check_keys(self, store_url: str, consumer_key: str, consumer_secret: str) -> None: ...

    def register_webhooks(self, shop: Any, delivery_url: str) -> dict[str, int]: ...

    def storefront_for(self, shop: Any) -> Storefront: ...


class ConnectRefused(ValidationError):
    """The store could not be connected; ``message`` is written for the merchant."""

    code = "connect_refused"


@dataclass(frozen=True, slots=True)
class Connected:
    shop_id: int
    domain: str
    created: bool
    webhooks: dict[str, int]


# ---------------------------------------------------------------------- signed user_id


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    if not secret_key:
        raise ValidationError("SECRET_KEY is required to sign the connect request", field="secret_key")
    return URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)


def make_connect_token(secret_key: str, store_url: str) -> str:
    """The ``user_id`` for the authorize URL: the store URL, signed and timestamped."""
    return str(_serializer(secret_key).dumps({"store": store_url, "nonce": secrets.token_urlsafe(8)}))


def read_connect_token(secret_key: str, token: object, max_age: int = TOKEN_MAX_AGE) -> str:
    """The store URL inside a ``user_id``; SignatureError when forged, altered or expired."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise SignatureError("the connect request carries no user_id")
    try:
        data = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired:
        raise SignatureError("the connect request expired: start the connection again") from None
    except BadSignature:
        raise SignatureError("the connect request was not issued by this app") from None
    store = data.get("store") if isinstance(data, dict) else None
    if not isinstance(store, str) or not store:
        raise SignatureError("the connect request names no store")
    return store


# ---------------------------------------------------------------------- connecting


def _explain(exc: PlatformError, store_url: str, step: str) -> ConnectRefused:
    if isinstance(exc, AuthError):
        if step == "webhooks":
            message = (
                "These keys can read but not write: create keys with Read/Write permission "
                "(WooCommerce > Settings > Advanced > REST API) and try again."
            )
        else:
            message = (
                "WooCommerce refused these keys. Check the consumer key and secret (WooCommerce > "
                "Settings > Advanced > REST API) and that they belong to a user who can manage WooCommerce."
            )
            if "Authorization header" in exc.message:
                message += " The store received no credentials: the web host may strip the Authorization header."
    elif exc.status == 404:
        message = (
            f"The WooCommerce REST API is not reachable at {store_url}/wp-json/wc/v3. Turn on pretty "
            "permalinks (Settings > Permalinks), make sure WooCommerce is active and no plugin disables the REST API."
        )
    elif exc.status is None:
        message = f"The store at {store_url} could not be reached; check the address and try again."
    else:
        message = f"The store answered with an error (HTTP {exc.status}); try again later."
    return ConnectRefused(message, field="consumer_key", detail=exc.message)


def connect_store(
    db: Database,
    connector: WooConnector,
    store_url: str,
    consumer_key: str,
    consumer_secret: str,
    delivery_url: str,
    now: datetime,
    *,
    key_id: int | None = None,
    key_permissions: str | None = None,
) -> Connected:
    """Check the keys, register webhooks, save the shop. Raises ConnectRefused (nothing saved)."""
    store_url = connector.normalize_store_url(store_url)
    domain = connector.shop_domain(store_url)
    consumer_key, consumer_secret = (consumer_key or "").strip(), (consumer_secret or "").strip()
    if not consumer_key.startswith("ck_") or not consumer_secret.startswith("cs_"):
        raise ConnectRefused(
            "WooCommerce keys start with ck_ (consumer key) and cs_ (consumer secret).", field="consumer_key"
        )
    if key_permissions is not None and key_permissions != "read_write":
        raise ConnectRefused(f"The keys were granted {key_permissions!r} access; Read/Write is needed.",
                             field="key_permissions")
    try:
        connector.check_keys(store_url, consumer_key, consumer_secret)
    except PlatformError as exc:
        raise _explain(exc, store_url, "check") from exc

    with UnitOfWork(db, readonly=True) as uow:
        existing = uow.session.scalars(
            select(Shop).where(Shop.platform == PLATFORM, Shop.domain == domain)
        ).first()
        secret = existing.webhook_secret if existing is not None and existing.webhook_secret else None
    secret = secret or secrets.token_urlsafe(32)
    credentials: dict[str, Any] = {
        "store_url": store_url,
        "consumer_key": consumer_key,
        "consumer_secret": consumer_secret,
        "key_id": key_id,
        "key_permissions": key_permissions or "read_write",
    }
    draft = SimpleNamespace(domain=domain, credentials=credentials, webhook_secret=secret)
    try:
        webhooks = connector.register_webhooks(draft, delivery_url)
    except PlatformError as exc:
        raise _explain(exc, store_url, "webhooks") from exc
    credentials["webhook_ids"] = webhooks

    with UnitOfWork(db) as uow:
        shop = uow.session.scalars(select(Shop).where(Shop.platform == PLATFORM, Shop.domain == domain)).first()
        created = shop is None
        if shop is None:
            shop = uow.add(Shop(platform=PLATFORM, domain=domain, name=domain, created_at=now, settings={}))
        shop.credentials = credentials
        shop.webhook_secret = secret
        shop.scopes = "read_write"
        shop.status = "installed"
        shop.uninstalled_at = None
        uow.commit()
        shop_id = shop.id
    log.info("woocommerce store %s connected (shop %s, %s)", domain, shop_id, "new" if created else "reconnected")
    return Connected(shop_id=shop_id, domain=domain, created=created, webhooks=webhooks)


def initial_pull(db: Database, connector: WooConnector, shop_id: int, now: datetime) -> PullReport | None:
    """Backfill products and orders; a failure is logged, not raised (the periodic pull resumes
    from the cursors, and webhooks already flow)."""
    try:
        with UnitOfWork(db, shop_id, readonly=True) as uow:
            storefront = connector.storefront_for(uow.shop())
        return pull_store(db, shop_id, storefront, now)
    except ConnectorError as exc:
        log.warning("initial pull of shop %s stopped: %s", shop_id, exc.message)
        return None


class _Bindable(Protocol):
    def for_shop(self, shop: Any) -> Any: ...


def shop_gateway(db: Database, shop_id: int, gateway: _Bindable) -> Any:
    """``gateway`` bound to one shop's store client, for ``webhooks.process_pending``: variable
    products in ``product.updated`` then get their variations fetched."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        return gateway.for_shop(uow.shop())
