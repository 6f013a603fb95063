"""Consolidation: turn unpegged backordered units into purchase-order quantities.

Per supplier and SKU: waiting units are first pegged to surplus units of open POs (oldest PO
first, oldest line first); what is still unpegged goes onto the SKU's line in the supplier's
one open draft, rounded up to the pack size and the MOQ. The rounding surplus waits for later
lines. Runs as a handful of set-based queries and bulk writes so that 100,000 lines consolidate
in about a second; a consolidation with nothing to do is one indexed scan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector.db.bulk import insert_rows, update_by_id
from connector.db.engine import Database
from connector.db.models import (
    DRAFT_PO_STATUSES,
    OPEN_PO_STATUSES,
    OrderLine,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    Shop,
    Supplier,
    SupplierItem,
    Variant,
    line_table,
    peg_table,
    po_line_table,
)
from connector.db.uow import UnitOfWork
from connector.domain.allocation import Claim
from connector.domain.consolidation import Slot, draft_is_ready, pack_quantity, peg_to_slots, safety_top_up
from connector.domain.eta import po_eta
from connector.services import events
from connector.services.etas import recompute_etas
from connector.services.events import Changes
from connector.services.shop_settings import engine_settings
from connector.services.stock_flow import RECEIVING_KINDS


@dataclass
class ConsolidationResult:
    pegged_to_open_pos: int = 0
    pegged_to_drafts: int = 0
    drafts_created: int = 0
    po_lines_created: int = 0
    po_lines_grown: int = 0
    topped_up_units: int = 0
    drafts_ready: list[str] = field(default_factory=list)
    waiting_without_supplier: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.pegged_to_open_pos or self.pegged_to_drafts or self.topped_up_units or self.drafts_ready)


@dataclass(frozen=True, slots=True)
class _Waiting:
    """What one variant's waiting lines add up to, read in one GROUP BY at the start."""

    units: int
    partly_pegged: bool  # some waiting line already has a peg (only those can meet one again)
    eta_low: date | None  # earliest and latest current ETA of the lines ...
    eta_high: date | None
    unsettled: int  # ... and how many have no ETA or no promise yet

    def etas_all(self, eta: date) -> bool:
        """Whether every waiting line has promised and currently shows exactly ``eta``."""
        return not self.unsettled and self.eta_low == eta and self.eta_high == eta


@dataclass
class _Draft:
    po: PurchaseOrder
    lines: dict[int, PurchaseOrderLine]


def next_po_number(shop: Shop) -> str:
    shop.po_sequence += 1
    return f"PO-{shop.po_sequence:05d}"


def _open_draft(session: Session, shop: Shop, supplier: Supplier, drafts: dict[int, _Draft], now: datetime,
                result: ConsolidationResult) -> _Draft:
    draft = drafts.get(supplier.id)
    if draft is None:
        po = PurchaseOrder(
            shop_id=shop.id,
            supplier_id=supplier.id,
            number=next_po_number(shop),
            status="draft",
            created_at=now,
            expected_date=now.date() + timedelta(days=supplier.lead_time_days),
            expected_date_source="lead_time",
        )
        session.add(po)
        session.flush()
        draft = drafts[supplier.id] = _Draft(po, {})
        result.drafts_created += 1
    return draft


