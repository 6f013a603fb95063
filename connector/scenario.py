"""The scenario runner: a scripted case run through the real services on a fresh database.

``backorders scenario FILE.yaml`` is the merchant's "what if", support's replay and our
readable acceptance tests. The file names a start time, shop settings, suppliers, variants and
events in time order; the runner applies each event at its time and prints the end state.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connector.db import migrate
from connector.db.engine import Database
from connector.db.models import (
    OrderLine,
    OutboxMessage,
    Peg,
    PurchaseOrder,
    PurchaseOrderLine,
    SalesOrder,
    Shop,
    Supplier,
    SupplierItem,
    Variant,
)
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.errors import ConnectorError, ValidationError
from connector.services.consolidation import consolidate_backorders
from connector.services.orders import cancel_order_units, record_order
from connector.services.purchasing import (
    cancel_purchase_order,
    open_po_of_supplier,
    receive_purchase_order,
    send_purchase_order,
    set_expected_date,
    set_po_line_quantity,
)
from connector.services.shop_settings import engine_settings
from connector.services.stock import recompute_all_etas, set_stock_on_hand

# Events a customer or merchant would read; storefront pushes (eta_changed) stay out of the
# summary so it reads like the story of the case.
REPORTED_EVENTS = {"backordered", "preorder", "dropship", "oversold", "delayed", "allocated", "po_ready", "stock_short"}


class ScenarioError(ValidationError):
    """A malformed scenario; the message names the event and the field."""

    code = "bad_scenario"


def _where(ctx: str, fieldname: str) -> str:
    return f"{ctx}.{fieldname}" if ctx else fieldname


def _req(m: Mapping[str, Any], key: str, ctx: str) -> Any:
    if not isinstance(m, Mapping):
        raise ScenarioError(f"{ctx or 'scenario'} must be a mapping", field=ctx)
    if key not in m or m[key] is None:
        raise ScenarioError(f"{_where(ctx, key)} is required", field=_where(ctx, key))
    return m[key]


def _int(m: Mapping[str, Any], key: str, ctx: str, default: int | None = None, minimum: int = 0) -> int:
    value = m.get(key, default) if default is not None else _req(m, key, ctx)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(f"{_where(ctx, key)} must be a whole number >= {minimum}, got {value!r}",
                            field=_where(ctx, key))
    return value


def _cents(m: Mapping[str, Any], key: str, ctx: str, default: int = 0) -> int:
    value = m.get(key)
    if value is None:
        return default
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = Decimal(-1)
    if isinstance(value, bool) or amount < 0:
        raise ScenarioError(f"{_where(ctx, key)} must be an amount >= 0, got {value!r}", field=_where(ctx, key))
    return int((amount * 100).to_integral_value())


def _when(value: Any, ctx: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ScenarioError(f"{ctx} is not an ISO date-time: {value!r}", field=ctx) from exc
    else:
        raise ScenarioError(f"{ctx} must be a date-time", field=ctx)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(value: Any, ctx: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ScenarioError(f"{ctx} is not an ISO date: {value!r}", field=ctx) from exc
    raise ScenarioError(f"{ctx} must be a date", field=ctx)


@dataclass
class _Run:
    db: Database
    shop_id: int
    now: datetime


def _seed(run: _Run, spec: Mapping[str, Any]) -> None:
    settings = spec.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ScenarioError("settings must be a mapping", field="settings")
    try:
        engine_settings(settings)
    except ValidationError as exc:
        raise ScenarioError(f"settings.{exc.field}: {exc.message}", field=f"settings.{exc.field}") from exc
    with UnitOfWork(run.db) as uow:
        shop = Shop(platform="manual", domain="scenario", name="Scenario shop", created_at=run.now,
                    settings=dict(settings))
        uow.add(shop)
        uow.commit()
        run.shop_id = shop.id
    with UnitOfWork(run.db, run.shop_id) as uow:
        suppliers: dict[str, Supplier] = {}
        for i, raw in enumerate(spec.get("suppliers") or []):
            ctx = f"suppliers[{i}]"
            name = str(_req(raw, "name", ctx))
            if name in suppliers:
                raise ScenarioError(f"{ctx}.name {name!r} is listed twice", field=f"{ctx}.name")
            max_wait = raw.get("max_wait_days")
            supplier = Supplier(
                name=name,
                email=raw.get("email"),
                lead_time_days=_int(raw, "lead_time_days", ctx, default=14),
                min_order_value_cents=_cents(raw, "min_order_value", ctx),
                max_wait_days=None if max_wait is None else _int(raw, "max_wait_days", ctx),
                auto_send=bool(raw.get("auto_send", False)),
                dropship=bool(raw.get("dropship", False)),
            )
            uow.add(supplier)
            uow.session.flush()
            suppliers[name] = supplier
            for j, item in enumerate(raw.get("items") or []):
                ictx = f"{ctx}.items[{j}]"
                uow.add(SupplierItem(
                    supplier_id=supplier.id,
                    sku=str(_req(item, "sku", ictx)),
                    supplier_sku=item.get("supplier_sku"),
                    pack_size=_int(item, "pack_size", ictx, default=1, minimum=1),
                    moq=_int(item, "moq", ictx, default=0),
                    unit_cost_cents=_cents(item, "unit_cost", ictx),
                ))
        for i, raw in enumerate(spec.get("variants") or []):
            ctx = f"variants[{i}]"
            sku = str(_req(raw, "sku", ctx))
            supplier_name = raw.get("supplier")
            if supplier_name is not None and supplier_name not in suppliers:
                raise ScenarioError(f"{ctx}.supplier {supplier_name!r} is not a listed supplier",
                                    field=f"{ctx}.supplier")
            release = raw.get("release_date")
            uow.add(Variant(
                external_id=sku,
                sku=sku,
                title=str(raw.get("title", sku)),
                supplier_id=suppliers[supplier_name].id if supplier_name else None,
                backorders_allowed=bool(raw.get("backorders", True)),
                dropship=bool(raw.get("dropship", False)) or bool(
                    supplier_name and suppliers[supplier_name].dropship),
                release_date=_day(release, f"{ctx}.release_date") if release is not None else None,
                unit_value_cents=_cents(raw, "unit_value", ctx),
                safety_stock=_int(raw, "safety_stock", ctx, default=0),
                popular=bool(raw.get("popular", False)),
                free_stock=_int(raw, "on_hand", ctx, default=0),
            ))
        uow.commit()


def _known_order(run: _Run, order_id: str, ctx: str) -> None:
    with UnitOfWork(run.db, run.shop_id, readonly=True) as uow:
        if uow.find(SalesOrder, external_id=order_id) is None:
            raise ScenarioError(f"{ctx}.order {order_id!r} was never placed", field=f"{ctx}.order")


def _ev_order(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    order_id = str(_req(body, "id", ctx))
    raw_lines = _req(body, "lines", ctx)
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ScenarioError(f"{ctx}.lines must be a non-empty list", field=f"{ctx}.lines")
    lines = []
    for j, raw in enumerate(raw_lines):
        lctx = f"{ctx}.lines[{j}]"
        sku = str(_req(raw, "sku", lctx))
        lines.append(OrderLineRecord(external_id=f"{order_id}-{j + 1}", quantity=_int(raw, "qty", lctx, minimum=1),
                                     sku=sku, variant_external_id=sku))
    with UnitOfWork(run.db, run.shop_id, readonly=True) as uow:
        known = set(uow.session.scalars(select(Variant.sku)))
    for j, line in enumerate(lines):
        if line.sku not in known:
            raise ScenarioError(f"{ctx}.lines[{j}].sku {line.sku!r} is not a listed variant", field=f"{ctx}.lines[{j}].sku")
    priority = body.get("priority")
    record = OrderRecord(
        external_id=order_id,
        number=f"#{order_id}",
        state=OrderState.OPEN,
        placed_at=run.now,
        updated_at=run.now,
        lines=tuple(lines),
        customer_email=body.get("email", f"customer-{order_id}@example.com"),
        customer_name=body.get("customer", f"Customer {order_id}"),
    )
    record_order(run.db, run.shop_id, record, run.now,
                 priority=None if priority is None else _int(body, "priority", ctx, default=0))


def _ev_edit(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    """Set a line's quantity, as an order edit on the store would."""
    order_id = str(_req(body, "order", ctx))
    sku = str(_req(body, "sku", ctx))
    qty = _int(body, "qty", ctx)
    _known_order(run, order_id, ctx)
    with UnitOfWork(run.db, run.shop_id, readonly=True) as uow:
        order = uow.find(SalesOrder, external_id=order_id)
        assert order is not None
        current = [
            OrderLineRecord(external_id=ln.external_id, quantity=(qty if ln.sku == sku else ln.ordered - ln.cancelled),
                            sku=ln.sku, variant_external_id=ln.sku)
            for ln in order.lines
        ]
        if not any(ln.sku == sku for ln in order.lines):
            raise ScenarioError(f"{ctx}.sku {sku!r} is not on order {order_id}", field=f"{ctx}.sku")
        record = OrderRecord(external_id=order_id, number=f"#{order_id}", state=OrderState.OPEN,
                             placed_at=order.placed_at, updated_at=run.now, lines=tuple(current),
                             customer_email=order.customer_email, customer_name=order.customer_name)
    record_order(run.db, run.shop_id, record, run.now)


