"""The shop settings a merchant edits, checked and normalised before they are stored.

``Shop.settings`` is one JSON document read by many services; a bad value saved here would be
found later, by a job, far from the person who typed it. So every key the settings page (and
any API) writes goes through :func:`validate_settings`, which returns the normalised value or
raises :class:`~connector.errors.ValidationError` whose ``field`` is the key's dotted path
(``branding.reply_to``, ``schedules.consolidate.daily_at``): the page shows the message next to
that field and nothing is saved.

The keys, and who reads them:

- ``schedules``: {job: {"every_minutes": N} | {"daily_at": "HH:MM"}} — ``jobs.schedules``;
  ``daily_at`` is in ``Shop.timezone`` (the ``timezone`` change here, an IANA name).
- ``language``: "en" | "fr" — customer e-mails and storefront texts.
- ``branding``: {logo_url (https), reply_to, from_addr} — ``notifications._branding``.
- ``cancellation_mode``: "dashboard" | "storefront" — ``cancellation.MODES``.
- ``ship_to``: an address (``supplier_documents.ADDRESS_FIELDS``) printed on purchase orders.
- ``thirty_day_auto_cancel_days``: days, or None for never — the thirty-day rule.
- ``notify_by``: {kind: "email" | "store_note" | "off"}; also writes ``emails`` {kind: bool} for
  the code that reads only that.
- ``storefront_eta``: {"format": "date" | "weeks" | "hidden"} — ``storefront_push``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.errors import ValidationError
from connector.messages import KINDS, LANGUAGES
from connector.services.cancellation import MODES as CANCELLATION_MODES
from connector.services.supplier_documents import ADDRESS_FIELDS

EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\".]{2,}$")
HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MIN_EVERY_MINUTES = 5
MAX_EVERY_MINUTES = 7 * 24 * 60
NOTIFY_CHOICES = ("email", "store_note", "off")
ETA_FORMATS = ("date", "weeks", "hidden")
MAX_AUTO_CANCEL_DAYS = 365
MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class Schedule:
    """When one job runs for one shop: exactly one of ``every_minutes`` and ``daily_at``."""

    every_minutes: int | None = None
    daily_at: time | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.daily_at is not None:
            return {"daily_at": self.daily_at.strftime("%H:%M")}
        return {"every_minutes": self.every_minutes}

    def describe(self) -> str:
        if self.daily_at is not None:
            return f"daily at {self.daily_at.strftime('%H:%M')}"
        return f"every {self.every_minutes} minutes"


# The jobs a shop may time, and what they do when it has not: the old global intervals.
SCHEDULE_DEFAULTS: dict[str, Schedule] = {
    "pull_store": Schedule(every_minutes=60),
    "consolidate": Schedule(every_minutes=15),
    "dropship_check": Schedule(every_minutes=60),
}


def parse_time(value: Any, field: str) -> time:
    if not isinstance(value, str) or not (match := HHMM.match(value.strip())):
        raise ValidationError("enter a time of day as HH:MM, from 00:00 to 23:59", field=field)
    return time(int(match.group(1)), int(match.group(2)))


def parse_every(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_EVERY_MINUTES <= value <= MAX_EVERY_MINUTES:
        raise ValidationError(f"enter whole minutes from {MIN_EVERY_MINUTES} to {MAX_EVERY_MINUTES}", field=field)
    return value


def parse_schedule(job: str, raw: Any) -> Schedule:
    """One job's schedule; raises ValidationError naming ``schedules.<job>[.<key>]``."""
    prefix = f"schedules.{job}"
    if job not in SCHEDULE_DEFAULTS:
        raise ValidationError(f"{job!r} has no per-shop schedule; known: {', '.join(SCHEDULE_DEFAULTS)}",
                              field=prefix)
    if not isinstance(raw, Mapping) or len(raw) != 1 or not {"every_minutes", "daily_at"} >= set(raw):
        raise ValidationError("give either every_minutes or daily_at", field=prefix)
    if "daily_at" in raw:
        return Schedule(daily_at=parse_time(raw["daily_at"], f"{prefix}.daily_at"))
    return Schedule(every_minutes=parse_every(raw["every_minutes"], f"{prefix}.every_minutes"))