def consolidate(session: Session, shop: Shop, changes: Changes) -> ConsolidationResult:
    session.flush()
    result = ConsolidationResult()

    # Waiting units per variant: one GROUP BY, not one row per line. Lines are read one by one
    # only for the few variants that have free units on order (see _peg_and_order).
    # The same pass summarises what pegging onto drafts needs to know (see _peg_rest_to_drafts).
    waiting: dict[int, _Waiting] = {}
    supplier_of: dict[int, int] = {}
    unsettled = case((or_(OrderLine.promised_eta.is_(None), OrderLine.current_eta.is_(None)), 1), else_=0)
    for variant_id, supplier_id, units, most_pegged, eta_low, eta_high, n_unsettled in session.execute(
        select(
            OrderLine.variant_id, Variant.supplier_id, func.sum(OrderLine.backordered - OrderLine.pegged),
            func.max(OrderLine.pegged), func.min(OrderLine.current_eta), func.max(OrderLine.current_eta),
            func.sum(unsettled),
        )
        .join(Variant, Variant.id == OrderLine.variant_id)
        .where(_waiting(shop.id))
        .group_by(OrderLine.variant_id, Variant.supplier_id)
    ):
        if supplier_id is None:
            result.waiting_without_supplier += int(units)
            continue
        waiting[variant_id] = _Waiting(int(units), most_pegged > 0, eta_low, eta_high, int(n_unsettled))
        supplier_of[variant_id] = supplier_id

    popular = {
        v.id: v
        for v in session.scalars(
            select(Variant).where(Variant.popular.is_(True), Variant.safety_stock > 0, Variant.supplier_id.is_not(None))
        )
    }
    for v in popular.values():
        supplier_of.setdefault(v.id, v.supplier_id)  # type: ignore[arg-type]

    if waiting or popular:
        _peg_and_order(session, shop, changes, result, waiting, supplier_of, popular)
    _promote_ready_drafts(session, shop, changes, result)
    return result


def _waiting(shop_id: int) -> ColumnElement[bool]:
    """Order lines with backordered units not yet pegged to a PO line."""
    return and_(
        OrderLine.shop_id == shop_id,
        OrderLine.backordered > OrderLine.pegged,
        OrderLine.kind.in_(RECEIVING_KINDS),
    )


def _claims(session: Session, shop_id: int, variant_ids: list[int]) -> dict[int, list[Claim]]:
    claims: dict[int, list[Claim]] = defaultdict(list)
    for i in range(0, len(variant_ids), 5_000):
        for line_id, variant_id, priority, placed_at, unpegged in session.execute(
            select(
                OrderLine.id, OrderLine.variant_id, OrderLine.priority, OrderLine.placed_at,
                OrderLine.backordered - OrderLine.pegged,
            ).where(_waiting(shop_id), OrderLine.variant_id.in_(variant_ids[i : i + 5_000]))
        ):
            claims[variant_id].append(Claim(line_id, priority, placed_at, unpegged))
    return claims


def _peg_and_order(
    session: Session,
    shop: Shop,
    changes: Changes,
    result: ConsolidationResult,
    waiting: dict[int, _Waiting],
    supplier_of: dict[int, int],
    popular: dict[int, Variant],
) -> None:
    now = changes.now
    need = {variant_id: w.units for variant_id, w in waiting.items()}
    variants = set(need) | set(popular)

    # Free units on open PO lines (ordered, not received, not pegged), oldest PO first.
    pegged_on: dict[int, int] = {
        pol_id: int(units)
        for pol_id, units in session.execute(
            select(Peg.po_line_id, func.sum(Peg.units))
            .join(PurchaseOrderLine, PurchaseOrderLine.id == Peg.po_line_id)
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
            .where(Peg.shop_id == shop.id, PurchaseOrder.status.in_(OPEN_PO_STATUSES))
            .group_by(Peg.po_line_id)
        )
    }
    slots: dict[int, list[Slot]] = defaultdict(list)
    for pol_id, variant_id, ordered, received in session.execute(
        select(PurchaseOrderLine.id, PurchaseOrderLine.variant_id, PurchaseOrderLine.ordered, PurchaseOrderLine.received)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(PurchaseOrderLine.shop_id == shop.id, PurchaseOrder.status.in_(OPEN_PO_STATUSES))
        .order_by(PurchaseOrder.created_at, PurchaseOrder.id, PurchaseOrderLine.id)
    ):
        if variant_id in variants:
            slots[variant_id].append(Slot(pol_id, max(0, ordered - received) - int(pegged_on.get(pol_id, 0))))

    # Only variants with free units on order need the queue order (oldest line first, priority
    # first): their lines are read and pegged one by one. Every other variant's waiting units all
    # go onto its draft line, which _peg_rest_to_drafts does in one INSERT ... SELECT.
    queued = sorted(v for v in need if any(s.free > 0 for s in slots.get(v, ())))
    claims = _claims(session, shop.id, queued) if queued else {}

    new_pegs: dict[tuple[int, int], int] = defaultdict(int)
    leftovers: dict[int, list[tuple[int, int]]] = {}  # per line, queued variants only
    unpegged: dict[int, int] = {}  # units still to order, every variant
    spare_on_order: dict[int, int] = {}
    for variant_id in variants:
        free = sum(max(0, s.free) for s in slots.get(variant_id, ()))
        if variant_id in claims:
            made, left = peg_to_slots(claims[variant_id], slots.get(variant_id, ()))
            for line_id, pol_id, n in made:
                new_pegs[(line_id, pol_id)] += n
            pegged_now = sum(n for _, _, n in made)
            result.pegged_to_open_pos += pegged_now
            rest = [(line_id, n) for line_id, n in left.items() if n > 0]
            if rest:
                leftovers[variant_id] = rest
            unpegged[variant_id] = sum(n for _, n in rest)
            spare_on_order[variant_id] = free - pegged_now
        else:
            unpegged[variant_id] = need.get(variant_id, 0)
            spare_on_order[variant_id] = free

    top_ups: dict[int, int] = {}
    for variant_id, v in popular.items():
        extra = safety_top_up(
            target=v.safety_stock,
            free_stock=v.free_stock,
            unpegged_on_order=max(0, spare_on_order.get(variant_id, 0)),
            waiting_unpegged=unpegged.get(variant_id, 0),
        )
        if extra:
            top_ups[variant_id] = extra

    ordering = {v: n for v, n in unpegged.items() if n > 0}
    if ordering or top_ups:
        _order_on_drafts(session, shop, now, result, ordering, leftovers, top_ups, supplier_of, new_pegs)

    if new_pegs:
        _write_pegs(session, shop, new_pegs)
        for line_id, _pol in new_pegs:
            changes.touch(line_id)
    on_drafts = {v: waiting[v] for v in ordering if v not in claims}
    if on_drafts:
        handling = engine_settings(shop.settings).handling_days
        for line_id in _peg_rest_to_drafts(session, shop, handling, on_drafts, many_new_lines=len(ordering) > 1_000):
            changes.touch(line_id)


