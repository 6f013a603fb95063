"""Dropship pages: forwards and their documents, the waiting queues, and supplier links.

Also the merchant's side of the signed supplier links (revoke, issue a new one) for both
document kinds; the purchase-order page posts to :func:`supplier_link` with kind ``po``.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, url_for

from connector.services import supplier_confirmation as links
from connector.services.dropship import forward_now
from connector.services.dropship_queries import dropship_queues, forward_document, forward_view, list_forwards
from connector.services.outbox import retry_dead
from connector.services.supplier_documents import (
    DropshipForwardData,
    PurchaseOrderData,
    dropship_forward_data,
    purchase_order_data,
)
from connector.web.pages import pages
from connector.web.pages.common import get_db, shop_id, utcnow

LINK_ACTIONS = ("revoke", "new")


def supplier_url(document: PurchaseOrderData | DropshipForwardData) -> str | None:
    """The link the supplier holds now, or None when it is revoked (or the PO was never sent)."""
    if document.link_revoked:
        return None
    settings = current_app.extensions.get("backorders.settings")
    app_url = str(getattr(settings, "app_url", "") or "http://127.0.0.1:5000")
    secret = str(getattr(settings, "secret_key", "") or current_app.config.get("SECRET_KEY") or "")
    if isinstance(document, PurchaseOrderData):
        return links.po_url(app_url, secret, document) if document.sent_at is not None else None
    return links.forward_url(app_url, secret, document)


@pages.get("/dropship")
def dropship_forwards() -> Any:
    now = utcnow()
    return render_template("pages/dropship_forwards.html", forwards=list_forwards(get_db(), shop_id()),
                           queues=dropship_queues(get_db(), shop_id(), now))


@pages.get("/dropship/forwards/<int:forward_id>")
def dropship_forward(forward_id: int) -> Any:
    view = forward_view(get_db(), shop_id(), forward_id)
    return render_template("pages/dropship_forward.html", view=view, fw=view.forward,
                           supplier_link=supplier_url(view.forward))


@pages.post("/dropship/suppliers/<int:supplier_id>/forward")
def dropship_forward_now(supplier_id: int) -> Any:
    forward_id, number = forward_now(get_db(), shop_id(), supplier_id, utcnow())  # ValidationError → 400 page
    flash(f"{number} created; it goes to the supplier with the next outbox delivery", "ok")
    return redirect(url_for("pages.dropship_forward", forward_id=forward_id))


@pages.post("/dropship/forwards/<int:forward_id>/documents/<int:message_id>/retry")
def dropship_document_retry(forward_id: int, message_id: int) -> Any:
    forward_document(get_db(), shop_id(), forward_id, message_id)  # 404 unless it is this forward's
    retry_dead(get_db(), shop_id(), message_id, utcnow())  # not dead → 400 page
    flash(f"message {message_id} will be retried", "ok")
    return redirect(url_for("pages.dropship_forward", forward_id=forward_id))


@pages.post("/supplier-links/<kind>/<int:object_id>/<action>")
def supplier_link(kind: str, object_id: int, action: str) -> Any:
    if kind not in links.KINDS or action not in LINK_ACTIONS:
        return render_template("pages/error.html", title="Not found", message="This page does not exist."), 404
    # Read first: another shop's id is a 404 before anything changes.
    document = (purchase_order_data if kind == "po" else dropship_forward_data)(get_db(), shop_id(), object_id)
    if action == "revoke":
        changed = links.revoke_link(get_db(), shop_id(), kind, object_id, utcnow())
        flash(f"the supplier link to {document.number} is revoked" if changed
              else f"the supplier link to {document.number} was already revoked", "ok")
    else:
        links.issue_new_link(get_db(), shop_id(), kind, object_id, utcnow())
        flash(f"new supplier link for {document.number}; every earlier link is refused", "ok")
    if kind == "po":
        return redirect(url_for("pages.purchase_order", po_id=object_id))
    return redirect(url_for("pages.dropship_forward", forward_id=object_id))
