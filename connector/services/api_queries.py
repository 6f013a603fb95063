"""Read models of the JSON API: pages of backorders, purchase orders, suppliers and outbox
messages, and who a bearer token is.

Pages are keyset-paginated: a page ends with the sort key of its last row, and the next page
starts strictly after it, so rows inserted or removed meanwhile neither repeat nor vanish (an
offset would shift). Every query runs in a :class:`UnitOfWork` bound to the token's shop, so a
row of another shop cannot appear whatever the parameters are.

Also the two small writes every API request may make: the per-token request counter (rate
limits) and the ``Idempotency-Key`` records of receipts (end of the module).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute

from connector.db.engine import Database
from connector.db.models import (
    OPEN_PO_STATUSES,
    ApiIdempotencyKey,
    ApiRateWindow,
    ApiToken,
    OrderLine,
    OutboxMessage,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Supplier,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.errors import NotFound
from connector.services.accounts import shop_for_api_token
from connector.services.purchase_order_queries import PoDetail, purchase_order_detail

READ = "read"
WRITE = "write"


@dataclass(frozen=True, slots=True)
class ApiPrincipal:
    """Who sent an API request: the token's shop and what the token may do."""

    shop_id: int
    scopes: frozenset[str]


def api_principal(db: Database, token: str, now: datetime) -> ApiPrincipal | None:
    """The principal of a bearer token, or None when it is unknown or revoked.

    A token's ``scope`` is ``"read"`` or ``"read_write"`` (chosen on the settings page).
    """
    shop_id = shop_for_api_token(db, token, now)
    if shop_id is None:
        return None
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        # The same SHA-256 that accounts stores; the token was just verified above.
        scope = uow.session.scalar(
            select(ApiToken.scope).where(ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
        )
    return ApiPrincipal(shop_id, frozenset({READ, WRITE}) if scope in (None, "read_write") else frozenset({READ}))


@dataclass(frozen=True, slots=True)
class PageRequest:
    """``after`` is the sort key of the previous page's last row (from a cursor); ``offset``
    skips rows (after ``after`` when both are set)."""

    limit: int
    after: tuple[Any, ...] | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    last_key: tuple[Any, ...] | None  # the sort key of the last item when another page follows


def _after(columns: list[tuple[ColumnElement[Any] | QueryableAttribute[Any], bool]], key: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in the order of ``columns`` (each ascending or descending)."""
    clauses = []
    for i, (column, descending) in enumerate(columns):
        step = column < key[i] if descending else column > key[i]
        clauses.append(and_(*[c == key[j] for j, (c, _) in enumerate(columns[:i])], step))
    return or_(*clauses)


def _paged(stmt: Select[Any], columns: list[tuple[ColumnElement[Any] | QueryableAttribute[Any], bool]], page: PageRequest) -> Select[Any]:
    if page.after is not None:
        stmt = stmt.where(_after(columns, page.after))
    order = [c.desc() if descending else c.asc() for c, descending in columns]
    return stmt.order_by(*order).offset(page.offset).limit(page.limit + 1)


def _finish(rows: list[Any], page: PageRequest, key: Any) -> tuple[list[Any], tuple[Any, ...] | None]:
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    return rows, key(rows[-1])


# Backorders ------------------------------------------------------------------------------------


def backorders(db: Database, shop_id: int, page: PageRequest, sku: str | None = None,
               supplier_id: int | None = None) -> Page:
    """Order lines with units still waiting, oldest first, with the POs they are pegged to."""
    since = func.coalesce(OrderLine.waiting_since, OrderLine.placed_at)
    stmt = (
        select(OrderLine.id, SalesOrder.number, OrderLine.sku, OrderLine.title, OrderLine.kind,
               OrderLine.backordered, OrderLine.pegged, since, OrderLine.promised_eta, OrderLine.current_eta,
               Supplier.id, Supplier.name)
        .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
        .outerjoin(Variant, Variant.id == OrderLine.variant_id)
        .outerjoin(Supplier, Supplier.id == Variant.supplier_id)
        .where(OrderLine.backordered > 0)
    )
    if sku is not None:
        stmt = stmt.where(OrderLine.sku == sku)
    if supplier_id is not None:
        stmt = stmt.where(Variant.supplier_id == supplier_id)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows, last = _finish(
            list(uow.session.execute(_paged(stmt, [(since, False), (OrderLine.id, False)], page))),
            page, lambda r: (r[7].isoformat(), r[0]),
        )
        pegs: dict[int, list[dict[str, Any]]] = defaultdict(list)
        if rows:
            for line_id, number, units in uow.session.execute(
                select(Peg.order_line_id, PurchaseOrder.number, Peg.units)
                .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
                .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
                .where(Peg.order_line_id.in_([r[0] for r in rows]))
                .order_by(PurchaseOrder.expected_date, PurchaseOrder.id)
            ):
                pegs[line_id].append({"number": number, "units": units})
    items = [
        {
            "line_id": r[0], "order_number": r[1], "sku": r[2], "title": r[3], "kind": r[4], "units": r[5],
            "pegged_units": r[6], "waiting_since": r[7], "promised_eta": r[8], "current_eta": r[9],
            "supplier": {"id": r[10], "name": r[11]} if r[10] is not None else None,
            "purchase_orders": pegs.get(r[0], []),
        }
        for r in rows
    ]
    return Page(items, last)


# Purchase orders -------------------------------------------------------------------------------


def purchase_orders(db: Database, shop_id: int, page: PageRequest, today: date, status: str | None = None,
                    supplier_id: int | None = None) -> Page:
    """Purchase orders with their totals, newest first."""
    stmt = (
        select(
            PurchaseOrder.id, PurchaseOrder.number, PurchaseOrder.status, Supplier.id, Supplier.name,
            PurchaseOrder.created_at, PurchaseOrder.expected_date, func.count(PurchaseOrderLine.id),
            func.coalesce(func.sum(PurchaseOrderLine.ordered), 0),
            func.coalesce(func.sum(PurchaseOrderLine.received), 0),
        )
        .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
        .outerjoin(PurchaseOrderLine, PurchaseOrderLine.purchase_order_id == PurchaseOrder.id)
        .group_by(PurchaseOrder.id, PurchaseOrder.number, PurchaseOrder.status, Supplier.id, Supplier.name,
                  PurchaseOrder.created_at, PurchaseOrder.expected_date)
    )
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    if supplier_id is not None:
        stmt = stmt.where(PurchaseOrder.supplier_id == supplier_id)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        # Ids grow with creation, so "newest first" is id descending: one indexed key.
        rows, last = _finish(list(uow.session.execute(_paged(stmt, [(PurchaseOrder.id, True)], page))),
                             page, lambda r: (r[0],))
    items = [
        {
            "number": r[1], "status": r[2], "supplier": {"id": r[3], "name": r[4]}, "created_at": r[5],
            "expected_date": r[6], "late": r[2] in ("sent", "confirmed", "partially_received") and r[6] < today,
            "lines": int(r[7]), "ordered_units": int(r[8]), "received_units": int(r[9]),
        }
        for r in rows
    ]
    return Page(items, last)


def purchase_order_id(db: Database, shop_id: int, number: str) -> int:
    """The id of the shop's PO ``number``; another shop's number is NotFound like a missing one."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        po_id = uow.session.scalar(select(PurchaseOrder.id).where(PurchaseOrder.number == number))
    if po_id is None:
        raise NotFound(f"no purchase order {number}", field="number")
    return int(po_id)


def purchase_order_view(detail: PoDetail) -> dict[str, Any]:
    return {
        "number": detail.number,
        "status": detail.status,
        "supplier": {"id": detail.supplier_id, "name": detail.supplier},
        "currency": detail.currency,
        "created_at": detail.created_at,
        "sent_at": detail.sent_at,
        "expected_date": detail.expected_date,
        "expected_date_source": detail.expected_date_source,
        "receivable": detail.receivable,
        "lines": [
            {"sku": line.sku, "supplier_sku": line.supplier_sku, "ordered": line.ordered, "received": line.received,
             "pegged": line.pegged, "unit_cost_cents": line.unit_cost_cents}
            for line in detail.lines
        ],
        "waiting_orders": [{"order_number": n, "sku": s, "units": u} for n, s, u in detail.waiting_orders],
    }


def purchase_order(db: Database, shop_id: int, number: str) -> dict[str, Any]:
    return purchase_order_view(purchase_order_detail(db, shop_id, purchase_order_id(db, shop_id, number)))


# Suppliers -------------------------------------------------------------------------------------


def suppliers(db: Database, shop_id: int, page: PageRequest) -> Page:
    """Suppliers by name, with how many of their purchase orders are open."""
    open_pos = (
        select(func.count(PurchaseOrder.id))
        .where(PurchaseOrder.supplier_id == Supplier.id, PurchaseOrder.status.in_(OPEN_PO_STATUSES))
        .correlate(Supplier)
        .scalar_subquery()
    )
    stmt = select(Supplier.id, Supplier.name, Supplier.email, Supplier.currency, Supplier.lead_time_days,
                  Supplier.dropship, open_pos)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        rows, last = _finish(
            list(uow.session.execute(_paged(stmt, [(Supplier.name, False), (Supplier.id, False)], page))),
            page, lambda r: (r[1], r[0]),
        )
    items = [
        {"id": r[0], "name": r[1], "email": r[2], "currency": r[3], "lead_time_days": r[4], "dropship": r[5],
         "open_purchase_orders": int(r[6] or 0)}
        for r in rows
    ]
    return Page(items, last)


# Outbox ----------------------------------------------------------------------------------------

# Store clients may put credentials in a URL (WooCommerce query-string auth) and an error text can
# echo that URL; the merchant's tools get the reason, never a key.
_SECRET_IN_TEXT = re.compile(
    r"(?i)\b(consumer_key|consumer_secret|access_token|api_key|token|password|secret|signature)=[^&\s\"']+"
)
MAX_API_ERROR_CHARS = 500


def redact_error(text: str | None) -> str | None:
    """``last_error`` as the API shows it: credentials in URLs masked, cut to a readable length."""
    if text is None:
        return None
    masked = _SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}=***", text)
    return masked if len(masked) <= MAX_API_ERROR_CHARS else masked[: MAX_API_ERROR_CHARS - 1] + "…"


def outbox_messages(db: Database, shop_id: int, page: PageRequest, state: str | None = None) -> Page:
    """The shop's outbox, newest first: what waits, what went out, what died and why.

    The payload (customer names, e-mail text, store data) and the idempotency key stay out: the
    list is for watching delivery, and a merchant's script has no use for either.
    """
    stmt = select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.target, OutboxMessage.subject,
                  OutboxMessage.state, OutboxMessage.attempts, OutboxMessage.next_attempt_at,
                  OutboxMessage.last_error, OutboxMessage.created_at, OutboxMessage.sent_at)
    if state is not None:
        stmt = stmt.where(OutboxMessage.state == state)
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        # Ids grow with creation, so "newest first" is id descending: one indexed key.
        rows, last = _finish(list(uow.session.execute(_paged(stmt, [(OutboxMessage.id, True)], page))),
                             page, lambda r: (r[0],))
    return Page([outbox_message_view(*r) for r in rows], last)


