"""The dispatcher's kind -> handler table: supplier handlers merged in, unknown kinds dead."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest
from comms_support import SETTINGS, T0, Clock, deliver, messages, place_order, seed_catalogue

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from bootstrap.dispatch import build_dispatcher_factory
from connector.db.engine import Database
from connector.db.models import OutboxMessage
from connector.db.uow import UnitOfWork
from connector.ports import OutboxEnvelope


@pytest.fixture
def supplier_module() -> Iterator[list[OutboxEnvelope]]:
    """A stand-in for bootstrap.dispatch_suppliers (another engineer's module) under another name."""
    delivered: list[OutboxEnvelope] = []
    module = types.ModuleType("comms_test_supplier_handlers")

    def handlers(db: object, settings: object, mailer: object) -> dict[str, object]:
        return {"purchase_order": delivered.append}

    module.handlers = handlers  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    yield delivered
    del sys.modules[module.__name__]


def _add(db: Database, shop_id: int, kind: str) -> None:
    with UnitOfWork(db, shop_id) as uow:
        uow.add(OutboxMessage(kind=kind, target="supplier", subject="PO-1", payload={"purchase_order_id": 1},
                              idempotency_key=f"{kind}:1", next_attempt_at=T0, created_at=T0))
        uow.commit()


def test_supplier_handlers_are_merged_into_the_table(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock, supplier_module: list[OutboxEnvelope]
) -> None:
    seed_catalogue(db, shop_id)
    _add(db, shop_id, "purchase_order")
    factory = build_dispatcher_factory(db, SETTINGS, lambda _: None, SmtpMailer(smtp_sink.url), clock=clock,
                                       supplier_module="comms_test_supplier_handlers")
    deliver(db, shop_id, factory(shop_id), T0)
    assert [m.kind for m in supplier_module] == ["purchase_order"]


def test_without_the_supplier_module_and_for_unknown_kinds_messages_go_to_the_dead_letters(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    _add(db, shop_id, "purchase_order")
    _add(db, shop_id, "carrier_pigeon")
    factory = build_dispatcher_factory(db, SETTINGS, lambda _: None, SmtpMailer(smtp_sink.url), clock=clock,
                                       supplier_module="no_such_module_for_comms_tests")
    report = deliver(db, shop_id, factory(shop_id), T0)
    assert report.dead == 2 and report.sent == 2
    dead = {m.kind: m.last_error for m in messages(db, shop_id) if m.state == "dead"}
    assert dead == {
        "purchase_order": "delivery: no handler for outbox kind 'purchase_order'",
        "carrier_pigeon": "delivery: no handler for outbox kind 'carrier_pigeon'",
    }
    assert len(smtp_sink.messages) == 1  # the customer's confirmation still went out
