"""The customer's links: cancellation (GET shows what would be cancelled, POST cancels) and
the thirty-day notice's "keep waiting" (GET shows one button, POST records the consent).

The e-mail link opens a page with one button rather than cancelling on GET: mail scanners and
link previewers fetch every URL in a message, and must not cancel an order by doing so. The
signed token is the only credential (no session, no CSRF token: a forged POST would need the
token, which is the capability itself). Register ``bp`` on the app; it reads the database,
the settings (``secret_key``) and the optional clock from ``app.extensions`` like the pages do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template_string

from connector.db.engine import Database
from connector.errors import NotFound, SignatureError, ValidationError
from connector.services.cancellation import (
    CancelPreview,
    LinkExpired,
    LinkUsed,
    cancel_from_link,
    preview_cancellation,
)
from connector.services.ftc_notice import preview_wait_consent, record_wait_consent

bp = Blueprint("cancellation", __name__)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ title }}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;max-width:560px;margin:40px auto;padding:0 16px;">
<h1 style="font-size:22px;">{{ title }}</h1>
{% if preview %}
<p>Order <strong>{{ preview.order_number }}</strong>: these items have not shipped yet.</p>
<ul>{% for title, sku, units in preview.lines %}<li>{{ units }} &times; {{ title }}{% if sku %} ({{ sku }}){% endif %}</li>
{% endfor %}</ul>
<form method="post"><button type="submit" style="padding:10px 16px;">Cancel these items for a full refund</button></form>
<p style="color:#555;font-size:13px;">Items that already shipped or are ready to ship are not affected.</p>
{% elif keep %}<p>Order <strong>{{ keep }}</strong>: please confirm that you are happy to keep waiting.</p>
<form method="post"><button type="submit" style="padding:10px 16px;">Yes, I will keep waiting</button></form>
<p style="color:#555;font-size:13px;">You can still cancel at any time before the items ship.</p>
{% else %}<p>{{ message }}</p>{% endif %}
</body></html>"""


def _db() -> Database:
    db: Database = current_app.extensions["backorders.db"]
    return db


def _secret() -> str:
    return str(current_app.extensions["backorders.settings"].secret_key)


def _now() -> datetime:
    clock: Callable[[], datetime] | None = current_app.extensions.get("backorders.clock")
    return clock() if clock is not None else datetime.now(UTC)


def _page(title: str, status: int, message: str = "", preview: CancelPreview | None = None,
          keep: str | None = None) -> Any:
    return render_template_string(_PAGE, title=title, message=message, preview=preview, keep=keep), status


def _refusal(exc: Exception) -> Any:
    if isinstance(exc, SignatureError):
        return _page("Link not valid", 400, "This cancellation link is not valid. Please use the link from your e-mail, "
                     "or reply to the e-mail and we will help.")
    if isinstance(exc, LinkExpired):
        return _page("Link expired", 410, "This cancellation link has expired. Reply to your e-mail and we will help.")
    if isinstance(exc, LinkUsed):
        return _page("Already cancelled", 409, "This link was already used: your cancellation is recorded.")
    if isinstance(exc, NotFound):
        return _page("Order not found", 404, "We could not find this order any more.")
    assert isinstance(exc, ValidationError)
    return _page("Nothing to cancel", 409, "Nothing in this order is waiting any more: it has shipped, is ready to "
                 "ship, or was already cancelled.")


@bp.get("/orders/cancel/<token>")
def confirm(token: str) -> Any:
    try:
        preview = preview_cancellation(_db(), _secret(), token, _now())
    except (SignatureError, ValidationError, NotFound) as exc:
        return _refusal(exc)
    if not preview.lines:
        return _refusal(ValidationError("nothing waits"))
    return _page("Cancel the items you are waiting for?", 200, preview=preview)


@bp.post("/orders/cancel/<token>")
def cancel(token: str) -> Any:
    try:
        result = cancel_from_link(_db(), _secret(), token, _now())
    except (SignatureError, ValidationError, NotFound) as exc:
        return _refusal(exc)
    units = "item" if result.cancelled_units == 1 else "items"
    return _page("Cancelled", 200, f"We cancelled {result.cancelled_units} {units} of order {result.order_number}. "
                 "You will be refunded for them; everything else in your order is unchanged.")


@bp.get("/orders/keep-waiting/<token>")
def keep_waiting_confirm(token: str) -> Any:
    # A page with a button, not the consent itself: mail scanners open every link in a message,
    # and a consent they gave would stop the automatic cancellation the customer is owed.
    try:
        number = preview_wait_consent(_db(), _secret(), token, _now())
    except (SignatureError, ValidationError, NotFound) as exc:
        return _keep_refusal(exc)
    return _page("Keep waiting?", 200, keep=number)


@bp.post("/orders/keep-waiting/<token>")
def keep_waiting(token: str) -> Any:
    try:
        result = record_wait_consent(_db(), _secret(), token, _now())
    except (SignatureError, ValidationError, NotFound) as exc:
        return _keep_refusal(exc)
    return _page("Thank you", 200, f"Your order {result.order_number} stays on order: we will ship the items as "
                 "soon as they arrive. You can still cancel at any time before they ship.")


def _keep_refusal(exc: Exception) -> Any:
    if isinstance(exc, SignatureError):
        return _page("Link not valid", 400, "This link is not valid. Please use the link from your e-mail, or reply "
                     "to the e-mail and we will help.")
    if isinstance(exc, LinkExpired):
        return _page("Link expired", 410, "This link has expired. Reply to your e-mail and we will help.")
    return _page("Order not found", 404, "We could not find this order any more.")