def _po_for(run: _Run, body: Mapping[str, Any], ctx: str, statuses: tuple[str, ...], sku: str | None = None) -> int:
    supplier = str(_req(body, "supplier", ctx))
    with UnitOfWork(run.db, run.shop_id, readonly=True) as uow:
        try:
            return open_po_of_supplier(uow.session, supplier, statuses, sku).id
        except ConnectorError as exc:
            raise ScenarioError(f"{ctx}: {exc.message}", field=f"{ctx}.supplier") from exc


def _ev_consolidate(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    consolidate_backorders(run.db, run.shop_id, run.now)


def _ev_send(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    send_purchase_order(run.db, run.shop_id, _po_for(run, body, ctx, ("draft", "ready")), run.now)


def _ev_expected(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    po_id = _po_for(run, body, ctx, ("draft", "ready", "sent", "confirmed", "partially_received"))
    new_date = _day(_req(body, "date", ctx), f"{ctx}.date")
    set_expected_date(run.db, run.shop_id, po_id, new_date, run.now, source=str(body.get("source", "supplier")),
                      reason=body.get("reason"))


def _ev_receive(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    raw_lines = _req(body, "lines", ctx)
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ScenarioError(f"{ctx}.lines must be a non-empty list", field=f"{ctx}.lines")
    for j, raw in enumerate(raw_lines):
        lctx = f"{ctx}.lines[{j}]"
        sku = str(_req(raw, "sku", lctx))
        qty = _int(raw, "qty", lctx, minimum=1)
        po_id = _po_for(run, body, ctx, ("sent", "confirmed", "partially_received"), sku)
        receive_purchase_order(run.db, run.shop_id, po_id, {sku: qty}, run.now)


def _ev_cancel(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    order_id = str(_req(body, "order", ctx))
    _known_order(run, order_id, ctx)
    sku = body.get("sku")
    qty = _int(body, "qty", ctx, minimum=1) if "qty" in body else None
    cancel_order_units(run.db, run.shop_id, order_id, run.now, sku=sku, qty=qty)


def _ev_cancel_po(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    po_id = _po_for(run, body, ctx, ("draft", "ready", "sent", "confirmed", "partially_received"))
    cancel_purchase_order(run.db, run.shop_id, po_id, run.now)


def _ev_po_quantity(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    sku = str(_req(body, "sku", ctx))
    po_id = _po_for(run, body, ctx, ("draft", "ready", "sent", "confirmed", "partially_received"), sku)
    with UnitOfWork(run.db, run.shop_id, readonly=True) as uow:
        pol_id = uow.session.scalar(
            select(PurchaseOrderLine.id).where(PurchaseOrderLine.purchase_order_id == po_id, PurchaseOrderLine.sku == sku)
        )
    assert pol_id is not None
    set_po_line_quantity(run.db, run.shop_id, pol_id, _int(body, "qty", ctx), run.now)


def _ev_stock(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    sku = str(_req(body, "sku", ctx))
    set_stock_on_hand(run.db, run.shop_id, sku, _int(body, "on_hand", ctx), run.now)


def _ev_recompute(run: _Run, body: Mapping[str, Any], ctx: str) -> None:
    recompute_all_etas(run.db, run.shop_id, run.now)


EVENTS: dict[str, Callable[[_Run, Mapping[str, Any], str], None]] = {
    "order": _ev_order,
    "edit": _ev_edit,
    "consolidate": _ev_consolidate,
    "send": _ev_send,
    "expected": _ev_expected,
    "receive": _ev_receive,
    "cancel": _ev_cancel,
    "cancel_po": _ev_cancel_po,
    "po_quantity": _ev_po_quantity,
    "stock": _ev_stock,
    "recompute_etas": _ev_recompute,
}


def summarize(db: Database, shop_id: int) -> dict[str, Any]:
    """The end state as plain JSON-ready data (dates ISO)."""
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        s = uow.session
        pegged_per_pol: dict[int, int] = {
            pol_id: int(units)
            for pol_id, units in s.execute(select(Peg.po_line_id, func.sum(Peg.units)).group_by(Peg.po_line_id))
        }
        orders = []
        for order in s.scalars(select(SalesOrder).order_by(SalesOrder.placed_at, SalesOrder.id)):
            orders.append({
                "id": order.external_id,
                "state": order.state,
                "lines": [
                    {
                        "sku": ln.sku,
                        "kind": ln.kind,
                        "ordered": ln.ordered,
                        "allocated": ln.allocated,
                        "backordered": ln.backordered,
                        "cancelled": ln.cancelled,
                        "pegged": ln.pegged,
                        "eta": ln.current_eta.isoformat() if ln.current_eta else None,
                        "promised_eta": ln.promised_eta.isoformat() if ln.promised_eta else None,
                    }
                    for ln in order.lines
                ],
            })
        suppliers = {sup.id: sup.name for sup in s.scalars(select(Supplier))}
        pos = []
        for po in s.scalars(select(PurchaseOrder).order_by(PurchaseOrder.created_at, PurchaseOrder.id)):
            pos.append({
                "number": po.number,
                "supplier": suppliers[po.supplier_id],
                "status": po.status,
                "expected_date": po.expected_date.isoformat(),
                "lines": [
                    {"sku": pol.sku, "ordered": pol.ordered, "received": pol.received,
                     "pegged": int(pegged_per_pol.get(pol.id, 0))}
                    for pol in po.lines
                ],
            })
        stock = {}
        for v in s.scalars(select(Variant).order_by(Variant.sku)):
            held = s.scalar(
                select(func.coalesce(func.sum(OrderLine.allocated - OrderLine.fulfilled), 0))
                .join(SalesOrder, SalesOrder.id == OrderLine.order_id)
                .where(OrderLine.variant_id == v.id, SalesOrder.state.in_(("open", "pending")))
            )
            stock[v.sku] = {"on_hand": v.free_stock + int(held or 0), "free": v.free_stock}
        events = []
        for msg in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)):
            if msg.kind not in REPORTED_EVENTS:
                continue
            if "lines" in msg.payload:
                for ln in msg.payload["lines"]:
                    entry = {"kind": msg.kind, "order": msg.payload["order"], "sku": ln.get("sku")}
                    for key in ("from", "to"):
                        if ln.get(key) is not None:
                            entry[key] = ln[key]
                    events.append(entry)
            else:
                events.append({"kind": msg.kind, **{k: v for k, v in msg.payload.items() if k != "purchase_order_id"}})
    return {"orders": orders, "purchase_orders": pos, "stock": stock, "events": events}


def run_scenario(spec: Any, database_url: str | None = None) -> dict[str, Any]:
    """Run ``spec`` (parsed YAML) on a fresh database and return the end state."""
    if not isinstance(spec, Mapping):
        raise ScenarioError("a scenario must be a mapping with start, suppliers, variants and events", field="")
    start = _when(_req(spec, "start", ""), "start")
    events = spec.get("events") or []
    if not isinstance(events, list):
        raise ScenarioError("events must be a list", field="events")
    with tempfile.TemporaryDirectory(prefix="scenario-") as tmp:
        db = Database(database_url or f"sqlite:///{Path(tmp) / 'scenario.sqlite3'}")
        try:
            migrate.upgrade(db)
            run = _Run(db, 0, start)
            _seed(run, spec)
            for i, event in enumerate(events):
                ctx = f"events[{i}]"
                if not isinstance(event, Mapping):
                    raise ScenarioError(f"{ctx} must be a mapping", field=ctx)
                at = _when(_req(event, "at", ctx), f"{ctx}.at")
                if at < run.now:
                    raise ScenarioError(f"{ctx}.at {at.isoformat()} is before the previous event", field=f"{ctx}.at")
                kinds = [k for k in event if k != "at"]
                if len(kinds) != 1 or kinds[0] not in EVENTS:
                    raise ScenarioError(
                        f"{ctx} needs exactly one of {', '.join(sorted(EVENTS))}; got {', '.join(kinds) or 'none'}",
                        field=ctx,
                    )
                kind = kinds[0]
                body = event[kind] or {}
                if not isinstance(body, Mapping):
                    raise ScenarioError(f"{ctx}.{kind} must be a mapping", field=f"{ctx}.{kind}")
                run.now = at
                try:
                    EVENTS[kind](run, body, f"{ctx}.{kind}")
                except ScenarioError:
                    raise
                except ConnectorError as exc:
                    field_name = exc.data.get("field")
                    where = f"{ctx}.{kind}" + (f".{field_name}" if field_name else "")
                    raise ScenarioError(f"{where}: {exc.message}", field=where) from exc
            return summarize(db, run.shop_id)
        finally:
            db.dispose()
