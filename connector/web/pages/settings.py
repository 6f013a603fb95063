"""Shop settings, the customer e-mail template editor, and API tokens."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from connector.errors import ValidationError
from connector.messages import KINDS, LANGUAGES, PARTS, RenderedEmail, resolve_language
from connector.services.accounts import create_api_token, list_api_tokens, revoke_api_token
from connector.services.cancellation import MODES as CANCELLATION_MODES
from connector.services.merchant_pages import (
    preview_template,
    reset_template,
    save_shop_settings,
    save_template,
    shop_settings,
    template_sources,
)
from connector.services.settings_schema import (
    ETA_FORMATS,
    MAX_AUTO_CANCEL_DAYS,
    MAX_EVERY_MINUTES,
    MIN_EVERY_MINUTES,
    NOTIFY_CHOICES,
    SCHEDULE_DEFAULTS,
    eta_format,
    parse_schedule,
    validate_settings,
)
from connector.services.storefront_queries import DEFAULT_COLOURS
from connector.services.supplier_documents import ADDRESS_FIELDS
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


SCHEDULE_MODES = ("default", "every", "daily")
# Keys checked one by one so that every bad field gets its message at once, not just the first.
CHECKED_KEYS = ("timezone", "schedules", "language", "branding", "cancellation_mode", "ship_to",
                "thirty_day_auto_cancel_days", "notify_by", "storefront_eta")


# Option labels; a value added to a tuple in the services shows up as itself until labelled here.
LABELS = {
    "en": "English", "fr": "Français",
    "email": "e-mail", "store_note": "the store's own customer notification (e.g. a WooCommerce customer note)", "off": "off",
    "dashboard": "leave a task on the dashboard (refund in the store yourself)",
    "storefront": "cancel the waiting lines in the store too",
    "date": 'as a date ("Ships by 12 March")', "weeks": 'in weeks ("Ships in about 3 weeks")', "hidden": "not shown",
}


def _options(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, LABELS.get(value, value)) for value in values]


def _form_field(path: str) -> str:
    """The input that shows a service error: ``branding.reply_to`` -> ``branding_reply_to``; an
    error about a whole schedule (``schedules.consolidate``) goes next to its mode selector."""
    parts = path.split(".")
    if parts[0] == "schedules" and len(parts) == 2:
        return f"schedules_{parts[1]}_mode"
    return "_".join(parts)


def _stored(current: dict[str, Any], key: str) -> dict[str, Any]:
    value = current.get(key)
    return value if isinstance(value, dict) else {}


def _current_values(current: dict[str, Any]) -> dict[str, Any]:
    """The form's values from the stored settings (GET)."""
    values: dict[str, Any] = {"timezone": current.get("timezone") or "UTC"}
    stored = _stored(current, "schedules")
    for job, default in SCHEDULE_DEFAULTS.items():
        try:
            schedule = parse_schedule(job, stored[job]) if job in stored else None
        except ValidationError:
            schedule = None  # a value the page cannot show runs on the default; show that
        mode = "default" if schedule is None else ("daily" if schedule.daily_at is not None else "every")
        shown = schedule or default
        values[f"schedules_{job}_mode"] = mode
        values[f"schedules_{job}_every_minutes"] = shown.every_minutes or default.every_minutes
        values[f"schedules_{job}_daily_at"] = shown.as_dict().get("daily_at", "")
    language = current.get("language")
    values["language"] = resolve_language(language if isinstance(language, str) else None)  # "fr-CA" shows as fr
    brand = _stored(current, "branding")
    for key in ("logo_url", "reply_to", "from_addr"):
        values[f"branding_{key}"] = brand.get(key) or ""
    values["cancellation_mode"] = current.get("cancellation_mode", "dashboard")
    ship_to = _stored(current, "ship_to")
    for key in ADDRESS_FIELDS:
        values[f"ship_to_{key}"] = ship_to.get(key) or ""
    values["thirty_day_auto_cancel_days"] = current.get("thirty_day_auto_cancel_days") or ""
    notify_by = _stored(current, "notify_by")
    emails = _stored(current, "emails")
    for kind in KINDS:
        values[f"notify_by_{kind}"] = notify_by.get(kind) or ("email" if emails.get(kind, True) else "off")
    values["storefront_eta_format"] = eta_format(current)
    return values


