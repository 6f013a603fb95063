"""The one module that imports the ``woocommerce`` package.

``woocommerce.API`` 3.0.0 returns raw ``requests.Response`` objects and never raises on 4xx/5xx;
:class:`WooClient` checks every status and turns it into a ``connector.errors`` exception, retries
what waiting can fix (429/503 honouring ``Retry-After``, connection errors including a connection
the store closed without answering, timeouts) with a bounded, jittered backoff, pages lists and
chunks batches. A non-idempotent POST whose connection dropped after it was sent is not repeated
here (it may have been applied): it fails retryable with ``maybe_applied`` and the caller, which
can check the store, decides.

Authentication. The package picks the scheme from ``API.is_ssl`` (``url.startswith("https")``):
HTTP Basic for https, its own OAuth1 signing for plain http. That OAuth1 path is unusable here: it
appends the query to the URL *and* passes ``params`` to requests again (every parameter is sent
twice) and signs the duplicated form inconsistently. Store URLs must therefore be https; the only
exception is a loopback host (127.0.0.1, localhost, ::1: the sandbox and local development), for
which we set the public ``is_ssl`` attribute to ``True`` after construction so the package sends
the keys as HTTP Basic auth over loopback, where nothing leaves the machine. Caveat: a real
WordPress on plain-http localhost only accepts OAuth1 (its Basic-auth check requires
``is_ssl()``), so such a dev store must be put behind TLS or a proxy that sets HTTPS.

Some hosts (Apache with CGI/FastCGI) drop the ``Authorization`` header; WooCommerce then answers
401 ``woocommerce_rest_cannot_view``. ``query_string_auth=True`` makes the package send the keys
as ``consumer_key``/``consumer_secret`` query parameters instead (https only; they can end up in
access logs, so it is opt-in per shop).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
import woocommerce

from connector.errors import AuthError, PlatformError, ThrottledError, ValidationError

log = logging.getLogger(__name__)
PER_PAGE = 100
BATCH_LIMIT = 100
_LOOPBACK_NAMES = {"localhost"}
_RETRY_STATUSES = {429, 502, 503, 504}


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_store_url(url: str) -> str:
    """The normalized store URL (no trailing slash); https, or http on loopback only."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("store URL is required", field="url")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(f"store URL must be an absolute https URL: {url!r}", field="url")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValidationError(
            "store URL must use https (consumer keys would travel in clear text)", field="url"
        )
    if parts.query or parts.fragment or parts.username:
        raise ValidationError("store URL must not carry a query, fragment or credentials", field="url")
    return url.strip().rstrip("/")


def _retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _never_sent(exc: Exception) -> bool:
    """True when the request cannot have reached the store (connect refused or timed out)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3 2.x: NewConnectionError (refused, DNS) subclasses ConnectTimeoutError.
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _error_message(response: requests.Response) -> tuple[str | None, str | None]:
    """(code, message) of a WordPress REST error body, or (None, None) for non-JSON bodies."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    if isinstance(body, dict):
        code, message = body.get("code"), body.get("message")
        return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)
    return None, None


@dataclass
class PageStats:
    """What :meth:`WooClient.paginate` learnt: ``X-WP-Total`` of the first page, requests made."""

    total: int | None = None
    requests: int = 0


