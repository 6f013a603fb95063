"""Customer e-mails (backorder confirmations, delays, thirty-day notices) from Jinja2 templates."""

from connector.messages.dates import format_date
from connector.messages.envelope import customer_email
from connector.messages.model import (
    KINDS,
    LANGUAGES,
    PARTS,
    MessageContext,
    MessageLine,
    RenderedEmail,
    ShopBranding,
)
from connector.messages.render import check_override, default_source, render, resolve_language, sample_context

__all__ = [
    "KINDS",
    "LANGUAGES",
    "PARTS",
    "MessageContext",
    "MessageLine",
    "RenderedEmail",
    "ShopBranding",
    "check_override",
    "customer_email",
    "default_source",
    "format_date",
    "render",
    "resolve_language",
    "sample_context",
]
