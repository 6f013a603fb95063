"""Suppliers (CRUD, terms CSV import/export) and per-variant backorder settings."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from connector.errors import ValidationError
from connector.services.merchant_pages import (
    VARIANT_PAGE_SIZE,
    VariantSettings,
    delete_supplier,
    export_supplier_terms,
    import_supplier_terms,
    list_suppliers,
    list_variants,
    save_supplier,
    supplier_values,
    update_variant_settings,
    variant_values,
)
from connector.web.pages import pages
from connector.web.pages.common import Form, get_db, shop_id

CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_CSV_BYTES = 2_000_000


@pages.get("/suppliers")
def supplier_list() -> Any:
    return render_template("pages/suppliers.html", suppliers=list_suppliers(get_db(), shop_id()), errors=())


def _supplier_form(form: Form) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": form.text("name", required=True),
        "email": form.email("email"),
        "address": form.text("address", max_length=2000, multiline=True),
        "delivery_method": form.choice("delivery_method", ("email", "webhook"), default="email"),
        "webhook_url": form.text("webhook_url", max_length=500),
        "currency": (form.raw("currency") or "USD").upper(),
        "lead_time_days": form.integer("lead_time_days", minimum=0, maximum=365),
        "min_order_value_cents": form.money("min_order_value", required=False),
        "max_wait_days": form.integer("max_wait_days", minimum=0, maximum=365, required=False),
        "auto_send": form.boolean("auto_send"),
        "dropship": form.boolean("dropship"),
        "dropship_min_units": form.integer("dropship_min_units", minimum=0, maximum=1_000_000, required=False) or 0,
        "dropship_min_value_cents": form.money("dropship_min_value", required=False) or 0,
        "dropship_max_wait_days": form.integer("dropship_max_wait_days", minimum=0, maximum=365, required=False),
    }
    form.values["currency"] = values["currency"]
    if not CURRENCY.match(values["currency"]):
        form.error("currency", "a three-letter code like EUR")
    url = values["webhook_url"]
    if url and not re.match(r"^https?://[^\s/]+", url):
        form.error("webhook_url", "a URL starting with https://")
    if form.ok:
        if values["delivery_method"] == "email" and not values["email"]:
            form.error("email", "an e-mail address is needed to send purchase orders by e-mail")
        if values["delivery_method"] == "webhook" and not values["webhook_url"]:
            form.error("webhook_url", "a webhook URL is needed to send purchase orders by webhook")
    return values


def _form_from(values: dict[str, Any]) -> Form:
    form = Form(request.form)
    form.values.update(values)
    form.values["min_order_value"] = f"{values['min_order_value_cents'] / 100:.2f}"
    form.values["dropship_min_value"] = f"{values['dropship_min_value_cents'] / 100:.2f}"
    return form


@pages.route("/suppliers/new", methods=["GET", "POST"])
def supplier_new() -> Any:
    return _edit(None)


@pages.route("/suppliers/<int:supplier_id>", methods=["GET", "POST"])
def supplier_edit(supplier_id: int) -> Any:
    return _edit(supplier_id)


def _edit(supplier_id: int | None) -> Any:
    if request.method == "GET":
        form = _form_from(supplier_values(get_db(), shop_id(), supplier_id)) if supplier_id else Form(request.form)
        if supplier_id is None:
            form.values.update(delivery_method="email", currency="USD", lead_time_days=14)
        return render_template("pages/supplier_form.html", form=form, supplier_id=supplier_id)
    if supplier_id is not None:
        supplier_values(get_db(), shop_id(), supplier_id)  # 404 for another shop's supplier
    form = Form(request.form)
    values = _supplier_form(form)
    if form.ok:
        try:
            new_id = save_supplier(get_db(), shop_id(), values, supplier_id)
        except ValidationError as exc:
            form.error(exc.field or "name", exc.message)
        else:
            flash(f"supplier {values['name']} saved", "ok")
            return redirect(url_for("pages.supplier_edit", supplier_id=new_id))
    return render_template("pages/supplier_form.html", form=form, supplier_id=supplier_id), 400


@pages.post("/suppliers/<int:supplier_id>/delete")
def supplier_delete(supplier_id: int) -> Any:
    try:
        delete_supplier(get_db(), shop_id(), supplier_id)
    except ValidationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.supplier_edit", supplier_id=supplier_id))
    flash("supplier deleted", "ok")
    return redirect(url_for("pages.supplier_list"))


@pages.post("/suppliers/import")
def supplier_import() -> Any:
    upload = request.files.get("file")
    errors: list[str] = []
    text = ""
    if upload is None or not upload.filename:
        errors.append("choose a CSV file to import")
    else:
        raw = upload.read(MAX_CSV_BYTES + 1)
        if len(raw) > MAX_CSV_BYTES:
            errors.append("the file is larger than 2 MB")
        else:
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                errors.append("the file is not UTF-8 text (save it as CSV UTF-8)")
    if not errors:
        result = import_supplier_terms(get_db(), shop_id(), text)
        if result.ok:
            flash(f"imported {len(result.rows)} row(s); nothing else changed", "ok")
            return redirect(url_for("pages.supplier_list"))
        errors = [str(e) for e in result.errors]
    suppliers = list_suppliers(get_db(), shop_id())
    return render_template("pages/suppliers.html", suppliers=suppliers, errors=errors), 400


@pages.get("/suppliers/export.csv")
def supplier_export() -> Any:
    return Response(export_supplier_terms(get_db(), shop_id()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="supplier-terms.csv"'})


@pages.get("/products")
def product_list() -> Any:
    form = Form(request.args)
    query = form.text("q", max_length=100)
    page = form.integer("page", minimum=1, maximum=10**6, required=False) or 1
    rows, total = list_variants(get_db(), shop_id(), query, page)
    return render_template("pages/products.html", rows=rows, total=total, q=query or "", page=page,
                           pages=max(1, -(-total // VARIANT_PAGE_SIZE)),
                           suppliers=list_suppliers(get_db(), shop_id()), form=Form(request.form), edited=None)


@pages.post("/products/<int:variant_id>")
def product_update(variant_id: int) -> Any:
    variant = variant_values(get_db(), shop_id(), variant_id)  # 404 for another shop's variant
    suppliers = list_suppliers(get_db(), shop_id())
    form = Form(request.form)
    supplier_id = form.integer("supplier_id", minimum=1, maximum=2**31, required=False)
    if supplier_id is not None and supplier_id not in {s["id"] for s in suppliers}:
        form.error("supplier_id", "choose one of the suppliers")
    values = VariantSettings(
        backorders_allowed=form.boolean("backorders_allowed"),
        release_date=form.date("release_date"),
        dropship=form.boolean("dropship"),
        popular=form.boolean("popular"),
        safety_stock=form.integer("safety_stock", minimum=0, maximum=1_000_000) or 0,
        supplier_id=supplier_id,
    )
    if form.ok:
        update_variant_settings(get_db(), shop_id(), variant_id, values)
        flash(f"settings of {variant['sku']} saved", "ok")
        return redirect(url_for("pages.product_list", q=request.args.get("q") or None))
    return render_template("pages/product_form.html", v=variant, suppliers=suppliers, form=form), 400
