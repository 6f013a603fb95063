"""The one module that talks to Shopify: GraphQL over HTTP, OAuth and token helpers.

The ShopifyAPI SDK (``shopify``) is imported here and nowhere else. It is used only where it is
good (permission URL, OAuth query HMAC, session-token JWT, shop-domain sanitizing); GraphQL goes
through a per-shop ``requests.Session`` because the SDK's ``GraphQL().execute`` has no timeout,
shares process-global session state and ignores ``errors``/throttling that arrive with HTTP 200.

Every failure leaves this module as a :mod:`connector.errors` exception; raw ``requests``
exceptions and SDK exceptions never escape.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
import shopify
from shopify import session_token as _session_token
from shopify.utils import shop_url as _shop_url

from connector.errors import AuthError, PlatformError, SignatureError, ThrottledError, ValidationError

log = logging.getLogger(__name__)

DEFAULT_API_VERSION = "2026-04"
SHOP_DOMAIN_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------
# shop domains
# ---------------------------------------------------------------------------------------------


def sanitize_shop_domain(shop: str) -> str:
    """``"My-Shop"``/``"https://my-shop.myshopify.com/"`` → ``"my-shop.myshopify.com"`` or ValidationError.

    The SDK normalizes; the anchored regex from platforms.md then refuses anything else (custom
    domains, ports, paths), because this value ends up in URLs we send the access token to.
    """
    if not isinstance(shop, str):
        raise ValidationError("shop must be a string", field="shop")
    return _sanitize(shop)


@functools.lru_cache(maxsize=4096)  # pure, and every webhook checks its shop header twice
def _sanitize(shop: str) -> str:
    cleaned = _shop_url.sanitize_shop_domain(shop)
    if not cleaned or not SHOP_DOMAIN_RE.match(cleaned):
        raise ValidationError(f"not a myshopify.com shop domain: {shop!r}", field="shop")
    return cleaned


# ---------------------------------------------------------------------------------------------
# GraphQL
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float
    observed_at: float  # monotonic seconds


class ShopifyClient:
    """GraphQL Admin API client for one shop, safe to share between threads of one worker.

    Pacing: every response carries ``extensions.cost.throttleStatus``; before sending, the client
    estimates the bucket now (last reading + restore rate × elapsed) and waits until the query's
    expected cost still leaves ``reserve`` (20 %) of the bucket free. If Shopify throttles anyway
    (HTTP 200 with ``THROTTLED``), it waits ``(requested − available) / restoreRate`` and retries.
    """

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        api_version: str = DEFAULT_API_VERSION,
        session: requests.Session | None = None,
        base_url: str | None = None,
        on_unauthorized: Callable[[], str | None] | None = None,
        timeout: float = 10,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_retries: int = 4,
        max_throttle_retries: int = 40,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        reserve: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.shop_domain = sanitize_shop_domain(shop_domain)
        self.api_version = api_version
        self._token = access_token
        self._session = session or requests.Session()
        self._base = (base_url or f"https://{self.shop_domain}").rstrip("/")
        self._on_unauthorized = on_unauthorized
        self._timeout = timeout
        self._sleep = sleep
        self._max_retries = max_retries
        self._max_throttle_retries = max_throttle_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._reserve = reserve
        self._clock = clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self.throttle: ThrottleStatus | None = None
        self._expected_cost: dict[str, float] = {}
        self.stats = {"requests": 0, "throttled": 0, "server_errors": 0, "paced_seconds": 0.0}

    @property
    def endpoint(self) -> str:
        return f"{self._base}/admin/api/{self.api_version}/graphql.json"

    @property
    def access_token(self) -> str:
        return self._token

    # -- public -------------------------------------------------------------------------------

    def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL document and return its ``data``; raise a connector error otherwise."""
        body = {"query": query, "variables": dict(variables or {})}
        server_failures = 0
        throttled = 0
        refreshed = False
        while True:
            self._pace(query)
            try:
                response = self._post(body)
            except (requests.Timeout, requests.ConnectionError) as exc:
                server_failures += 1
                self.stats["server_errors"] += 1
                if server_failures > self._max_retries:
                    raise PlatformError(f"Shopify unreachable: {exc}", retryable=True) from exc
                log.warning("%s: %s, retry %d", self.shop_domain, type(exc).__name__, server_failures)
                self._backoff(server_failures)
                continue
            except requests.RequestException as exc:
                raise PlatformError(f"request to Shopify failed: {exc}", retryable=False) from exc

            status = response.status_code
            if status == 401:
                if not refreshed and self._on_unauthorized is not None:
                    refreshed = True
                    fresh = self._on_unauthorized()
                    if fresh:
                        self._token = fresh
                        continue
                raise AuthError("Shopify refused the access token", status=401)
            if status == 403:
                raise AuthError(f"access denied: {response.text[:200]}", status=403)
            if status == 429 or status >= 500:
                server_failures += 1
                self.stats["server_errors"] += 1
                retry_after = _retry_after(response)
                if server_failures > self._max_retries:
                    raise PlatformError(
                        f"Shopify answered HTTP {status}",
                        status=status,
                        retryable=True,
                        retry_after=retry_after,
                    )
                log.warning("%s: HTTP %d, retry %d", self.shop_domain, status, server_failures)
                self._backoff(server_failures, retry_after)
                continue
            if status >= 400:
                raise PlatformError(f"Shopify answered HTTP {status}: {response.text[:200]}", status=status)
            try:
                payload = response.json()
            except ValueError as exc:
                raise PlatformError(
                    "Shopify answered with invalid JSON", status=status, retryable=True
                ) from exc
            if not isinstance(payload, dict):
                raise PlatformError("Shopify answered with a non-object", status=status, retryable=True)

            cost = (payload.get("extensions") or {}).get("cost") or {}
            self._observe(query, cost)
            errors = payload.get("errors") or []
            if errors and _is_throttled(errors):
                throttled += 1
                self.stats["throttled"] += 1
                wait = self._throttle_wait(cost)
                if throttled > self._max_throttle_retries:
                    raise ThrottledError("still throttled after many waits", retryable=True, retry_after=wait)
                log.info("%s: throttled, waiting %.2f s", self.shop_domain, wait)
                self._sleep(wait)
                continue
            if errors:
                codes = [
                    ((e or {}).get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)
                ]
                message = "; ".join(str((e or {}).get("message", e)) for e in errors if isinstance(e, dict))
                if "ACCESS_DENIED" in codes:
                    raise AuthError(f"GraphQL access denied: {message}", status=status, codes=codes)
                raise PlatformError(f"GraphQL errors: {message or errors}", status=status, codes=codes)
            data = payload.get("data")
            if not isinstance(data, dict):
                raise PlatformError("GraphQL response without data", status=status)
            return data

    def stream_lines(self, url: str) -> Iterator[bytes]:
        """Yield the lines of a bulk-operation result file without loading it into memory.

        The URL is pre-signed (no access token is sent). A failure before the first byte is
        retried like a GraphQL request; a failure mid-stream raises a retryable PlatformError,
        since the file cannot be resumed line-exactly.
        """
        failures = 0
        while True:
            try:
                response = self._session.get(url, stream=True, timeout=self._timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                failures += 1
                if failures > self._max_retries:
                    raise PlatformError(f"bulk result unreachable: {exc}", retryable=True) from exc
                self._backoff(failures)
                continue
            if response.status_code >= 500 and failures < self._max_retries:
                response.close()
                failures += 1
                self._backoff(failures)
                continue
            if response.status_code != 200:
                response.close()
                raise PlatformError(
                    f"bulk result answered HTTP {response.status_code}",
                    status=response.status_code,
                    retryable=response.status_code >= 500,
                )
            break
        with response:
            try:
                for line in response.iter_lines():
                    if line:
                        yield line
            except requests.RequestException as exc:
                raise PlatformError(f"bulk result download broke off: {exc}", retryable=True) from exc

    # -- internals ----------------------------------------------------------------------------

    def _post(self, body: dict[str, Any]) -> requests.Response:
        headers = {
            "X-Shopify-Access-Token": self._token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        if not self._base.startswith("https://"):
            # the sandbox routes by host like Shopify does; a real shop URL already carries it
            headers["Host"] = self.shop_domain
        self.stats["requests"] += 1
        return self._session.post(
            self.endpoint, data=json.dumps(body), headers=headers, timeout=self._timeout
        )

    def _backoff(self, attempt: int, retry_after: float | None = None) -> None:
        delay = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        delay = delay / 2 + self._jitter() * delay / 2  # "equal jitter": never zero, never herd
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._sleep(delay)

    def _observe(self, query: str, cost: Mapping[str, Any]) -> None:
        status = cost.get("throttleStatus") if isinstance(cost, Mapping) else None
        try:
            if status:
                with self._lock:
                    self.throttle = ThrottleStatus(
                        float(status["maximumAvailable"]),
                        float(status["currentlyAvailable"]),
                        float(status["restoreRate"]),
                        self._clock(),
                    )
            requested = cost.get("requestedQueryCost")
            if requested is not None:
                self._expected_cost[query] = float(requested)
        except (KeyError, TypeError, ValueError):
            log.warning("unreadable cost extension from %s: %r", self.shop_domain, cost)

    def _throttle_wait(self, cost: Mapping[str, Any]) -> float:
        try:
            requested = float(cost["requestedQueryCost"])
            status = cost["throttleStatus"]
            available = float(status["currentlyAvailable"])
            rate = float(status["restoreRate"]) or 1.0
            return max(0.05, (requested - available) / rate)
        except (KeyError, TypeError, ValueError):
            return 1.0

    def _pace(self, query: str) -> None:
        """Wait so that the expected cost of ``query`` still leaves the reserve in the bucket."""
        with self._lock:
            t = self.throttle
        if t is None or t.restore_rate <= 0:
            return
        expected = self._expected_cost.get(query, 0.0)
        now = self._clock()
        estimate = min(t.maximum_available, t.currently_available + (now - t.observed_at) * t.restore_rate)
        floor = self._reserve * t.maximum_available
        # a query bigger than the non-reserved part can only wait for a full bucket
        needed = min(expected + floor, t.maximum_available)
        if estimate >= needed:
            return
        wait = (needed - estimate) / t.restore_rate
        self.stats["paced_seconds"] += wait
        self._sleep(wait)


def _is_throttled(errors: list[Any]) -> bool:
    return any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def raise_user_errors(payload: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Return ``payload[path]`` or raise when its ``userErrors`` is not empty.

    A user error that names a field (``["variants", "0", "inventoryPolicy"]``) is a
    :class:`ValidationError` with ``field="variants.0.inventoryPolicy"``: our input was wrong and
    retrying will not help. One without a field is a non-retryable :class:`PlatformError`.
    """
    result = payload.get(path) if isinstance(payload, Mapping) else None
    if not isinstance(result, dict):
        raise PlatformError(f"mutation {path} returned no payload", field=path)
    errors = result.get("userErrors") or []
    if not errors:
        return result
    first = errors[0] if isinstance(errors[0], dict) else {}
    field_parts = first.get("field") or []
    message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
    codes = [e.get("code") for e in errors if isinstance(e, dict) and e.get("code")]
    if field_parts:
        field = ".".join(str(p) for p in field_parts)
        raise ValidationError(f"{path}: {message}", field=field, user_errors=errors, codes=codes)
    raise PlatformError(f"{path}: {message}", field=path, user_errors=errors, codes=codes)


# ---------------------------------------------------------------------------------------------
# OAuth, tokens, session JWTs
# ---------------------------------------------------------------------------------------------


def _app_session_class(api_key: str, secret: str) -> type[shopify.Session]:
    """A private ``shopify.Session`` subclass configured with ``setup``.

    ``Session.setup`` sets class attributes; doing it on the SDK's own class would make the app
    credentials process-global state. A subclass per call keeps them local.
    """
    cls: type[shopify.Session] = type("AppSession", (shopify.Session,), {})
    cls.setup(api_key=api_key, secret=secret)
    return cls


def validate_oauth_query(
    params: Mapping[str, str], api_key: str, secret: str, expected_state: str | None = None
) -> str:
    """Check an OAuth callback/install query (hmac, 24 h timestamp, shop, state) → the shop domain.

    Raises :class:`SignatureError` for a bad or stale HMAC or a wrong ``state``, and
    :class:`ValidationError` for a shop that is not a myshopify.com domain.
    """
    plain = {k: v for k, v in params.items()}
    try:
        ok = _app_session_class(api_key, secret).validate_params(plain)
    except (ValueError, TypeError, AttributeError) as exc:
        raise SignatureError(f"unreadable OAuth query: {exc}", field="hmac") from exc
    if not ok:
        raise SignatureError("OAuth query HMAC does not verify (or is older than 24 h)", field="hmac")
    if expected_state is not None:
        if not hmac.compare_digest(str(plain.get("state", "")).encode(), expected_state.encode()):
            raise SignatureError("OAuth state does not match this browser", field="state")
    return sanitize_shop_domain(plain.get("shop", ""))


def decode_session_jwt(token: str, api_key: str, secret: str) -> dict[str, Any]:
    """Verify an App Bridge session token (HS256, aud = API key, iss root == dest, 10 s leeway)."""
    if not isinstance(token, str) or not token:
        raise SignatureError("missing session token", field="authorization")
    header = token if token.startswith(_session_token.PREFIX) else _session_token.PREFIX + token
    try:
        payload = _session_token.decode_from_header(header, api_key=api_key, secret=secret)
    except _session_token.SessionTokenError as exc:
        raise SignatureError(f"session token refused: {exc}", field="authorization") from exc
    except Exception as exc:  # the SDK lets KeyError/ValueError through on odd claims
        raise SignatureError(f"session token unreadable: {exc}", field="authorization") from exc
    return dict(payload)


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    scope: str
    expires_at: datetime | None  # aware UTC; None for a non-expiring offline token
    refresh_token: str | None = None
    refresh_token_expires_at: datetime | None = None

    def expires_within(self, now: datetime, margin: timedelta = timedelta(minutes=5)) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= now


class ShopifyOAuth:
    """OAuth for one shop: permission URL, code grant, token exchange, refresh.

    ``base_url`` replaces ``https://{shop}`` (the sandbox); the grants are POSTed as JSON to
    ``{base}/admin/oauth/access_token``.
    """

    def __init__(
        self,
        shop_domain: str,
        api_key: str,
        api_secret: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        session: requests.Session | None = None,
        base_url: str | None = None,
        timeout: float = 10,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.shop_domain = sanitize_shop_domain(shop_domain)
        self.api_key = api_key
        self._secret = api_secret
        self.api_version = api_version
        self._session = session or requests.Session()
        self._base = (base_url or f"https://{self.shop_domain}").rstrip("/")
        self._timeout = timeout
        self._clock = clock

    def permission_url(self, scopes: list[str] | tuple[str, ...], redirect_uri: str, state: str) -> str:
        """Where to send the merchant to approve ``scopes`` (authorization-code install)."""
        session_cls = _app_session_class(self.api_key, self._secret)
        url: str = session_cls(self.shop_domain, self.api_version).create_permission_url(
            scope=list(scopes), redirect_uri=redirect_uri, state=state
        )
        prefix = f"https://{self.shop_domain}"
        if not self._base.startswith("https://") and url.startswith(prefix):
            url = self._base + url[len(prefix) :] + "&" + urlencode({"shop": self.shop_domain})
        return url

    def exchange_code(self, code: str, expiring: bool = False) -> TokenGrant:
        """Authorization-code grant; ``expiring=True`` asks for an expiring offline token
        (required for public apps created since 2026-04-01)."""
        body = {"client_id": self.api_key, "client_secret": self._secret, "code": code}
        if expiring:
            body["expiring"] = "1"
        return self._grant(body)

    def token_exchange(self, session_jwt: str, expiring: bool = True) -> TokenGrant:
        """Embedded apps: trade the App Bridge session token for an (expiring) offline token."""
        body = {
            "client_id": self.api_key,
            "client_secret": self._secret,
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": session_jwt,
            "subject_token_type": ID_TOKEN_TYPE,
            "requested_token_type": OFFLINE_TOKEN_TYPE,
        }
        if expiring:
            body["expiring"] = "1"
        return self._grant(body)

    def refresh_token(self, refresh_token: str) -> TokenGrant:
        return self._grant(
            {
                "client_id": self.api_key,
                "client_secret": self._secret,
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
            }
        )

    def _grant(self, body: dict[str, str]) -> TokenGrant:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if not self._base.startswith("https://"):
            headers["Host"] = self.shop_domain
        url = f"{self._base}/admin/oauth/access_token"
        try:
            response = self._session.post(url, data=json.dumps(body), headers=headers, timeout=self._timeout)
        except requests.RequestException as exc:
            raise PlatformError(f"token request failed: {exc}", retryable=True) from exc
        if response.status_code in (400, 401, 403):
            raise AuthError(f"token request refused: {response.text[:200]}", status=response.status_code)
        if response.status_code >= 300:
            raise PlatformError(
                f"token request answered HTTP {response.status_code}",
                status=response.status_code,
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            data = response.json()
            now = self._clock()
            expires_in = data.get("expires_in")
            refresh_in = data.get("refresh_token_expires_in")
            return TokenGrant(
                access_token=str(data["access_token"]),
                scope=str(data.get("scope", "")),
                expires_at=now + timedelta(seconds=int(expires_in)) if expires_in is not None else None,
                refresh_token=data.get("refresh_token"),
                refresh_token_expires_at=now + timedelta(seconds=int(refresh_in))
                if refresh_in is not None
                else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlatformError(f"unreadable token response: {exc}") from exc
