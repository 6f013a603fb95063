"""The supplier's side of a sent purchase order or dropship forward, through a signed link.

Each sent PO (and each forward) carries a link the supplier opens without an account. The link
is a token signed with the app's ``SECRET_KEY`` (itsdangerous, HMAC-SHA256) naming the shop,
the document and its number, and when the link stops working. The expiry is inside the signed
payload and derived from when the document was sent, so the same document always gets the same
link (a retried e-mail carries the link of the first attempt) and the check uses the caller's
``now`` instead of the wall clock. A changed byte → :class:`SignatureError`; past its expiry →
:class:`LinkExpired`.

The merchant can revoke a document's link (a forwarded e-mail went to the wrong person) and
issue a new one: the row's ``link_generation`` is in the token (absent = 1, so links sent
before generations existed keep working), and a token of another generation, or any token
while the link is revoked, raises :class:`LinkRevoked`. A new link's expiry counts from when
it was issued.

Through the link the supplier confirms (``sent`` → ``confirmed``), changes line quantities
(:func:`purchasing.set_po_line_quantity`) or sets the expected date
(:func:`purchasing.set_expected_date` with ``source='supplier'`` and a reason). Each of those
services recomputes the ETAs of the lines pegged to the PO and records delays in the outbox.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import DropshipForward, Peg, PurchaseOrder, PurchaseOrderLine
from connector.db.uow import UnitOfWork
from connector.errors import SignatureError, ValidationError
from connector.services import dropship, events, purchasing
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.supplier_documents import (
    DropshipForwardData,
    PurchaseOrderData,
    PurchaseOrderLineData,
    dropship_forward_data,
    purchase_order_data,
)

PO_LINK_DAYS = 120
FORWARD_LINK_DAYS = 60
# Served by connector/web/supplier_portal.py (blueprint prefix + these routes).
PO_PATH = "/supplier/po/"
FORWARD_PATH = "/supplier/forward/"
KINDS = ("po", "forward")
MAX_REASON_CHARS = 1000
_SALT = "supplier-portal-link.v1"


class LinkExpired(SignatureError):
    """A genuine link whose time is over: the supplier should ask the merchant for a new one."""

    code = "link_expired"


class LinkRevoked(SignatureError):
    """A genuine link the merchant revoked or replaced with a newer one."""

    code = "link_revoked"


@dataclass(frozen=True, slots=True)
class PortalLink:
    shop_id: int
    kind: str  # po | forward
    object_id: int
    number: str
    expires_at: datetime
    generation: int = 1


def _serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise SignatureError("no secret key configured to sign supplier links")
    return URLSafeSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def make_token(secret: str, link: PortalLink) -> str:
    data: dict[str, object] = {"s": link.shop_id, "k": link.kind, "i": link.object_id, "n": link.number,
                               "e": int(link.expires_at.timestamp())}
    if link.generation != 1:  # generation 1 tokens stay byte-identical to the links already sent
        data["g"] = link.generation
    return _serializer(secret).dumps(data)


def read_token(secret: str, token: str, now: datetime, kind: str) -> PortalLink:
    """The link a token stands for; raises SignatureError (tampered, wrong kind) or LinkExpired."""
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise SignatureError("this link is not valid") from None
    if not isinstance(data, dict) or data.get("k") != kind:
        raise SignatureError("this link is not valid")
    try:
        link = PortalLink(int(data["s"]), kind, int(data["i"]), str(data["n"]),
                          datetime.fromtimestamp(int(data["e"]), UTC), int(data.get("g", 1)))
    except (KeyError, TypeError, ValueError):
        raise SignatureError("this link is not valid") from None
    if now >= link.expires_at:
        raise LinkExpired(f"this link expired on {link.expires_at.date().isoformat()}", number=link.number)
    return link


def po_link(shop_id: int, po_id: int, number: str, sent_at: datetime, days: int = PO_LINK_DAYS,
            generation: int = 1) -> PortalLink:
    return PortalLink(shop_id, "po", po_id, number, sent_at + timedelta(days=days), generation)


def forward_link(
    shop_id: int, forward_id: int, number: str, created_at: datetime, days: int = FORWARD_LINK_DAYS,
    generation: int = 1,
) -> PortalLink:
    return PortalLink(shop_id, "forward", forward_id, number, created_at + timedelta(days=days), generation)


def po_url(app_url: str, secret: str, po: PurchaseOrderData) -> str:
    """The supplier's link for a sent PO (the same link on every retry)."""
    link = po_link(po.shop_id, po.id, po.number, po.link_issued_at or po.sent_at or po.created_at,
                   generation=po.link_generation)
    return app_url.rstrip("/") + PO_PATH + make_token(secret, link)


def forward_url(app_url: str, secret: str, forward: DropshipForwardData) -> str:
    link = forward_link(forward.shop_id, forward.id, forward.number, forward.link_issued_at or forward.created_at,
                        generation=forward.link_generation)
    return app_url.rstrip("/") + FORWARD_PATH + make_token(secret, link)


def _same(link: PortalLink, document: PurchaseOrderData | DropshipForwardData) -> None:
    # Ids are not reused on PostgreSQL, but may be on SQLite after a delete: the number pins it.
    if document.number != link.number:
        raise SignatureError("this link is not valid")
    if document.link_revoked:
        raise LinkRevoked(f"the link to {document.number} was revoked", number=document.number)
    if link.generation != document.link_generation:
        raise LinkRevoked(f"the link to {document.number} was replaced by a newer one", number=document.number)