def outbox_message_view(message_id: int, kind: str, target: str, subject: str | None, state: str, attempts: int,
                        next_attempt_at: datetime | None, last_error: str | None, created_at: datetime,
                        sent_at: datetime | None) -> dict[str, Any]:
    # A message that is sent, dead or skipped is not waiting for anything: no next attempt.
    waiting = state in ("pending", "sending")
    return {
        "id": message_id, "kind": kind, "target": target, "subject": subject, "state": state,
        "attempts": attempts, "next_attempt_at": next_attempt_at if waiting else None,
        "last_error": redact_error(last_error), "created_at": created_at, "sent_at": sent_at,
    }


def outbox_message(db: Database, shop_id: int, message_id: int) -> dict[str, Any]:
    """One message of the shop as the API shows it; another shop's id is NotFound like a missing one."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        m = uow.session.scalar(select(OutboxMessage).where(OutboxMessage.id == message_id))
        if m is None:
            raise NotFound(f"no outbox message {message_id}", field="id")
        return outbox_message_view(m.id, m.kind, m.target, m.subject, m.state, m.attempts, m.next_attempt_at,
                                   m.last_error, m.created_at, m.sent_at)


# Rate limits ----------------------------------------------------------------------------------


def count_api_request(db: Database, shop_id: int, token_hash: str, kind: str, window_minute: int) -> int:
    """Count one request of a token in a fixed one-minute window; return the window's count so far.

    One statement (an UPSERT): cheap on SQLite and PostgreSQL, and exact across web workers
    because the database serializes the increments of one row.
    """
    table = cast(Table, ApiRateWindow.__table__)
    insert = sqlite.insert if db.is_sqlite else postgresql.insert
    stmt = (
        insert(table)
        .values(shop_id=shop_id, token_hash=token_hash, kind=kind, window_minute=window_minute, hits=1)
        .on_conflict_do_update(index_elements=["token_hash", "kind", "window_minute"],
                               set_={"hits": table.c.hits + 1})
        .returning(table.c.hits)
    )
    with UnitOfWork(db, shop_id) as uow:
        hits = int(uow.session.execute(stmt).scalar_one())
        uow.commit()
    return hits


# Idempotency keys -----------------------------------------------------------------------------

IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What the first request with an ``Idempotency-Key`` was answered."""

    status: int
    body: str


