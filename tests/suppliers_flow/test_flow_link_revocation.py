"""The merchant revokes a supplier link and issues a new one; old links get a clear refusal."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime, timedelta

from flow_support import SETTINGS, later, only_po, order_record, outbox, router, seed_supplier
from itsdangerous import URLSafeSerializer
from sqlalchemy import select
from test_flow_dropship_pages import Clock, merchant_client, other_shop, post

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from connector.db.engine import Database
from connector.db.models import DropshipForward
from connector.db.uow import UnitOfWork
from connector.services import supplier_confirmation
from connector.services.consolidation import consolidate_backorders
from connector.services.dropship import dropship_check
from connector.services.orders import record_order
from connector.services.outbox import deliver_due
from connector.services.purchasing import send_purchase_order

SKUS = {"LAMP-1": ("Oak lamp", 1999), "SHADE-3": ("Linen shade", 500)}


def _emailed_path(sink: SmtpSink, kind: str, count: int = 1) -> str:
    mail = sink.wait_for(count)[-1]
    match = re.search(rf"https://connector\.test(/supplier/{kind}/\S+)", mail.get_body(("plain",)).get_content())
    assert match is not None
    return match.group(1)


def _shown_path(page: str, kind: str) -> str:
    """The supplier link the merchant's page shows (the read-only field)."""
    match = re.search(rf'value="https://connector\.test(/supplier/{kind}/[^"]+)"', page)
    assert match is not None, "no supplier link on the page"
    return html.unescape(match.group(1))


def _sent_po(db: Database, shop_id: int, now: datetime, sink: SmtpSink) -> int:
    seeded = seed_supplier(db, shop_id, skus=SKUS)
    record_order(db, shop_id, order_record(1001, {"LAMP-1": 3}, now, seeded.variants), now)
    consolidate_backorders(db, shop_id, now)
    po_id = only_po(db, shop_id).id
    send_purchase_order(db, shop_id, po_id, now)
    deliver_due(db, shop_id, router(db, SmtpMailer(sink.url)), now)
    return po_id


