"""What a customer e-mail is rendered from: plain dataclasses, filled by the delivery job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

KINDS: tuple[str, ...] = (
    "backorder_confirmation",
    "preorder_confirmation",
    "delay_notice",
    "ready_notice",
    "shipped_notice",
    "thirty_day_notice",
    "cancellation_notice",  # the delayed units were cancelled for want of an answer (thirty-day rule)
)
LANGUAGES: tuple[str, ...] = ("en", "fr")
DEFAULT_LANGUAGE = "en"
PARTS: dict[str, str] = {"subject": "subject.txt", "text": "txt", "html": "html"}


@dataclass(frozen=True, slots=True)
class ShopBranding:
    name: str
    logo_url: str | None = None
    reply_to: str | None = None
    language: str = DEFAULT_LANGUAGE  # "en", "fr", or a locale like "fr-CA" (region ignored)
    from_addr: str | None = None


@dataclass(frozen=True, slots=True)
class MessageLine:
    title: str
    sku: str | None
    quantity: int
    eta: date | None = None  # the date promised to the customer, tolerance already included
    previous_eta: date | None = None  # what was promised before (delay notices)
    release_date: date | None = None  # preorders


@dataclass(frozen=True, slots=True)
class MessageContext:
    kind: str
    shop: ShopBranding
    order_number: str
    customer_name: str | None
    customer_email: str
    lines: tuple[MessageLine, ...]
    reason: str | None = None  # why a date moved, in the merchant's words
    cancel_url: str | None = None  # one-click cancellation (signed link)
    keep_url: str | None = None  # thirty-day notice: "yes, I will keep waiting" (signed link)
    respond_by: date | None = None  # thirty-day notice: after this date without an answer, we cancel
    order_url: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    carrier: str | None = None
    language: str | None = None  # the customer's language when known; else the shop's
    extra: dict[str, str] = field(default_factory=dict)  # free values for merchant templates


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
