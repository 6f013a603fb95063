"""The supplier portal: what a supplier opens from the signed link in a PO or dropship e-mail.

No sign-in: the signed, expiring token in the URL is the credential (see
``connector.services.supplier_confirmation``), so the pages send no Referer, are not cached
and cannot be framed. Every page answers HTML to a browser and JSON to a client that sends
JSON (a supplier's system that got the link in a webhook payload).

URL map (blueprint ``supplier_portal``, registered by the composition root)::

    GET  /supplier/po/<token>                  the PO: lines, expected date, the answer form
    POST /supplier/po/<token>                  confirm / quantities / expected date + reason
    GET  /supplier/forward/<token>             the dropship forward: orders, ship-to, tracking
    POST /supplier/forward/<token>/tracking    tracking number, carrier, link (one order or all)

A tampered token answers 403, an expired one or one the merchant revoked or replaced 410, a bad form 400 (the page again, with the
message), a document that no longer exists 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template_string,
    request,
    url_for,
)

from connector.db.engine import Database
from connector.errors import NotFound, SignatureError, ValidationError
from connector.services import supplier_confirmation as portal
from connector.services.dropship import Tracking

bp = Blueprint("supplier_portal", __name__, url_prefix="/supplier")

CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"


def _db() -> Database:
    db: Database = current_app.extensions["backorders.db"]
    return db


def _now() -> datetime:
    clock: Callable[[], datetime] | None = current_app.extensions.get("backorders.clock")
    return clock() if clock is not None else datetime.now(UTC)


def _secret() -> str:
    settings = current_app.extensions.get("backorders.settings")
    return str(getattr(settings, "secret_key", "") or current_app.config.get("SECRET_KEY") or "")


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"  # the token must not leak to other sites
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response


def _refused(exc: Exception) -> Any:
    if isinstance(exc, portal.LinkRevoked):
        status, title = 410, "This link no longer works"
        message = exc.message + ". Please ask us for the current link."
    elif isinstance(exc, portal.LinkExpired):
        status, title = 410, "This link has expired"
        message = exc.message + ". Please ask us for a new link."
    elif isinstance(exc, SignatureError):
        status, title, message = 403, "This link is not valid", "Please use the link exactly as we sent it."
    else:
        status, title, message = 404, "Not found", "This document no longer exists."
    if _wants_json():
        code = exc.code if isinstance(exc, SignatureError | NotFound) else "error"
        return jsonify(error={"code": code, "message": message}), status
    return render_template_string(PAGE, title=title, body_message=message, po=None, forward=None), status


def _link(token: str, kind: str) -> portal.PortalLink:
    return portal.read_token(_secret(), token, _now(), kind)


# -- purchase order ------------------------------------------------------------------------


def _po_json(po: Any) -> dict[str, Any]:
    return {
        "number": po.number,
        "status": po.status,
        "expected_date": po.expected_date.isoformat(),
        "lines": [
            {"sku": ln.sku, "supplier_sku": ln.supplier_sku, "title": ln.title, "quantity": ln.quantity,
             "received": ln.received}
            for ln in po.lines
        ],
    }


@bp.get("/po/<token>")
def purchase_order(token: str) -> Any:
    try:
        po = portal.linked_purchase_order(_db(), _link(token, "po"))
    except (SignatureError, NotFound) as exc:
        return _refused(exc)
    if _wants_json():
        return jsonify(purchase_order=_po_json(po))
    return render_template_string(PAGE, title=f"Purchase order {po.number}", po=po, forward=None,
                                  done=request.args.get("done"), error=None, form={})


def _parse_date(raw: Any) -> date | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationError("enter the date as YYYY-MM-DD", field="expected_date") from None


def _po_answer() -> dict[str, Any]:
    """The supplier's answer from JSON (``quantities``: SKU → units) or the HTML form
    (``qty-<SKU>`` fields, a ``confirm`` button)."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValidationError("send a JSON object", field="body")
        sent = data.get("quantities") or {}
        if not isinstance(sent, dict):
            raise ValidationError("quantities must map SKU to units", field="quantities")
        return {"confirm": data.get("confirm") is True, "quantities": sent,
                "expected_date": _parse_date(data.get("expected_date")), "reason": data.get("reason")}
    quantities: dict[str, Any] = {}
    for key, value in request.form.items():
        if key.startswith("qty-") and value.strip():
            try:
                quantities[key[4:]] = int(value)
            except ValueError:
                raise ValidationError(f"quantity for {key[4:]} must be a whole number", field=key) from None
    return {"confirm": "confirm" in request.form, "quantities": quantities,
            "expected_date": _parse_date(request.form.get("expected_date")), "reason": request.form.get("reason")}


@bp.post("/po/<token>")
def answer_purchase_order(token: str) -> Any:
    try:
        link = _link(token, "po")
        po = portal.linked_purchase_order(_db(), link)
    except (SignatureError, NotFound) as exc:
        return _refused(exc)
    try:
        answer = _po_answer()
        result = portal.respond_to_purchase_order(_db(), link, _now(), **answer)
    except ValidationError as exc:
        if _wants_json():
            return jsonify(error={"code": exc.code, "message": exc.message, "field": exc.field}), 400
        return render_template_string(PAGE, title=f"Purchase order {po.number}", po=po, forward=None, done=None,
                                      error=exc.message, form=request.form), 400
    if _wants_json():
        po = portal.linked_purchase_order(_db(), link)
        return jsonify(purchase_order=_po_json(po), confirmed=result.confirmed,
                       quantities_changed=result.quantities_changed, date_changed=result.date_changed)
    return redirect(url_for(".purchase_order", token=token, done="saved"), 303)