class WooClient:
    """WooCommerce REST v3 for one store; safe to share between threads (no mutable state)."""

    def __init__(
        self,
        url: str,
        consumer_key: str,
        consumer_secret: str,
        timeout: float = 30,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 4,
        max_retry_after: float = 60.0,
        backoff: float = 0.5,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        query_string_auth: bool = False,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.url = check_store_url(url)
        if not consumer_key or not consumer_secret:
            raise ValidationError("consumer key and secret are required", field="consumer_key")
        self._sleep = sleep
        self._now = now
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.backoff = backoff
        self._jitter = jitter
        self._api = woocommerce.API(
            url=self.url,
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            version="wc/v3",
            timeout=timeout,
            query_string_auth=query_string_auth,
        )
        if self.url.startswith("http://"):
            # Loopback only (checked above): force the Basic-auth branch, see module docstring.
            self._api.is_ssl = True

    # ------------------------------------------------------------------ core

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """One call with retries; returns the 2xx response or raises a connector error.

        ``idempotent`` (default: not POST) decides whether a read timeout or dropped connection
        may be retried: a POST that reached the store might have created a note or an object.
        429/503 are retried for every method (the host refused before doing anything), 502/504
        only for idempotent calls (the gateway may have lost the answer to an applied POST).
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method != "POST"
        endpoint = path.lstrip("/")
        attempt = 0
        while True:
            try:
                response = self._send(method, endpoint, params, data)
            except (requests.ConnectionError, requests.Timeout) as exc:
                connect_only = _never_sent(exc)
                if attempt >= self.max_retries or not (idempotent or connect_only):
                    raise PlatformError(
                        f"{method} {endpoint}: store unreachable ({type(exc).__name__})",
                        retryable=True,
                        path=endpoint,
                        maybe_applied=not connect_only,
                    ) from exc
                backoff = self._backoff(attempt)
                log.warning(
                    "woocommerce %s %s %s: %s; retry %d in %.1fs",
                    self.url,
                    method,
                    endpoint,
                    type(exc).__name__,
                    attempt + 1,
                    backoff,
                )
                self._sleep(backoff)
                attempt += 1
                continue

            status = response.status_code
            if 200 <= status < 300:
                return response
            if status in _RETRY_STATUSES:
                wait = _retry_after_seconds(response.headers.get("Retry-After"), self._now())
                # A gateway error (502/504) may hide a POST the store did apply: do not repeat it.
                repeatable = idempotent or status in (429, 503)
                if (
                    repeatable
                    and attempt < self.max_retries
                    and (wait is None or wait <= self.max_retry_after)
                ):
                    delay = self._backoff(attempt) if wait is None else wait
                    log.warning(
                        "woocommerce %s %s %s: HTTP %d; retry %d in %.1fs",
                        self.url,
                        method,
                        endpoint,
                        status,
                        attempt + 1,
                        delay,
                    )
                    self._sleep(delay)
                    attempt += 1
                    continue
                error_cls = ThrottledError if status == 429 else PlatformError
                raise error_cls(
                    f"{method} {endpoint}: store answered {status} on attempt {attempt + 1}"
                    + (f" (Retry-After {wait:g}s)" if wait is not None else ""),
                    status=status,
                    retryable=True,
                    retry_after=wait,
                    path=endpoint,
                    maybe_applied=status in (502, 504),
                )
            raise self._error(method, endpoint, response)

    def _send(
        self, method: str, endpoint: str, params: Mapping[str, Any] | None, data: Any
    ) -> requests.Response:
        query = dict(params or {})
        if method == "GET":
            return self._api.get(endpoint, params=query)
        if method == "POST":
            return self._api.post(endpoint, data, params=query)
        if method == "PUT":
            return self._api.put(endpoint, data, params=query)
        if method == "DELETE":
            return self._api.delete(endpoint, params=query)
        raise ValueError(f"unsupported method {method}")

    def _backoff(self, attempt: int) -> float:
        """Doubling from ``backoff``, capped at ``max_retry_after``, with "equal jitter" (half the
        step fixed, half random) so clients cut off together by a store restart or a dropped
        connection do not come back as one wave."""
        step = min(self.backoff * (2**attempt), self.max_retry_after)
        return step / 2 + self._jitter() * step / 2

    @staticmethod
    def _error(method: str, endpoint: str, response: requests.Response) -> PlatformError:
        status = response.status_code
        code, message = _error_message(response)
        detail = f"{code}: {message}" if code else f"HTTP {status}"
        where = f"{method} {endpoint}"
        if status in (401, 403):
            hint = ""
            if code == "woocommerce_rest_cannot_view":
                # WooCommerce saw no credentials at all: typically Apache/FastCGI dropping the
                # Authorization header. query_string_auth=True sends the keys as parameters instead.
                hint = "; no credentials reached WooCommerce: the host may strip the Authorization header"
            return AuthError(
                f"{where}: consumer key/secret refused ({detail}){hint}", status=status, code=code
            )
        if status == 404 and code in (None, "rest_no_route"):
            # An HTML 404 or "no route" for /wp-json/wc/v3 means the API is not reachable at all.
            return PlatformError(
                f"{where}: REST API disabled or permalinks not set (HTTP 404 {code or 'non-JSON'})",
                status=status,
                code=code,
            )
        if status == 404:
            return PlatformError(f"{where}: not found ({detail})", status=status, code=code)
        return PlatformError(
            f"{where}: {detail}",
            status=status,
            code=code,
            retryable=status >= 500,
        )

    @staticmethod
    def _json(response: requests.Response, where: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise PlatformError(
                f"{where}: store answered {response.status_code} with a non-JSON body",
                status=response.status_code,
            ) from None

    # ------------------------------------------------------------------ verbs

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self.request("GET", path, params=params), f"GET {path}")

    def post(self, path: str, data: Any, *, idempotent: bool | None = None) -> Any:
        return self._json(self.request("POST", path, data=data, idempotent=idempotent), f"POST {path}")

    def put(self, path: str, data: Any) -> Any:
        return self._json(self.request("PUT", path, data=data), f"PUT {path}")

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self.request("DELETE", path, params=params), f"DELETE {path}")

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, stats: PageStats | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, 100 per page, in exactly the requests needed.

        ``X-WP-TotalPages`` from the first page decides how many more to fetch; if a host strips
        the header we fall back to "a short page is the last one" (one extra request when the
        total is a multiple of 100). ``stats`` receives ``X-WP-Total`` and the request count.
        """
        query = dict(params or {})
        query["per_page"] = PER_PAGE
        page = 1
        total_pages: int | None = None
        while True:
            query["page"] = page
            response = self.request("GET", path, params=query)
            items = self._json(response, f"GET {path}")
            if not isinstance(items, list):
                raise PlatformError(f"GET {path}: expected a JSON list, got {type(items).__name__}")
            if total_pages is None:
                header = response.headers.get("X-WP-TotalPages")
                total_pages = int(header) if header and header.strip().isdigit() else -1
                total = response.headers.get("X-WP-Total", "")
                if stats is not None and total.strip().isdigit():
                    stats.total = int(total)
            if stats is not None:
                stats.requests += 1
            yield from items
            if total_pages >= 0:
                if page >= total_pages:
                    return
            elif len(items) < PER_PAGE:
                return
            page += 1

    def batch(
        self,
        path: str,
        create: Iterable[dict[str, Any]] = (),
        update: Iterable[dict[str, Any]] = (),
        delete: Iterable[int | str] = (),
    ) -> dict[str, list[Any]]:
        """POST ``{create, update, delete}`` to a batch endpoint, at most 100 objects per call.

        Returns the merged per-object results; objects WooCommerce refused come back as
        ``{"id": .., "error": {code, message}}`` entries (see :func:`batch_errors`). A batch with
        creates is not retried after a read timeout (it may have been applied); update/delete
        only batches are idempotent and are.
        """
        work: list[tuple[str, Any]] = (
            [("create", c) for c in create]
            + [("update", u) for u in update]
            + [("delete", d) for d in delete]
        )
        results: dict[str, list[Any]] = {"create": [], "update": [], "delete": []}
        for start in range(0, len(work), BATCH_LIMIT):
            chunk = work[start : start + BATCH_LIMIT]
            body: dict[str, list[Any]] = {}
            for kind, obj in chunk:
                body.setdefault(kind, []).append(obj)
            answer = self.post(path, body, idempotent="create" not in body)
            if not isinstance(answer, dict):
                raise PlatformError(f"POST {path}: batch answer is not an object")
            for kind in results:
                results[kind].extend(answer.get(kind) or [])
        return results


def batch_errors(results: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """The refused objects of a :meth:`WooClient.batch` result."""
    return [
        item
        for items in results.values()
        for item in items
        if isinstance(item, dict) and isinstance(item.get("error"), dict)
    ]