def test_a_revoked_po_link_is_refused_with_410_and_the_supplier_changes_nothing(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    po_id = _sent_po(db, shop_id, now, smtp_sink)
    path = _emailed_path(smtp_sink, "po")
    merchant = merchant_client(db, shop_id, Clock(later(now, hours=1)))
    supplier = merchant.application.test_client()
    assert supplier.get(path).status_code == 200
    assert _shown_path(merchant.get(f"/merchant/purchase-orders/{po_id}").text, "po") == path

    assert merchant.post(f"/merchant/supplier-links/po/{po_id}/revoke").status_code == 400  # no CSRF token
    assert supplier.get(path).status_code == 200
    revoked = post(merchant, f"/merchant/supplier-links/po/{po_id}/revoke")
    assert revoked.status_code == 302 and revoked.headers["Location"].endswith(f"/merchant/purchase-orders/{po_id}")

    page = supplier.get(path)
    assert page.status_code == 410 and "This link no longer works" in page.text and "was revoked" in page.text
    answer = supplier.post(path, data={"confirm": "1", "expected_date": (now + timedelta(days=40)).date().isoformat()})
    assert answer.status_code == 410
    assert supplier.get(path, headers={"Accept": "application/json"}).json["error"]["code"] == "link_revoked"
    po = only_po(db, shop_id)
    assert po.status == "sent" and po.confirmed_at is None and po.link_revoked_at is not None
    merchant_page = merchant.get(f"/merchant/purchase-orders/{po_id}").text
    assert "The link is revoked" in merchant_page and "/supplier/po/" not in merchant_page


def test_a_new_po_link_works_and_every_earlier_one_is_refused(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    po_id = _sent_po(db, shop_id, now, smtp_sink)
    first = _emailed_path(smtp_sink, "po")
    merchant = merchant_client(db, shop_id, Clock(later(now, days=130)))  # the first link expired at 120 days
    supplier = merchant.application.test_client()
    assert supplier.get(first).status_code == 410

    assert post(merchant, f"/merchant/supplier-links/po/{po_id}/new").status_code == 302
    second = _shown_path(merchant.get(f"/merchant/purchase-orders/{po_id}").text, "po")
    assert post(merchant, f"/merchant/supplier-links/po/{po_id}/new").status_code == 302
    third = _shown_path(merchant.get(f"/merchant/purchase-orders/{po_id}").text, "po")
    assert len({first, second, third}) == 3

    assert "expired" in supplier.get(first).text
    refused = supplier.get(second)
    assert refused.status_code == 410 and "replaced by a newer one" in refused.text
    assert supplier.get(third).status_code == 200  # valid for 120 days from when it was issued
    assert supplier.post(third, data={"confirm": "1"}).status_code == 303
    assert only_po(db, shop_id).status == "confirmed"

    # A document sent from now on carries the current link.
    po_data = supplier_confirmation.purchase_order_data(db, shop_id, po_id)
    assert supplier_confirmation.po_url(SETTINGS.app_url, SETTINGS.secret_key, po_data).endswith(third)


def test_a_forward_link_is_revoked_and_reissued_from_the_forward_page(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS, dropship=True)
    record_order(db, shop_id, order_record(5001, {"LAMP-1": 1}, now, seeded.variants), now)
    dropship_check(db, shop_id, now)
    deliver_due(db, shop_id, router(db, SmtpMailer(smtp_sink.url)), now)
    emailed = _emailed_path(smtp_sink, "forward")
    with UnitOfWork(db, shop_id, readonly=True) as uow:
        [fw] = uow.all(select(DropshipForward))
        forward_id = fw.id
    merchant = merchant_client(db, shop_id, Clock(later(now, days=1)))
    supplier = merchant.application.test_client()

    assert post(merchant, f"/merchant/supplier-links/forward/{forward_id}/revoke").status_code == 302
    page = merchant.get(f"/merchant/dropship/forwards/{forward_id}").text
    assert "The link is revoked" in page
    refused = supplier.post(emailed + "/tracking", data={"tracking_number": "1Z1"})
    assert refused.status_code == 410
    assert outbox(db, shop_id, "fulfil_dropship") == []

    assert post(merchant, f"/merchant/supplier-links/forward/{forward_id}/new").status_code == 302
    fresh = _shown_path(merchant.get(f"/merchant/dropship/forwards/{forward_id}").text, "forward")
    assert supplier.get(emailed).status_code == 410
    assert supplier.post(fresh + "/tracking", data={"tracking_number": "1Z2"}).status_code == 303
    [fulfil] = outbox(db, shop_id, "fulfil_dropship")
    assert fulfil.payload["tracking"]["number"] == "1Z2"


def test_links_sent_before_generations_existed_keep_working_and_carry_no_generation(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    _sent_po(db, shop_id, now, smtp_sink)
    path = _emailed_path(smtp_sink, "po")
    token = path.rsplit("/", 1)[1]
    data = URLSafeSerializer(SETTINGS.secret_key, salt="supplier-portal-link.v1",
                             signer_kwargs={"digest_method": hashlib.sha256}).loads(token)
    assert set(data) == {"s", "k", "i", "n", "e"}  # byte-identical to the links of before
    link = supplier_confirmation.read_token(SETTINGS.secret_key, token, now, "po")
    assert link.generation == 1


def test_another_shops_po_link_cannot_be_revoked_or_reissued(
    db: Database, shop_id: int, now: datetime, smtp_sink: SmtpSink
) -> None:
    other = other_shop(db, now)
    po_id = _sent_po(db, other, now, smtp_sink)
    path = _emailed_path(smtp_sink, "po")
    merchant = merchant_client(db, shop_id, Clock(now))

    assert post(merchant, f"/merchant/supplier-links/po/{po_id}/revoke").status_code == 404
    assert post(merchant, f"/merchant/supplier-links/po/{po_id}/new").status_code == 404
    assert post(merchant, f"/merchant/supplier-links/invoice/{po_id}/new").status_code == 404
    assert merchant.application.test_client().get(path).status_code == 200
    assert only_po(db, other).link_generation == 1


def test_a_draft_po_has_no_link_to_revoke(db: Database, shop_id: int, now: datetime) -> None:
    seeded = seed_supplier(db, shop_id, skus=SKUS)
    record_order(db, shop_id, order_record(1001, {"LAMP-1": 3}, now, seeded.variants), now)
    consolidate_backorders(db, shop_id, now)
    po_id = only_po(db, shop_id).id
    merchant = merchant_client(db, shop_id, Clock(now))

    assert 'id="supplier-link"' not in merchant.get(f"/merchant/purchase-orders/{po_id}").text
    refused = post(merchant, f"/merchant/supplier-links/po/{po_id}/new")
    assert refused.status_code == 400 and "was not sent" in refused.text
    assert only_po(db, shop_id).link_generation == 1
