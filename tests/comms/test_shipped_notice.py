"""The "shipped" notice: one per order per shipment, covering its lines, with the tracking."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest
from comms_support import (
    SUPPLIER_EMAIL,
    T0,
    Clock,
    customer_mails,
    days,
    deliver,
    mail_dispatcher,
    make_pending_again,
    messages,
    place_order,
    seed_catalogue,
    sync_store,
    text_of,
)
from sqlalchemy import update

from adapters.mail.sink import SmtpSink
from adapters.woocommerce.storefront import WooStorefront
from connector.db.engine import Database
from connector.db.models import Supplier, Variant
from connector.db.uow import UnitOfWork
from connector.domain.records import OrderLineRecord, OrderRecord, OrderState
from connector.messages import LANGUAGES, MessageLine, render, sample_context
from connector.services.dropship import Tracking, dropship_check, record_tracking
from connector.services.orders import record_order
from sandbox.woocommerce import SandboxWoo


def _dropship_catalogue(db: Database, shop_id: int) -> None:
    seed_catalogue(db, shop_id, language="fr")
    with UnitOfWork(db, shop_id) as uow:
        uow.session.execute(update(Supplier).values(dropship=True))
        uow.session.execute(update(Variant).values(dropship=True))
        uow.commit()


def _shipped_mails(smtp_sink: SmtpSink) -> list[EmailMessage]:
    return [m for m in customer_mails(smtp_sink) if "expédi" in str(m["Subject"]) or "shipped" in str(m["Subject"])]


def test_dropship_tracking_sends_one_shipped_notice_per_order_with_the_tracking(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    _dropship_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 2, "SHADE-9": 1})
    assert dropship_check(db, shop_id, T0 + days(1)).forwards == ["F-00001"]
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, clock)
    deliver(db, shop_id, dispatcher, T0 + days(1))
    before = len(customer_mails(smtp_sink))

    record_tracking(db, shop_id, "F-00001", Tracking("1Z999AA1", "UPS", "https://carrier.example/t/1Z999AA1"),
                    T0 + days(3))
    deliver(db, shop_id, dispatcher, T0 + days(3))
    deliver(db, shop_id, dispatcher, T0 + days(3))

    (shipped,) = messages(db, shop_id, "shipped")
    assert shipped.target == "customer" and shipped.state == "sent"
    assert [(ln["line"], ln["units"]) for ln in shipped.payload["lines"]] == [("1001-LAMP-1", 2), ("1001-SHADE-9", 1)]
    mails = customer_mails(smtp_sink)[before:]
    (mail,) = mails
    assert str(mail["Subject"]) == "Vos articles ont été expédiés (#1001)"
    text = text_of(mail)
    assert "2 x Oak table lamp" in text and "1 x Linen shade" in text
    assert "Suivi (UPS) : 1Z999AA1" in text and "https://carrier.example/t/1Z999AA1" in text
    html = mail.get_body(("html",))
    assert html is not None and 'href="https://carrier.example/t/1Z999AA1"' in str(html.get_content())

    # The store fulfilment is delivered again after a crash: the customer is not told twice.
    (fulfil,) = messages(db, shop_id, "fulfil_dropship")
    make_pending_again(db, shop_id, fulfil.id)
    deliver(db, shop_id, dispatcher, T0 + days(4))
    assert len(messages(db, shop_id, "shipped")) == 1
    assert len(customer_mails(smtp_sink)) == before + 1


def test_a_store_reported_shipment_is_told_even_though_the_order_is_closed_for_waiting(
    db: Database, shop_id: int, smtp_sink: SmtpSink, clock: Clock
) -> None:
    seed_catalogue(db, shop_id)
    place_order(db, shop_id, 1001, {"LAMP-1": 1})
    shipped_at = T0 + days(2)
    record_order(db, shop_id, OrderRecord(
        external_id="1001", number="#1001", state=OrderState.FULFILLED, placed_at=T0, updated_at=shipped_at,
        lines=(OrderLineRecord(external_id="1001-LAMP-1", quantity=1, sku="LAMP-1", variant_external_id="v-LAMP-1",
                               title="Oak table lamp", fulfilled_quantity=1),),
        customer_email="camille@example.com", customer_name="Camille Martin",
    ), shipped_at)
    # The order sync raised "shipped" for the lines the store fulfilled (no tracking known);
    # the same delivery again raises nothing more.
    record_order(db, shop_id, OrderRecord(
        external_id="1001", number="#1001", state=OrderState.FULFILLED, placed_at=T0, updated_at=shipped_at,
        lines=(OrderLineRecord(external_id="1001-LAMP-1", quantity=1, sku="LAMP-1", variant_external_id="v-LAMP-1",
                               title="Oak table lamp", fulfilled_quantity=1),),
        customer_email="camille@example.com", customer_name="Camille Martin",
    ), shipped_at)
    assert len(messages(db, shop_id, "shipped")) == 1

    deliver(db, shop_id, mail_dispatcher(db, shop_id, smtp_sink.url, clock), shipped_at)
    (mail,) = _shipped_mails(smtp_sink)
    assert str(mail["Subject"]) == "Your backordered item has shipped (#1001)"
    text = text_of(mail)
    assert "1 x Oak table lamp" in text and "Tracking" not in text
    assert messages(db, shop_id, "shipped")[0].state == "sent"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["shipped_notice", "cancellation_notice"])
def test_the_new_notices_render_in_both_languages_with_names_escaped(kind: str, language: str) -> None:
    sample = sample_context(kind, language)
    hostile = MessageLine("Lamp <script>alert(1)</script> {{ 7*7 }}", "LAMP-1", 1)
    ctx = replace(sample, lines=(hostile,), customer_name="<b>Eve</b> {{ shop }}",
                  tracking_url="https://carrier.example/t?a=1&b=<2>")
    rendered = render(ctx)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "{{ 7*7 }}" in rendered.text and "49" not in rendered.text  # data is never evaluated as a template
    assert "<b>Eve</b>" not in rendered.html
    parser = HTMLParser()
    parser.feed(rendered.html)
    parser.close()
    assert rendered.subject and "\n" not in rendered.subject.strip()
    if kind == "shipped_notice":
        assert 'href="https://carrier.example/t?a=1&amp;b=&lt;2&gt;"' in rendered.html


def test_a_woocommerce_dropship_order_is_completed_and_the_customer_told_once(
    db: Database, shop_id: int, woo_sandbox: SandboxWoo, woo_storefront: WooStorefront, smtp_sink: SmtpSink,
) -> None:
    now = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    lamp = woo_sandbox.create_product("Oak table lamp", sku="LAMP-1", price="40.00", stock_quantity=0,
                                      backorders="notify")
    sync_store(db, shop_id, woo_storefront, now)  # the catalogue; the supplier ships it to the customer
    with UnitOfWork(db, shop_id) as uow:
        supplier = uow.add(Supplier(name="Atelier", email=SUPPLIER_EMAIL, lead_time_days=5, dropship=True))
        uow.session.flush()
        uow.session.execute(update(Variant).values(dropship=True, supplier_id=supplier.id))
        uow.commit()
    order = woo_sandbox.create_order([(lamp["id"], 2)], email="camille@example.com")
    for record in woo_storefront.fetch_orders_since(None):
        record_order(db, shop_id, record, now)
    assert dropship_check(db, shop_id, now).forwards == ["F-00001"]
    dispatcher = mail_dispatcher(db, shop_id, smtp_sink.url, Clock(now), lambda _: woo_storefront)
    deliver(db, shop_id, dispatcher, now)
    before = len(customer_mails(smtp_sink))

    record_tracking(db, shop_id, "F-00001", Tracking("1Z999AA1", "UPS", None), now + days(2))
    deliver(db, shop_id, dispatcher, now + days(2))
    deliver(db, shop_id, dispatcher, now + days(2))

    assert woo_sandbox.order(order["id"])["status"] == "completed"
    notes = [n for n in woo_sandbox.order_notes(order["id"]) if n["note"].startswith("Shipped:")]
    assert [(n["note"], n["customer_note"]) for n in notes] == [("Shipped: UPS 1Z999AA1", False)]
    (mail,) = customer_mails(smtp_sink)[before:]
    assert "has shipped" in str(mail["Subject"]) and "Tracking (UPS): 1Z999AA1" in text_of(mail)
    assert [e["kind"] for e in woo_sandbox.emails if e["kind"] == "customer_note"] == []


def test_an_order_that_never_waited_gets_no_shipped_notice_from_us(db: Database, shop_id: int) -> None:
    seed_catalogue(db, shop_id)
    with UnitOfWork(db, shop_id) as uow:
        variant = uow.find(Variant, sku="LAMP-1")
        assert variant is not None
        variant.free_stock = 5  # covered from stock: the store's own e-mail is enough
        uow.commit()
    place_order(db, shop_id, 1002, {"LAMP-1": 1})
    record_order(db, shop_id, OrderRecord(
        external_id="1002", number="#1002", state=OrderState.FULFILLED, placed_at=T0, updated_at=T0 + days(1),
        lines=(OrderLineRecord(external_id="1002-LAMP-1", quantity=1, sku="LAMP-1", variant_external_id="v-LAMP-1",
                               title="Oak table lamp", fulfilled_quantity=1),),
        customer_email="camille@example.com", customer_name="Camille Martin",
    ), T0 + days(1))
    assert messages(db, shop_id, "shipped") == []