class IdempotencyConflict(Exception):
    """The key cannot be used for this request: ``code`` is ``idempotency_key_reused`` (another
    request) or ``idempotency_key_in_progress`` (the first request has not finished)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def claim_idempotency_key(db: Database, shop_id: int, key: str, request_hash: str,
                          now: datetime) -> StoredAnswer | None:
    """Claim ``key`` for a request (None: go ahead, then :func:`complete_idempotency_key`), or
    return the answer stored for the same request, or raise :class:`IdempotencyConflict`.

    The claim is committed before the write runs: the unique ``(shop_id, key)`` makes a
    concurrent duplicate fail to claim, so at most one of them applies. A key older than
    :data:`IDEMPOTENCY_TTL` has expired and is claimed afresh.
    """
    for _ in range(2):
        with UnitOfWork(db, shop_id) as uow:
            s = uow.session
            row = s.scalar(select(ApiIdempotencyKey).where(ApiIdempotencyKey.key == key))
            if row is not None and row.created_at <= now - IDEMPOTENCY_TTL:
                s.delete(row)
                s.flush()
                row = None
            if row is None:
                uow.add(ApiIdempotencyKey(key=key, request_hash=request_hash, created_at=now))
                try:
                    uow.commit()
                except IntegrityError:
                    continue  # a concurrent request claimed it first: read its row
                return None
            if row.request_hash != request_hash:
                raise IdempotencyConflict("idempotency_key_reused", "this Idempotency-Key was used for another "
                                          "request in the last 24 hours; send a new key for a new request")
            if row.status is None or row.response is None:
                break
            return StoredAnswer(row.status, row.response)
    raise IdempotencyConflict("idempotency_key_in_progress", "a request with this Idempotency-Key is still "
                              "being processed; retry in a moment")


def complete_idempotency_key(db: Database, shop_id: int, key: str, status: int, body: str, now: datetime) -> None:
    """Store the answer of the request that claimed ``key``: repeats get it back."""
    with UnitOfWork(db, shop_id) as uow:
        uow.session.execute(
            update(ApiIdempotencyKey).where(ApiIdempotencyKey.key == key)
            .values(status=status, response=body, completed_at=now)
            .execution_options(synchronize_session=False)
        )
        uow.commit()


def release_idempotency_key(db: Database, shop_id: int, key: str) -> None:
    """Give a claimed key back after the request failed without applying anything, so a retry
    with the same key runs again (errors are not stored)."""
    with UnitOfWork(db, shop_id) as uow:
        uow.session.execute(
            delete(ApiIdempotencyKey).where(ApiIdempotencyKey.key == key, ApiIdempotencyKey.status.is_(None))
            .execution_options(synchronize_session=False)
        )
        uow.commit()
