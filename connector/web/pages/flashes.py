"""Confirmations ("supplier saved") that survive the redirect inside the Shopify admin too.

``flash()`` keeps its messages in the session cookie until the next page shows them. Inside the
admin's iframe the browser sends us no cookie (third-party cookies are blocked), so the page
after the redirect would never see them. There, the messages travel in the redirect's URL
instead, as ``?flash=<token>``: signed with the app's secret (nobody can make a page show a
message of their choosing through a crafted link) and good for a couple of minutes. Outside the
admin nothing changes: the cookie carries them as before.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Response, current_app, g, get_flashed_messages, request, session
from itsdangerous import BadSignature, URLSafeTimedSerializer

PARAM = "flash"
SALT = "merchant-pages-flash"
MAX_AGE = 120  # seconds: long enough for the redirect, short enough that an old URL shows nothing
CATEGORIES = ("ok", "error", "message")
MAX_MESSAGES = 5


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=SALT)


def carry_flashes_in_url(response: Response) -> Response:
    """``after_request`` of the merchant pages: an embedded redirect takes its flashes along."""
    if g.get("embedded") is None or not 300 <= response.status_code < 400 or "_flashes" not in session:
        return response
    location = response.headers.get("Location")
    if not location:
        return response
    messages = [[str(c), str(m)] for c, m in session.pop("_flashes")][:MAX_MESSAGES]
    if not session:
        # The flashes were all it held: no cookie to set (or delete) from the admin's frame.
        session.modified = False
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != PARAM]
    query.append((PARAM, _serializer().dumps(messages)))
    response.headers["Location"] = urlunsplit(parts._replace(query=urlencode(query)))
    return response


def page_messages() -> list[tuple[str, str]]:
    """What base.html shows: the session's flashes, and inside the admin those of the URL."""
    shown = cast(list[tuple[str, str]], list(get_flashed_messages(with_categories=True)))
    token = request.args.get(PARAM)
    if token and g.get("embedded") is not None:
        try:
            carried: Any = _serializer().loads(token, max_age=MAX_AGE)
        except BadSignature:
            return shown
        for item in carried if isinstance(carried, list) else []:
            if isinstance(item, list) and len(item) == 2 and item[0] in CATEGORIES and isinstance(item[1], str):
                shown.append((item[0], item[1]))
    return shown
