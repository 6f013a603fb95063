"""What every merchant page shares: the database, the clock, the signed-in shop, CSRF, and a
small form validator that collects one error per field (shown next to the field)."""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, current_app, g, request, session
from werkzeug.datastructures import MultiDict

from connector.db.engine import Database

CSRF_FIELD = "csrf_token"
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")


def get_db() -> Database:
    db: Database = current_app.extensions["backorders.db"]
    return db


def utcnow() -> datetime:
    """The request's clock; tests and the demo may install ``backorders.clock`` (a callable)."""
    clock: Callable[[], datetime] | None = current_app.extensions.get("backorders.clock")
    return clock() if clock is not None else datetime.now(UTC)


def shop_id() -> int:
    """The signed-in shop (the merchant blueprint refuses requests without one)."""
    value: int = g.shop_id
    return value


def csrf_token() -> str:
    if g.get("embedded") is not None:
        # Inside the Shopify admin the session token on each request does CSRF's job, and a
        # cookie set from the admin's frame would be a third-party cookie: set none.
        return ""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def session_token_from_request() -> str | None:
    """The Shopify session token a request carries, or None (then the cookie sign-in applies).

    ``Authorization: Bearer`` (our embedded.js, on every fetch) or, on GET/HEAD only, the
    ``id_token`` query parameter the Shopify admin puts on the URL it loads in its iframe. A
    state-changing request must send the header: a token in a POST's URL would sit in logs.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if request.method in ("GET", "HEAD"):
        return request.args.get("id_token") or None
    return None


APP_BRIDGE = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
ADMIN_ORIGIN = "https://admin.shopify.com"


def content_security_policy(embedded_shop: str | None = None) -> str:
    """The merchant pages' CSP. On their own they may be framed by nobody but themselves; inside
    the admin only by the signed-in shop and the admin (Shopify's iframe-protection rule, no
    wildcards), and then App Bridge, Shopify's required script, is the one script from elsewhere."""
    frame_ancestors, scripts = "'self'", "'self'"
    if embedded_shop:
        frame_ancestors = f"https://{embedded_shop} {ADMIN_ORIGIN}"
        scripts = f"'self' {APP_BRIDGE}"
    return (
        f"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        f"script-src {scripts}; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {frame_ancestors}"
    )


def check_csrf() -> None:
    """Refuse (400) a state-changing request whose form token is missing or wrong."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token")
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        abort(400, description="The form expired or did not come from this site; reload the page and try again.")


@dataclass
class Form:
    """Parse and validate submitted fields; ``errors`` maps a field to its message."""

    data: MultiDict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raw(self, name: str) -> str:
        return (self.data.get(name) or "").strip()

    def _set(self, name: str, value: Any) -> Any:
        self.values[name] = value
        return value

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(self, name: str, *, required: bool = False, max_length: int = 255, multiline: bool = False) -> str | None:
        value = (self.data.get(name) or "") if multiline else self.raw(name)
        if not value.strip():
            if required:
                self.error(name, "this field is required")
            return self._set(name, None)
        if len(value) > max_length:
            self.error(name, f"at most {max_length} characters")
        elif not multiline and any(ord(c) < 32 for c in value):
            self.error(name, "control characters are not allowed")
        return self._set(name, value)

    def email(self, name: str, *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value and not EMAIL.match(value):
            self.error(name, "enter a valid e-mail address")
        return value.lower() if value else value

    def integer(self, name: str, *, minimum: int = 0, maximum: int = 1_000_000, required: bool = True) -> int | None:
        raw = self.raw(name)
        if not raw:
            if required:
                self.error(name, "enter a whole number")
            return self._set(name, None)
        try:
            value = int(raw)
        except ValueError:
            self.error(name, "enter a whole number")
            return self._set(name, None)
        if not minimum <= value <= maximum:
            self.error(name, f"enter a number from {minimum} to {maximum}")
        return self._set(name, value)

    def money(self, name: str, *, required: bool = True) -> int | None:
        """A non-negative amount with at most two decimals, as integer cents."""
        raw = self.raw(name).replace(",", ".")
        if not raw:
            if required:
                self.error(name, "enter an amount")
            return self._set(name, 0 if not required else None)
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            self.error(name, "enter an amount like 12.50")
            return self._set(name, None)
        if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")) or amount > 10**9:
            self.error(name, "enter a positive amount with at most two decimals")
            return self._set(name, None)
        return self._set(name, int(amount * 100))

    def date(self, name: str, *, required: bool = False) -> date | None:
        raw = self.raw(name)
        if not raw:
            if required:
                self.error(name, "enter a date")
            return self._set(name, None)
        try:
            return self._set(name, date.fromisoformat(raw))
        except ValueError:
            self.error(name, "enter a date as YYYY-MM-DD")
            return self._set(name, None)

    def boolean(self, name: str) -> bool:
        return bool(self._set(name, self.raw(name) in ("1", "on", "yes", "true")))

    def choice(self, name: str, choices: tuple[str, ...], *, default: str | None = None) -> str | None:
        value = self.raw(name) or default
        if value not in choices:
            self.error(name, "choose one of the options")
            return self._set(name, None)
        return self._set(name, value)

    def colour(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        if not COLOUR.match(value):
            self.error(name, "enter a colour like #1f5f8b")
            return self._set(name, default)
        return str(self._set(name, value.lower()))


def money(cents: int | None) -> str:
    if cents is None:
        return ""
    return f"{cents // 100}.{cents % 100:02d}"
