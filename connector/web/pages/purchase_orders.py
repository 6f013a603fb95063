"""Purchase orders (list, detail, edit, send, dates, receipts, cancel) and outbox dead letters."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from connector.errors import ValidationError
from connector.services.outbox import retry_dead
from connector.services.purchase_order_queries import (
    PO_STATUSES,
    PoDetail,
    dead_letters,
    purchase_order_detail,
    purchase_orders,
)
from connector.services.purchasing import (
    cancel_purchase_order,
    receive_purchase_order,
    send_purchase_order,
    set_expected_date,
    set_po_line_quantity,
)
from connector.services.supplier_documents import purchase_order_data
from connector.web.pages import pages
from connector.web.pages.common import Form, get_db, shop_id, utcnow
from connector.web.pages.dropship import supplier_url


@pages.get("/purchase-orders")
def purchase_order_list() -> Any:
    status = request.args.get("status") or None
    if status not in (None, *PO_STATUSES):
        status = None
    rows = purchase_orders(get_db(), shop_id(), utcnow().date(), status)
    return render_template("pages/purchase_orders.html", rows=rows, status=status, statuses=PO_STATUSES)


def _detail(po: PoDetail, form: Form | None = None, status: int = 200) -> Any:
    document = purchase_order_data(get_db(), shop_id(), po.id)
    return render_template("pages/purchase_order.html", po=po, form=form or Form(request.form),
                           supplier_link=supplier_url(document), link_revoked=document.link_revoked,
                           was_sent=document.sent_at is not None), status


@pages.get("/purchase-orders/<int:po_id>")
def purchase_order(po_id: int) -> Any:
    return _detail(purchase_order_detail(get_db(), shop_id(), po_id))


def _done(po_id: int, message: str) -> Any:
    flash(message, "ok")
    return redirect(url_for("pages.purchase_order", po_id=po_id))


@pages.post("/purchase-orders/<int:po_id>/quantities")
def purchase_order_quantities(po_id: int) -> Any:
    po = purchase_order_detail(get_db(), shop_id(), po_id)
    form = Form(request.form)
    wanted = {line.id: form.integer(f"qty_{line.id}", minimum=0, maximum=1_000_000) for line in po.lines}
    if not po.editable:
        form.error("quantities", f"{po.number} is {po.status}; only a draft can be edited")
    for line in po.lines:
        qty = wanted[line.id]
        if qty is not None and qty < line.received:
            form.error(f"qty_{line.id}", f"{line.received} units were already received")
    if not form.ok:
        return _detail(po, form, 400)
    changed = 0
    for line in po.lines:
        qty = wanted[line.id]
        if qty is not None and qty != line.ordered:
            try:
                set_po_line_quantity(get_db(), shop_id(), line.id, qty, utcnow())
            except ValidationError as exc:
                form.error(f"qty_{line.id}", exc.message)
                return _detail(purchase_order_detail(get_db(), shop_id(), po_id), form, 400)
            changed += 1
    return _done(po_id, f"{changed} line(s) updated")


@pages.post("/purchase-orders/<int:po_id>/send")
def purchase_order_send(po_id: int) -> Any:
    po = purchase_order_detail(get_db(), shop_id(), po_id)
    try:
        number = send_purchase_order(get_db(), shop_id(), po_id, utcnow())
    except ValidationError as exc:
        form = Form(request.form)
        form.error("send", exc.message)
        return _detail(po, form, 400)
    return _done(po_id, f"{number} approved and sent to {po.supplier}")


@pages.post("/purchase-orders/<int:po_id>/expected-date")
def purchase_order_expected_date(po_id: int) -> Any:
    po = purchase_order_detail(get_db(), shop_id(), po_id)
    form = Form(request.form)
    new_date = form.date("expected_date", required=True)
    reason = form.text("reason", max_length=500)
    if new_date is not None and new_date.year < 2000:
        form.error("expected_date", "enter a realistic date")
    if form.ok and new_date is not None:
        try:
            set_expected_date(get_db(), shop_id(), po_id, new_date, utcnow(), source="merchant", reason=reason)
            return _done(po_id, f"expected date set to {new_date.isoformat()}")
        except ValidationError as exc:
            form.error("expected_date", exc.message)
    return _detail(po, form, 400)


@pages.post("/purchase-orders/<int:po_id>/receive")
def purchase_order_receive(po_id: int) -> Any:
    po = purchase_order_detail(get_db(), shop_id(), po_id)
    form = Form(request.form)
    quantities: dict[str, int] = {}
    receive_all = form.boolean("all")
    for line in po.lines:
        if receive_all:
            qty = max(line.ordered - line.received, 0)
        else:
            qty = form.integer(f"recv_{line.id}", minimum=0, maximum=1_000_000, required=False) or 0
        if qty:
            quantities[line.sku] = qty
    if form.ok and not quantities:
        form.error("receive", "enter the units received on at least one line")
    if not po.receivable:
        form.error("receive", f"{po.number} is {po.status}; send it before receiving")
    if not form.ok:
        return _detail(po, form, 400)
    try:
        results = receive_purchase_order(get_db(), shop_id(), po_id, quantities, utcnow())
    except ValidationError as exc:
        form.error("receive", exc.message)
        return _detail(po, form, 400)
    to_orders = sum(r.to_pegged_lines + r.to_other_lines for r in results.values())
    to_stock = sum(r.to_stock for r in results.values())
    return _done(po_id, f"received {sum(quantities.values())} unit(s): {to_orders} to waiting orders, "
                        f"{to_stock} to stock")


@pages.post("/purchase-orders/<int:po_id>/cancel")
def purchase_order_cancel(po_id: int) -> Any:
    po = purchase_order_detail(get_db(), shop_id(), po_id)
    try:
        released = cancel_purchase_order(get_db(), shop_id(), po_id, utcnow())
    except ValidationError as exc:
        form = Form(request.form)
        form.error("cancel", exc.message)
        return _detail(po, form, 400)
    return _done(po_id, f"{po.number} cancelled; {released} unit(s) will be ordered again")


@pages.get("/outbox/dead")
def outbox_dead() -> Any:
    return render_template("pages/dead_letters.html", rows=dead_letters(get_db(), shop_id()))


@pages.post("/outbox/<int:message_id>/retry")
def outbox_retry(message_id: int) -> Any:
    retry_dead(get_db(), shop_id(), message_id, utcnow())
    flash(f"message {message_id} will be retried", "ok")
    return redirect(url_for("pages.outbox_dead"))
