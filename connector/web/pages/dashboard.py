"""The dashboard (with its "Needs you" tasks) and the worklist (with its CSV export)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for

from connector.services.dashboard_queries import dashboard as dashboard_model
from connector.services.merchant_pages import list_suppliers
from connector.services.task_queries import mark_task_done, open_tasks
from connector.services.worklist_queries import WorklistFilters, worklist_csv
from connector.services.worklist_queries import worklist as worklist_model
from connector.web.pages import pages
from connector.web.pages.charts import bar_chart, line_chart
from connector.web.pages.common import Form, get_db, shop_id, utcnow


@pages.get("/")
def dashboard() -> Any:
    data = dashboard_model(get_db(), shop_id(), utcnow())
    tasks, open_count = open_tasks(get_db(), shop_id())
    return render_template(
        "pages/dashboard.html",
        d=data,
        tasks=tasks,
        open_tasks=open_count,
        backlog_chart=line_chart(data.backlog, "Open backorder lines, last 30 days"),
        accuracy_chart=bar_chart(data.accuracy, "Lines covered against the promised date"),
    )


@pages.post("/tasks/<int:task_id>/done")
def task_done(task_id: int) -> Any:
    mark_task_done(get_db(), shop_id(), task_id, str(g.get("user_email") or ""), utcnow())
    flash("task done: it no longer shows", "ok")
    return redirect(url_for("pages.dashboard") + "#tasks")


def _filters(form: Form, supplier_ids: set[int]) -> WorklistFilters:
    supplier = form.integer("supplier", minimum=1, maximum=2**31, required=False)
    if supplier is not None and supplier not in supplier_ids:
        form.error("supplier", "choose one of the suppliers")
        supplier = None
    sku = form.text("sku", max_length=255)
    age = form.integer("age", minimum=0, maximum=3650, required=False)
    return WorklistFilters(supplier if "supplier" not in form.errors else None, sku,
                           age if "age" not in form.errors else None)


@pages.get("/worklist")
def worklist() -> Any:
    suppliers = list_suppliers(get_db(), shop_id())
    form = Form(request.args)
    filters = _filters(form, {s["id"] for s in suppliers})
    page = form.integer("page", minimum=1, maximum=10**6, required=False) or 1
    data = worklist_model(get_db(), shop_id(), filters, utcnow(), page if "page" not in form.errors else 1)
    query = {k: v for k, v in request.args.items() if k != "page" and v}
    status = 200 if form.ok else 400
    return render_template("pages/worklist.html", w=data, form=form, suppliers=suppliers, query=query), status


@pages.get("/worklist.csv")
def worklist_export() -> Any:
    suppliers = list_suppliers(get_db(), shop_id())
    form = Form(request.args)
    filters = _filters(form, {s["id"] for s in suppliers})
    if not form.ok:
        args: dict[str, Any] = request.args.to_dict()
        return redirect(url_for("pages.worklist", **args))
    body = worklist_csv(get_db(), shop_id(), filters, utcnow())
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="worklist.csv"'})