def _order_on_drafts(
    session: Session,
    shop: Shop,
    now: datetime,
    result: ConsolidationResult,
    ordering: dict[int, int],
    leftovers: dict[int, list[tuple[int, int]]],
    top_ups: dict[int, int],
    supplier_of: dict[int, int],
    new_pegs: dict[tuple[int, int], int],
) -> None:
    """Grow or add each variant's line on its supplier's draft by ``ordering[variant]`` units
    (plus any top-up). Pegs of the queued variants (``leftovers``, per line) go into
    ``new_pegs``; the other variants' lines are pegged afterwards by _peg_rest_to_drafts."""
    drafts: dict[int, _Draft] = {}
    for po in session.scalars(select(PurchaseOrder).where(PurchaseOrder.status.in_(DRAFT_PO_STATUSES))):
        drafts[po.supplier_id] = _Draft(po, {pol.variant_id: pol for pol in po.lines})
    suppliers = {s.id: s for s in session.scalars(select(Supplier))}
    # Plain rows, not ORM objects: thousands of SKUs can move at once.
    items = {
        (row.supplier_id, row.sku): row
        for row in session.execute(select(
            SupplierItem.supplier_id, SupplierItem.sku, SupplierItem.pack_size, SupplierItem.moq,
            SupplierItem.supplier_sku, SupplierItem.unit_cost_cents,
        ))
    }
    wanted = set(ordering) | set(top_ups)
    sku_of = {variant_id: sku for variant_id, sku in session.execute(select(Variant.id, Variant.sku))}

    # Decide every line first, then write them in bulk: thousands of SKUs can move at once.
    new_lines: list[dict[str, Any]] = []
    grown: list[dict[str, Any]] = []
    pending_pegs: list[tuple[int, list[tuple[int, int]]]] = []  # (variant_id, rest) for new lines
    for variant_id in sorted(wanted):
        supplier = suppliers[supplier_of[variant_id]]
        sku = sku_of[variant_id]
        item = items.get((supplier.id, sku))
        pack, moq = (item.pack_size, item.moq) if item else (1, 0)
        rest = leftovers.get(variant_id, [])
        need = ordering.get(variant_id, 0)
        draft = _open_draft(session, shop, supplier, drafts, now, result)
        pol = draft.lines.get(variant_id)
        # Leftovers exist only when every free unit on order (the draft's too) is pegged, so the
        # draft line's whole quantity is spoken for: the new quantity covers it plus the need.
        base = pol.ordered if pol is not None else 0
        quantity = pack_quantity(base + need + top_ups.get(variant_id, 0), pack, moq)
        if pol is None:
            new_lines.append({
                "shop_id": shop.id, "purchase_order_id": draft.po.id, "variant_id": variant_id, "sku": sku,
                "supplier_sku": item.supplier_sku if item else None,
                "unit_cost_cents": item.unit_cost_cents if item else 0,
                "ordered": quantity, "received": 0, "received_to_lines": 0,
            })
            if rest:
                pending_pegs.append((variant_id, rest))
            result.po_lines_created += 1
        else:
            if quantity > pol.ordered:
                grown.append({"id": pol.id, "ordered": quantity})  # a draft grows, never shrinks by itself
                result.po_lines_grown += 1
            for line_id, n in rest:
                new_pegs[(line_id, pol.id)] += n
        result.pegged_to_drafts += need
        result.topped_up_units += top_ups.get(variant_id, 0)
    session.flush()
    conn = session.connection()
    pol_table = po_line_table()
    update_by_id(conn, pol_table, grown, ("ordered",))
    if new_lines:
        conn.execute(insert(pol_table), new_lines)
        draft_ids = [d.po.id for d in drafts.values()]
        ids = {
            (po_id, variant_id): pol_id
            for pol_id, po_id, variant_id in session.execute(
                select(PurchaseOrderLine.id, PurchaseOrderLine.purchase_order_id, PurchaseOrderLine.variant_id).where(
                    PurchaseOrderLine.purchase_order_id.in_(draft_ids)
                )
            )
        }
        for variant_id, rest in pending_pegs:
            pol_id = ids[(drafts[supplier_of[variant_id]].po.id, variant_id)]
            for line_id, n in rest:
                new_pegs[(line_id, pol_id)] += n
    session.expire_all()