def parse_schedules(raw: Any) -> dict[str, Schedule]:
    """The whole ``schedules`` setting (None: {}); raises ValidationError on any bad entry."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationError("schedules must map a job to its schedule", field="schedules")
    return {str(job): parse_schedule(str(job), value) for job, value in raw.items()}


def parse_timezone(name: Any, field: str = "timezone") -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("enter a time zone such as Europe/Paris", field=field)
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r}; use a name such as Europe/Paris", field=field) from None


def _choice(value: Any, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise ValidationError(f"choose one of: {', '.join(choices)}", field=field)
    return str(value)


def _text(raw: Mapping[str, Any], key: str, field: str) -> str | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise ValidationError(f"enter text of at most {MAX_TEXT} characters on one line", field=field)
    return value.strip()


def _mapping(raw: Any, allowed: tuple[str, ...], field: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{field} must be an object", field=field)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValidationError(f"unknown key {unknown[0]!r}; known: {', '.join(allowed)}", field=f"{field}.{unknown[0]}")
    return raw


def _email(raw: Mapping[str, Any], key: str, field: str) -> str | None:
    value = _text(raw, key, field)
    if value is not None and not EMAIL.match(value):
        raise ValidationError("enter a valid e-mail address", field=field)
    return value.lower() if value else None


def _https_url(raw: Mapping[str, Any], key: str, field: str) -> str | None:
    value = _text(raw, key, field)
    if value is None:
        return None
    parts = urlsplit(value)
    # https only: the logo is loaded by the customer's mail client, and http images are blocked
    # or flagged by most of them (and would leak who opened the e-mail over the network).
    if parts.scheme != "https" or not parts.hostname or " " in value or parts.username or parts.password:
        raise ValidationError("enter an https:// address of an image", field=field)
    return value


def _branding(raw: Any) -> dict[str, str]:
    brand = _mapping(raw, ("logo_url", "reply_to", "from_addr"), "branding")
    values = {
        "logo_url": _https_url(brand, "logo_url", "branding.logo_url"),
        "reply_to": _email(brand, "reply_to", "branding.reply_to"),
        "from_addr": _email(brand, "from_addr", "branding.from_addr"),
    }
    return {k: v for k, v in values.items() if v is not None}


def _ship_to(raw: Any) -> dict[str, str] | None:
    """None when blank: purchase orders then fall back to the shop's name (an empty stored
    address would print an empty block instead)."""
    if raw is None:
        return None
    address = _mapping(raw, ADDRESS_FIELDS, "ship_to")
    values = {k: _text(address, k, f"ship_to.{k}") for k in ADDRESS_FIELDS}
    country = values.get("country_code")
    if country is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise ValidationError("enter a two-letter country code such as FR", field="ship_to.country_code")
        values["country_code"] = country.upper()
    cleaned = {k: v for k, v in values.items() if v is not None}
    if not cleaned:
        return None
    if not (cleaned.get("name") or cleaned.get("company")):
        raise ValidationError("give a name or a company to deliver to", field="ship_to.name")
    return cleaned


def _auto_cancel_days(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_AUTO_CANCEL_DAYS:
        raise ValidationError(f"enter whole days from 1 to {MAX_AUTO_CANCEL_DAYS}, or leave blank for never",
                              field="thirty_day_auto_cancel_days")
    return raw


def _notify_by(raw: Any) -> dict[str, str]:
    choices = _mapping(raw, KINDS, "notify_by")
    return {kind: _choice(choice, NOTIFY_CHOICES, f"notify_by.{kind}") for kind, choice in choices.items()}


def _storefront_eta(raw: Any) -> dict[str, str]:
    eta = _mapping(raw, ("format",), "storefront_eta")
    return {"format": _choice(eta.get("format", "date"), ETA_FORMATS, "storefront_eta.format")}


def validate_settings(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` with the keys above checked and normalised; other keys pass through as given.

    ``timezone`` is returned as a normalised IANA name (it is a column of the shop, not a setting).
    """
    out = dict(changes)
    if "schedules" in out:
        out["schedules"] = {job: s.as_dict() for job, s in parse_schedules(out["schedules"]).items()}
    if "timezone" in out:
        out["timezone"] = parse_timezone(out["timezone"]).key
    if "language" in out:
        out["language"] = _choice(out["language"], LANGUAGES, "language")
    if "branding" in out:
        out["branding"] = _branding(out["branding"])
    if "cancellation_mode" in out:
        out["cancellation_mode"] = _choice(out["cancellation_mode"], CANCELLATION_MODES, "cancellation_mode")
    if "ship_to" in out:
        out["ship_to"] = _ship_to(out["ship_to"])
    if "thirty_day_auto_cancel_days" in out:
        out["thirty_day_auto_cancel_days"] = _auto_cancel_days(out["thirty_day_auto_cancel_days"])
    if "notify_by" in out:
        out["notify_by"] = _notify_by(out["notify_by"])
        # Code that knows only the older on/off switch keeps working: "off" is off, the rest on.
        out["emails"] = {**dict(out.get("emails") or {}),
                         **{kind: choice != "off" for kind, choice in out["notify_by"].items()}}
    if "storefront_eta" in out:
        out["storefront_eta"] = _storefront_eta(out["storefront_eta"])
    return out


def eta_format(settings: Mapping[str, Any] | None) -> str:
    """How the storefront shows ETAs for a shop (a missing or unknown value: as a date)."""
    raw = (settings or {}).get("storefront_eta")
    value = raw.get("format") if isinstance(raw, Mapping) else None
    return value if value in ETA_FORMATS else "date"