def linked_purchase_order(db: Database, link: PortalLink) -> PurchaseOrderData:
    po = purchase_order_data(db, link.shop_id, link.object_id)
    _same(link, po)
    return po


def linked_forward(db: Database, link: PortalLink) -> DropshipForwardData:
    forward = dropship_forward_data(db, link.shop_id, link.object_id)
    _same(link, forward)
    return forward


def _link_row(uow: UnitOfWork, kind: str, object_id: int) -> PurchaseOrder | DropshipForward:
    if kind not in KINDS:
        raise ValidationError(f"unknown document kind {kind!r}", field="kind")
    if kind == "forward":
        return uow.get(DropshipForward, object_id)
    row = uow.get(PurchaseOrder, object_id)
    if row.sent_at is None:
        raise ValidationError(f"{row.number} was not sent: it has no supplier link yet", field="link")
    return row


def revoke_link(db: Database, shop_id: int, kind: str, object_id: int, now: datetime) -> bool:
    """Refuse every link to the document from now on; True if it changed (revoking twice does not)."""
    with UnitOfWork(db, shop_id) as uow:
        row = _link_row(uow, kind, object_id)
        if row.link_revoked_at is not None:
            return False
        row.link_revoked_at = now
        row.link_generation += 1
        uow.commit()
        return True


def issue_new_link(db: Database, shop_id: int, kind: str, object_id: int, now: datetime) -> int:
    """A new link for the document, valid from ``now``; every earlier link is refused. Returns
    the new generation (the page shows the link itself, built by :func:`po_url`/:func:`forward_url`)."""
    with UnitOfWork(db, shop_id) as uow:
        row = _link_row(uow, kind, object_id)
        row.link_generation += 1
        row.link_issued_at = now
        row.link_revoked_at = None
        uow.commit()
        return row.link_generation


def confirm_purchase_order(db: Database, shop_id: int, po_id: int, now: datetime) -> bool:
    """``sent`` → ``confirmed``; True if it changed. Confirming twice (or after goods arrived)
    changes nothing; a cancelled or unsent PO cannot be confirmed."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        po = uow.get(PurchaseOrder, po_id)
        if po.status in ("confirmed", "partially_received", "received"):
            return False
        if po.status != "sent":
            raise ValidationError(f"{po.number} is {po.status} and cannot be confirmed", field="status")
        po.status = "confirmed"
        po.confirmed_at = now
        changes = Changes(now)
        pegged = uow.session.scalars(
            select(Peg.order_line_id)
            .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
            .where(PurchaseOrderLine.purchase_order_id == po.id)
        )
        for line_id in pegged:
            changes.touch(line_id)
        recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
        return True


@dataclass(frozen=True, slots=True)
class SupplierResponse:
    confirmed: bool
    quantities_changed: list[str]  # SKUs
    date_changed: bool


def respond_to_purchase_order(
    db: Database,
    link: PortalLink,
    now: datetime,
    *,
    confirm: bool = False,
    quantities: Mapping[str, int] | None = None,
    expected_date: date | None = None,
    reason: str | None = None,
) -> SupplierResponse:
    """Apply what the supplier answered: quantities by SKU (ours or the supplier's), the date
    the goods will arrive (with a reason for the customer-facing history), and confirmation.

    Everything is validated before anything changes; each change is then one service call
    (its own transaction, ETAs of pegged lines recomputed, delays recorded).
    """
    po = linked_purchase_order(db, link)
    if po.status not in ("sent", "confirmed", "partially_received"):
        raise ValidationError(f"{po.number} is {po.status}; it can no longer be changed here", field="status")
    by_sku: dict[str, PurchaseOrderLineData] = {}
    for po_line in po.lines:
        by_sku.setdefault(po_line.supplier_sku, po_line)
        by_sku[po_line.sku] = po_line
    changes: list[tuple[int, str, int]] = []
    for sku, quantity in (quantities or {}).items():
        line = by_sku.get(sku)
        if line is None:
            raise ValidationError(f"{po.number} has no line for SKU {sku}", field=f"quantity[{sku}]")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < line.received:
            raise ValidationError(f"quantity for {sku} must be a whole number >= {line.received}",
                                  field=f"quantity[{sku}]")
        if quantity != line.quantity:
            changes.append((line.id, line.sku, quantity))
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise ValidationError("the reason is too long", field="reason")
    new_date = expected_date if expected_date is not None and expected_date != po.expected_date else None
    if new_date is not None and new_date < (po.sent_at or po.created_at).date():
        raise ValidationError("the date cannot be before the order was sent", field="expected_date")
    for line_id, _sku, quantity in changes:
        purchasing.set_po_line_quantity(db, link.shop_id, line_id, quantity, now)
    if new_date is not None:
        purchasing.set_expected_date(db, link.shop_id, po.id, new_date, now, source="supplier",
                                     reason=reason or "date set by the supplier")
    confirmed = confirm_purchase_order(db, link.shop_id, po.id, now) if confirm else False
    return SupplierResponse(confirmed, [sku for _, sku, _ in changes], new_date is not None)


def record_forward_tracking(
    db: Database, link: PortalLink, tracking: dropship.Tracking, now: datetime
) -> dropship.TrackingResult:
    """Tracking reported through the forward's link."""
    linked_forward(db, link)
    return dropship.record_tracking(db, link.shop_id, link.object_id, tracking, now)