def _peg_rest_to_drafts(
    session: Session, shop: Shop, handling_days: int, rest: dict[int, _Waiting], many_new_lines: bool
) -> list[int]:
    """Peg every still-waiting unit to its variant's line on its supplier's draft, set-based.

    Called after every variant with need has a draft line, so each waiting line (with a
    supplier) finds exactly one: at most one draft per supplier, and the supplier must match
    (a variant that changed supplier may still sit on the old supplier's draft). ON CONFLICT
    covers a line already partly pegged to that draft line. ``rest`` summarises the waiting lines
    of the variants pegged here. Returns the ids of the pegged lines whose ETA may have moved.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql" and many_new_lines:
        # Thousands of draft lines were just written: without fresh statistics the planner may
        # take the PO tables for empty and join every waiting line to them by nested loops.
        conn.exec_driver_sql("ANALYZE purchase_order_lines, purchase_orders")
    lines, pegs, pol = line_table(), peg_table(), po_line_table()
    po = cast(Table, PurchaseOrder.__table__)
    variants = cast(Table, Variant.__table__)
    waiting = and_(
        lines.c.shop_id == shop.id,
        lines.c.backordered > lines.c.pegged,
        lines.c.kind.in_(RECEIVING_KINDS),
    )
    draft_lines = (
        pol.join(po, po.c.id == pol.c.purchase_order_id)
        .join(variants, and_(variants.c.id == pol.c.variant_id, variants.c.supplier_id == po.c.supplier_id))
    )
    in_draft = and_(pol.c.shop_id == shop.id, po.c.status.in_(DRAFT_PO_STATUSES))
    source = (
        select(lines.c.shop_id, lines.c.id, pol.c.id, lines.c.backordered - lines.c.pegged)
        .select_from(lines.join(draft_lines, pol.c.variant_id == lines.c.variant_id))
        .where(waiting, in_draft)
    )
    columns = ["shop_id", "order_line_id", "po_line_id", "units"]
    # A line with nothing pegged has no peg (``pegged`` is the sum of its pegs' units, an invariant
    # the property test checks), so its pegs are plain INSERTs: ON CONFLICT's speculative insertion
    # costs a third more per row. Only a partly pegged line can already have a peg on this draft line.
    conn.execute(insert(pegs).from_select(columns, source.where(lines.c.pegged == 0)))
    partly_pegged = sorted(v for v, w in rest.items() if w.partly_pegged)
    if partly_pegged:
        make_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        topped_up = make_insert(pegs).from_select(columns, source.where(
            lines.c.pegged > 0, *([lines.c.variant_id.in_(partly_pegged)] if len(partly_pegged) <= 5_000 else [])
        ))
        conn.execute(topped_up.on_conflict_do_update(
            index_elements=[pegs.c.order_line_id, pegs.c.po_line_id],
            set_={"units": pegs.c.units + topped_up.excluded.units},
        ))
    eta_if_pegged = {
        variant_id: po_eta(expected, handling_days)
        for variant_id, expected in conn.execute(
            select(pol.c.variant_id, po.c.expected_date).select_from(draft_lines).where(in_draft)
        )
    }
    to_peg = and_(waiting, lines.c.variant_id.in_(select(pol.c.variant_id).select_from(draft_lines).where(in_draft)))
    # A line's ETA is the latest of its parts and only the unpegged part drifts with the calendar;
    # pegging replaces that part by the draft's date. When the line already promised and shows
    # exactly that date, no other part can be later (it was the maximum), so the ETA cannot move:
    # skip the recompute. On a big first consolidation this is nearly every line, so only the
    # variants where some line may move (by the summary read at the start) are read line by line:
    # reading back all 100,000 cost a tenth of the consolidation.
    moving_variants = sorted(
        v for v, w in rest.items() if v not in eta_if_pegged or not w.etas_all(eta_if_pegged[v])
    )
    may_move = [
        line_id
        for i in range(0, len(moving_variants), 5_000)
        for line_id, variant_id, current, promised in conn.execute(
            select(lines.c.id, lines.c.variant_id, lines.c.current_eta, lines.c.promised_eta)
            .where(to_peg, lines.c.variant_id.in_(moving_variants[i:i + 5_000]))
        )
        if promised is None or current != eta_if_pegged.get(variant_id)
    ]
    pegged = conn.execute(update(lines).where(to_peg).values(pegged=lines.c.backordered)).rowcount
    if conn.dialect.name == "postgresql" and pegged > 5_000:
        # Thousands of pegs the planner has never seen: without fresh statistics PostgreSQL
        # plans the joins that follow (ETAs) as nested loops over an "empty" table. The PO lines
        # were analysed before pegging; order lines only changed a column no plan estimates.
        conn.exec_driver_sql("ANALYZE pegs")
    session.expire_all()
    return may_move


def _write_pegs(session: Session, shop: Shop, new_pegs: dict[tuple[int, int], int]) -> None:
    conn = session.connection()
    line_ids = {line_id for line_id, _ in new_pegs}
    existing: dict[tuple[int, int], int] = {}
    if len(line_ids) < 50_000:
        ids = list(line_ids)
        for i in range(0, len(ids), 5_000):
            for peg_id, line_id, pol_id in session.execute(
                select(Peg.id, Peg.order_line_id, Peg.po_line_id).where(Peg.order_line_id.in_(ids[i : i + 5_000]))
            ):
                existing[(line_id, pol_id)] = peg_id
    else:  # first consolidation of a big backlog: one scan beats many IN lists
        for peg_id, line_id, pol_id in session.execute(
            select(Peg.id, Peg.order_line_id, Peg.po_line_id).where(Peg.shop_id == shop.id)
        ):
            if line_id in line_ids:
                existing[(line_id, pol_id)] = peg_id
    pegs = peg_table()
    inserts: list[dict[str, Any]] = []
    grows: list[dict[str, Any]] = []
    per_line: dict[int, int] = defaultdict(int)
    for (line_id, pol_id), n in new_pegs.items():
        per_line[line_id] += n
        peg_id = existing.get((line_id, pol_id))
        if peg_id is None:
            inserts.append({"shop_id": shop.id, "order_line_id": line_id, "po_line_id": pol_id, "units": n})
        else:
            grows.append({"id": peg_id, "units": n})
    if inserts:
        insert_rows(conn, pegs, inserts)
        if conn.dialect.name == "postgresql" and len(inserts) > 5_000:
            # Thousands of rows the planner has never seen: without fresh statistics PostgreSQL
            # plans the joins below as nested loops over "empty" tables and takes minutes.
            conn.exec_driver_sql("ANALYZE pegs, purchase_order_lines, order_lines")
    update_by_id(conn, pegs, grows, ("units",), increment=("units",))
    lines = line_table()
    if len(per_line) < 5_000:
        update_by_id(
            conn, lines, [{"id": line_id, "pegged": n} for line_id, n in per_line.items()], ("pegged",),
            increment=("pegged",),
        )
    else:
        # A big backlog: recount every line's pegs in one set-based statement.
        totals = (
            select(pegs.c.order_line_id, func.sum(pegs.c.units).label("total"))
            .where(pegs.c.shop_id == shop.id)
            .group_by(pegs.c.order_line_id)
            .subquery()
        )
        conn.execute(
            update(lines)
            .where(lines.c.id == totals.c.order_line_id, lines.c.pegged != totals.c.total)
            .values(pegged=totals.c.total)
        )
    session.expire_all()


def _promote_ready_drafts(session: Session, shop: Shop, changes: Changes, result: ConsolidationResult) -> None:
    from connector.services.purchasing import send_in_session

    drafts = list(session.scalars(select(PurchaseOrder).where(PurchaseOrder.status == "draft")))
    if not drafts:
        return
    ids = [po.id for po in drafts]
    values = {
        po_id: int(value or 0)
        for po_id, value in session.execute(
            select(PurchaseOrderLine.purchase_order_id, func.sum(PurchaseOrderLine.ordered * PurchaseOrderLine.unit_cost_cents))
            .where(PurchaseOrderLine.purchase_order_id.in_(ids))
            .group_by(PurchaseOrderLine.purchase_order_id)
        )
    }
    suppliers = {sup.id: sup for sup in session.scalars(select(Supplier))}
    # The oldest waiting line matters only for drafts still below their supplier's minimum.
    below = [po.id for po in drafts if values.get(po.id, 0) < suppliers[po.supplier_id].min_order_value_cents]
    oldest: dict[int, datetime | None] = {
        po_id: since
        for po_id, since in session.execute(
            select(PurchaseOrderLine.purchase_order_id, func.min(OrderLine.waiting_since))
            .join(Peg, Peg.po_line_id == PurchaseOrderLine.id)
            .join(OrderLine, OrderLine.id == Peg.order_line_id)
            .where(PurchaseOrderLine.purchase_order_id.in_(below))
            .group_by(PurchaseOrderLine.purchase_order_id)
        )
    } if below else {}
    for po in drafts:
        if po.id not in values:
            continue  # no lines yet
        supplier = suppliers[po.supplier_id]
        waiting_since = oldest.get(po.id)
        if waiting_since is not None and waiting_since.tzinfo is None:  # aggregates bypass the column type
            waiting_since = waiting_since.replace(tzinfo=UTC)
        if draft_is_ready(
            value_cents=values[po.id],
            min_order_value_cents=supplier.min_order_value_cents,
            oldest_waiting_since=waiting_since,
            max_wait_days=supplier.max_wait_days,
            now=changes.now,
        ):
            po.status = "ready"
            po.ready_at = changes.now
            result.drafts_ready.append(po.number)
            changes.event("po_ready", po.number, number=po.number, supplier=supplier.name, value_cents=values[po.id])
            if supplier.auto_send:
                send_in_session(session, shop, po, changes)


def consolidate_backorders(db: Database, shop_id: int, now: datetime) -> ConsolidationResult:
    """Use case: one consolidation of a shop, in one transaction."""
    with UnitOfWork(db, shop_id) as uow:
        shop = uow.shop()
        changes = Changes(now)
        result = consolidate(uow.session, shop, changes)
        if changes.touched_lines:
            recompute_etas(uow.session, shop.id, engine_settings(shop.settings), changes, changes.touched_lines)
        events.flush(uow.session, shop.id, changes)
        uow.commit()
        return result