def _schedules(form: Form) -> dict[str, Any]:
    schedules: dict[str, Any] = {}
    for job in SCHEDULE_DEFAULTS:
        mode = form.choice(f"schedules_{job}_mode", SCHEDULE_MODES, default="default")
        if mode == "every":
            minutes = form.integer(f"schedules_{job}_every_minutes", minimum=MIN_EVERY_MINUTES,
                                   maximum=MAX_EVERY_MINUTES)
            if minutes is not None:
                schedules[job] = {"every_minutes": minutes}
        elif mode == "daily":
            at = form.text(f"schedules_{job}_daily_at", required=True, max_length=5)
            if at is not None:
                schedules[job] = {"daily_at": at}
    return schedules


def _notify_by(form: Form) -> dict[str, str]:
    choices: dict[str, str] = {}
    for kind in KINDS:
        name = f"notify_by_{kind}"
        if name not in form.data:  # a form from before the selectors had one checkbox per kind
            choices[kind] = "email" if form.boolean(f"email_{kind}") else "off"
            continue
        choice = form.choice(name, NOTIFY_CHOICES)
        if choice is not None:
            choices[kind] = choice
    return choices


def _merchant_changes(form: Form) -> dict[str, Any]:
    """The fields the settings schema checks, as submitted (blank text means "not set")."""
    changes: dict[str, Any] = {
        "schedules": _schedules(form),
        "language": form.choice("language", LANGUAGES, default="en"),
        "branding": {key: form.text(f"branding_{key}", max_length=500) for key in ("logo_url", "reply_to", "from_addr")},
        "cancellation_mode": form.choice("cancellation_mode", CANCELLATION_MODES, default="dashboard"),
        "ship_to": {key: form.text(f"ship_to_{key}", max_length=200) for key in ADDRESS_FIELDS},
        "thirty_day_auto_cancel_days": form.integer("thirty_day_auto_cancel_days", minimum=1,
                                                    maximum=MAX_AUTO_CANCEL_DAYS, required=False),
        "notify_by": _notify_by(form),
        "storefront_eta": {"format": form.choice("storefront_eta_format", ETA_FORMATS, default="date")},
    }
    timezone = form.text("timezone", max_length=64)
    if timezone is not None:  # blank keeps the shop's zone
        changes["timezone"] = timezone
    return changes


def _render(form: Form, current: dict[str, Any], status: int = 200) -> Any:
    choices = {"language": _options(LANGUAGES), "notify_by": _options(NOTIFY_CHOICES),
               "cancellation_mode": _options(CANCELLATION_MODES), "storefront_eta": _options(ETA_FORMATS)}
    return render_template("pages/settings.html", form=form, kinds=KINDS, choices=choices,
                           schedule_defaults=SCHEDULE_DEFAULTS, address_fields=ADDRESS_FIELDS,
                           timezone=current.get("timezone") or "UTC"), status


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
            **_current_values(current),
        )
        return _render(form, current)
    form = Form(request.form)
    changes: dict[str, Any] = {
        "handling_days": form.integer("handling_days", minimum=0, maximum=60),
        "tolerance_days": form.integer("tolerance_days", minimum=0, maximum=60),
        "default_lead_time_days": form.integer("default_lead_time_days", minimum=0, maximum=365),
        "retention_days": form.integer("retention_days", minimum=1, maximum=3650),
        "tolerance_bands": _parse_bands(form),
        "storefront": {key: form.colour(key, default) for key, default in DEFAULT_COLOURS.items()},
        **_merchant_changes(form),
    }
    for key in CHECKED_KEYS:
        if key not in changes or (changes[key] is None and key != "thirty_day_auto_cancel_days"):
            continue  # not submitted, or the form already said what is wrong with it
        try:
            validate_settings({key: changes[key]})
        except ValidationError as exc:
            form.error(_form_field(exc.field or key), exc.message)
    if form.ok:
        try:
            save_shop_settings(get_db(), shop_id(), changes)
        except ValidationError as exc:
            form.error(_form_field(exc.field or "handling_days"), exc.message)
        else:
            flash("settings saved", "ok")
            return redirect(url_for("pages.settings"))
    return _render(form, current, 400)


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