# -- dropship forward ----------------------------------------------------------------------


def _forward_json(forward: Any) -> dict[str, Any]:
    return {
        "number": forward.number,
        "status": forward.status,
        "lines": [
            {"order_number": ln.order_number, "sku": ln.sku, "supplier_sku": ln.supplier_sku,
             "quantity": ln.quantity, "shipped": ln.shipped}
            for ln in forward.lines
        ],
    }


@bp.get("/forward/<token>")
def forward(token: str) -> Any:
    try:
        fw = portal.linked_forward(_db(), _link(token, "forward"))
    except (SignatureError, NotFound) as exc:
        return _refused(exc)
    if _wants_json():
        return jsonify(forward=_forward_json(fw))
    return render_template_string(PAGE, title=f"Dropship orders {fw.number}", po=None, forward=fw,
                                  done=request.args.get("done"), error=None, form={})


@bp.post("/forward/<token>/tracking")
def forward_tracking(token: str) -> Any:
    try:
        link = _link(token, "forward")
        fw = portal.linked_forward(_db(), link)
    except (SignatureError, NotFound) as exc:
        return _refused(exc)
    data: Any = request.get_json(silent=True) if request.is_json else request.form
    if not isinstance(data, dict) and not hasattr(data, "get"):
        data = {}
    tracking = Tracking(
        number=str(data.get("tracking_number") or ""),
        company=str(data.get("company") or "") or None,
        url=str(data.get("tracking_url") or "") or None,
        order_number=str(data.get("order_number") or "") or None,
    )
    try:
        result = portal.record_forward_tracking(_db(), link, tracking, _now())
    except ValidationError as exc:
        if _wants_json():
            return jsonify(error={"code": exc.code, "message": exc.message, "field": exc.field}), 400
        return render_template_string(PAGE, title=f"Dropship orders {fw.number}", po=None, forward=fw, done=None,
                                      error=exc.message, form=request.form), 400
    if _wants_json():
        return jsonify(forward=result.forward, status=result.status, shipped_lines=result.shipped_lines,
                       shipped_units=result.shipped_units)
    return redirect(url_for(".forward", token=token, done="tracking"), 303)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}
.ok{background:#e8f6e8;padding:.6rem}.err{background:#fde8e8;padding:.6rem}input{padding:.3rem}
fieldset{margin:1rem 0;border:1px solid #ccc}</style></head><body>
<h1>{{ title }}</h1>
{% if body_message %}<p>{{ body_message }}</p>{% endif %}
{% if done %}<p class="ok" role="status">Thank you, your answer is saved.</p>{% endif %}
{% if error %}<p class="err" role="alert">{{ error }}</p>{% endif %}
{% if po %}
<p>From {{ po.buyer_name }} &middot; status <strong>{{ po.status }}</strong> &middot;
expected delivery <strong>{{ po.expected_date.isoformat() }}</strong></p>
<form method="post">
<table><thead><tr><th>Your SKU</th><th>Our SKU</th><th>Item</th><th>Quantity</th><th>Received</th></tr></thead><tbody>
{% for ln in po.lines %}<tr><td>{{ ln.supplier_sku }}</td><td>{{ ln.sku }}</td><td>{{ ln.title }}</td>
<td><input name="qty-{{ ln.sku }}" type="number" min="{{ ln.received }}" value="{{ form.get('qty-' ~ ln.sku, ln.quantity) }}"
 aria-label="Quantity of {{ ln.sku }}"></td><td>{{ ln.received }}</td></tr>{% endfor %}
</tbody></table>
<fieldset><legend>When will the goods arrive?</legend>
<label>Expected delivery date <input type="date" name="expected_date"
 value="{{ form.get('expected_date', po.expected_date.isoformat()) }}"></label><br>
<label>Reason for a change (shown to the merchant) <input name="reason" size="50" maxlength="1000"
 value="{{ form.get('reason', '') }}"></label></fieldset>
<button type="submit" name="confirm" value="1">Confirm the order</button>
<button type="submit" name="save" value="1">Save changes only</button>
</form>
{% endif %}
{% if forward %}
<p>From {{ forward.buyer_name }} &middot; status <strong>{{ forward.status }}</strong></p>
<table><thead><tr><th>Order</th><th>Ship to</th><th>Your SKU</th><th>Item</th><th>Qty</th><th>Shipped</th></tr></thead>
<tbody>{% for ln in forward.lines %}<tr><td>{{ ln.order_number }}</td>
<td>{{ ln.ship_to.name or ln.customer_name }}, {{ ln.ship_to.address1 or '' }} {{ ln.ship_to.zip or '' }}
 {{ ln.ship_to.city or '' }} {{ ln.ship_to.country_code or '' }}</td>
<td>{{ ln.supplier_sku }}</td><td>{{ ln.title }}</td><td>{{ ln.quantity }}</td>
<td>{{ 'yes' if ln.shipped else 'no' }}</td></tr>{% endfor %}</tbody></table>
<form method="post" action="{{ url_for('.forward_tracking', token=request.view_args['token']) }}">
<fieldset><legend>Tracking</legend>
<label>Order (blank = every order above) <input name="order_number" value="{{ form.get('order_number', '') }}"></label><br>
<label>Tracking number <input name="tracking_number" required value="{{ form.get('tracking_number', '') }}"></label><br>
<label>Carrier <input name="company" value="{{ form.get('company', '') }}"></label><br>
<label>Tracking link <input name="tracking_url" type="url" value="{{ form.get('tracking_url', '') }}"></label>
</fieldset><button type="submit">Send tracking</button></form>
{% endif %}
</body></html>
"""
