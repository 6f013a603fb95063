"""Shop settings, the customer e-mail template editor, and API tokens."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from connector.errors import ValidationError
from connector.messages import KINDS, LANGUAGES, PARTS, RenderedEmail
from connector.services.accounts import create_api_token, list_api_tokens, revoke_api_token
from connector.services.merchant_pages import (
    preview_template,
    reset_template,
    save_shop_settings,
    save_template,
    shop_settings,
    template_sources,
)
from connector.services.storefront_queries import DEFAULT_COLOURS
from connector.web.pages import pages
from connector.web.pages.common import Form, get_db, shop_id, utcnow


def _bands_text(bands: list[dict[str, Any]]) -> str:
    lines = []
    for band in bands:
        top = band.get("max_unit_value_cents")
        lines.append(f"{'*' if top is None else f'{top / 100:.2f}'} {band.get('days', 0)}")
    return "\n".join(lines)


def _parse_bands(form: Form) -> list[dict[str, Any]]:
    """One band a line: ``<max unit value or *> <days>``, e.g. ``50.00 2`` then ``* 5``."""
    bands: list[dict[str, Any]] = []
    text = form.text("tolerance_bands", max_length=2000, multiline=True) or ""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            top = None if parts[0] == "*" else int(Decimal(parts[0]) * 100)
            days = int(parts[1])
            if days < 0 or days > 365 or (top is not None and top < 0):
                raise ValueError
        except (ValueError, InvalidOperation):
            form.error("tolerance_bands", f"line {number}: write '<max unit value or *> <days>', e.g. 50.00 2")
            return []
        bands.append({"max_unit_value_cents": top, "days": days})
    return bands


@pages.route("/settings", methods=["GET", "POST"])
def settings() -> Any:
    current = shop_settings(get_db(), shop_id())
    colours = {**DEFAULT_COLOURS, **current.get("storefront", {})}
    if request.method == "GET":
        form = Form(request.form)
        form.values.update(
            handling_days=current.get("handling_days", 1), tolerance_days=current.get("tolerance_days", 0),
            default_lead_time_days=current.get("default_lead_time_days", 14),
            retention_days=current.get("retention_days", 90),
            tolerance_bands=_bands_text(current.get("tolerance_bands") or []), **colours,
        )
        emails = current.get("emails", {})
        return render_template("pages/settings.html", form=form, kinds=KINDS,
                               emails={k: emails.get(k, True) for k in KINDS})
    form = Form(request.form)
    changes: dict[str, Any] = {
        "handling_days": form.integer("handling_days", minimum=0, maximum=60),
        "tolerance_days": form.integer("tolerance_days", minimum=0, maximum=60),
        "default_lead_time_days": form.integer("default_lead_time_days", minimum=0, maximum=365),
        "retention_days": form.integer("retention_days", minimum=1, maximum=3650),
        "tolerance_bands": _parse_bands(form),
        "emails": {kind: form.boolean(f"email_{kind}") for kind in KINDS},
        "storefront": {key: form.colour(key, default) for key, default in DEFAULT_COLOURS.items()},
    }
    if form.ok:
        try:
            save_shop_settings(get_db(), shop_id(), changes)
        except ValidationError as exc:
            form.error(exc.field or "handling_days", exc.message)
        else:
            flash("settings saved", "ok")
            return redirect(url_for("pages.settings"))
    return render_template("pages/settings.html", form=form, kinds=KINDS, emails=changes["emails"]), 400


@pages.get("/settings/templates")
def templates() -> Any:
    overrides = shop_settings(get_db(), shop_id()).get("templates", {})
    return render_template("pages/templates.html", kinds=KINDS, languages=LANGUAGES, overrides=overrides)


@pages.route("/settings/templates/<kind>/<language>", methods=["GET", "POST"])
def template_edit(kind: str, language: str) -> Any:
    if kind not in KINDS or language not in LANGUAGES:
        abort(404)
    sources = template_sources(get_db(), shop_id(), kind, language)
    form = Form(request.form)
    preview: RenderedEmail | None = None
    status = 200
    if request.method == "GET":
        form.values.update({part: src for part, (src, _) in sources.items()})
        return render_template("pages/template_edit.html", form=form, kind=kind, language=language,
                               sources=sources, preview=None, parts=PARTS)
    action = form.choice("action", ("preview", "save", "reset"), default="preview")
    parts = {part: (form.text(part, required=True, max_length=20_000, multiline=True) or "") for part in PARTS}
    if action == "reset":
        reset_template(get_db(), shop_id(), kind, language)
        flash("template reset to the default", "ok")
        return redirect(url_for("pages.template_edit", kind=kind, language=language))
    if form.ok:
        try:
            preview = preview_template(kind, language, parts)
            if action == "save":
                save_template(get_db(), shop_id(), kind, language, parts)
                flash("template saved", "ok")
                return redirect(url_for("pages.template_edit", kind=kind, language=language))
        except ValidationError as exc:
            field = (exc.field or "").rsplit(".", 1)[-1]
            form.error(field if field in PARTS else "subject", exc.message)
            preview = None
    if not form.ok:
        status = 400
    return render_template("pages/template_edit.html", form=form, kind=kind, language=language, sources=sources,
                           preview=preview, parts=PARTS), status


@pages.route("/settings/api-tokens", methods=["GET", "POST"])
def api_tokens() -> Any:
    form = Form(request.form)
    new_token: str | None = None
    status = 200
    if request.method == "POST":
        name = form.text("name", required=True, max_length=100)
        scope = form.choice("scope", ("read", "read_write"), default="read")
        if form.ok and name and scope:
            _, new_token = create_api_token(get_db(), shop_id(), name, utcnow(), scope=scope)
        else:
            status = 400
    # The new token is shown in this response only (never flashed: the session cookie is readable).
    return render_template("pages/api_tokens.html", form=form, tokens=list_api_tokens(get_db(), shop_id()),
                           new_token=new_token), status


@pages.post("/settings/api-tokens/<int:token_id>/revoke")
def api_token_revoke(token_id: int) -> Any:
    revoke_api_token(get_db(), shop_id(), token_id, utcnow())
    flash("token revoked", "ok")
    return redirect(url_for("pages.api_tokens"))
