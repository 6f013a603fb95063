import csv
import io
from html.parser import HTMLParser

import pypdf
import pytest
from supplier_doc_samples import make_forward, make_po

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer, message_id_for
from adapters.suppliers.documents import (
    DROPSHIP_CSV_COLUMNS,
    PO_CSV_COLUMNS,
    dropship_csv,
    dropship_email,
    dropship_json,
    parse_po_csv,
    po_csv,
    po_email,
    po_json,
    po_pdf,
)
from connector.errors import DeliveryError

CONFIRM_URL = "https://connector.test/po/confirm?token=abc&po=PO-2026-0042"


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_po_csv_parses_back_to_exactly_the_po_lines() -> None:
    po = make_po(7)
    text = po_csv(po)
    assert next(csv.reader(io.StringIO(text))) == list(PO_CSV_COLUMNS)
    assert parse_po_csv(text) == po.lines


def test_po_csv_defuses_spreadsheet_formulas() -> None:
    rows = list(csv.DictReader(io.StringIO(po_csv(make_po(3)))))
    formula_row = rows[1]
    assert formula_row["title"].startswith("'=HYPERLINK")
    assert rows[0]["line_total"] == "119.94" and rows[0]["unit_cost"] == "19.99"


def test_po_json_carries_totals_in_cents_and_iso_dates() -> None:
    po = make_po(2)
    data = po_json(po)
    assert data["number"] == "PO-2026-0042"
    assert data["requested_date"] == "2026-12-18"
    assert [line["supplier_sku"] for line in data["lines"]] == ["AN-1000", "AN-1001"]
    assert data["total_cents"] == po.total_cents == 6 * 1999 + 12 * 2249
    assert data["ship_to"]["city"] == "Lyon"


def test_po_pdf_opens_and_names_the_po_and_every_sku() -> None:
    po = make_po(4)
    pages, text = pdf_text(po_pdf(po))
    assert pages == 1
    assert po.number in text
    for line in po.lines:
        assert line.supplier_sku in text and line.sku in text
    assert "2026-12-18" in text
    assert "Atelier Nord" in text and "Lyon" in text
    assert f"{po.total_cents // 100}.{po.total_cents % 100:02d}" in text


def test_a_long_po_spans_several_pages_with_every_line() -> None:
    po = make_po(150)
    pages, text = pdf_text(po_pdf(po))
    assert pages > 1
    assert all(line.supplier_sku in text for line in po.lines)
    assert f"Page {pages}" in text


def test_po_pdf_is_the_same_bytes_every_time() -> None:
    assert po_pdf(make_po(3)) == po_pdf(make_po(3))


def test_po_email_arrives_with_csv_and_pdf_that_match_the_po(smtp_sink: SmtpSink) -> None:
    po = make_po(5)
    msg = po_email(po, "Bois & Lumière <orders@bois.test>", "buyer@bois.test", CONFIRM_URL)
    SmtpMailer(smtp_sink.url).send(msg, message_id="<po-42@bois.test>")

    [received] = smtp_sink.wait_for(1)
    assert received["To"] == "orders@atelier-nord.test"
    assert received["Reply-To"] == "buyer@bois.test"
    assert "PO-2026-0042" in received["Subject"]

    text_body = received.get_body(("plain",)).get_content()
    html_body = received.get_body(("html",)).get_content()
    assert CONFIRM_URL in text_body
    assert 'href="https://connector.test/po/confirm?token=abc&amp;po=PO-2026-0042"' in html_body
    assert "Lampe à poser &lt;b&gt;" in html_body

    attachments = {part.get_filename(): part for part in received.iter_attachments()}
    assert set(attachments) == {"PO-2026-0042.csv", "PO-2026-0042.pdf"}
    csv_text = attachments["PO-2026-0042.csv"].get_content()
    assert parse_po_csv(csv_text) == po.lines
    pages, pdf_content = pdf_text(attachments["PO-2026-0042.pdf"].get_content())
    assert pages >= 1
    assert po.number in pdf_content
    assert all(line.sku in pdf_content and line.supplier_sku in pdf_content for line in po.lines)


def test_po_email_html_is_well_formed() -> None:
    html_body = po_email(make_po(3), "a@b.test", None, CONFIRM_URL).get_body(("html",)).get_content()
    checker = _TagBalance()
    checker.feed(html_body)
    checker.close()
    assert checker.stack == []


def test_dropship_csv_has_one_row_per_line_with_the_ship_to_spelled_out() -> None:
    forward = make_forward()
    rows = list(csv.DictReader(io.StringIO(dropship_csv(forward))))
    assert list(rows[0]) == list(DROPSHIP_CSV_COLUMNS)
    assert [(r["order_number"], r["sku"], r["quantity"]) for r in rows] == [
        ("#1001", "LAMP-001", "1"),
        ("#1001", "LAMP-002", "2"),
        ("#1002", "LAMP-001", "1"),
    ]
    gift = rows[2]
    assert (gift["customer_name"], gift["ship_to_name"], gift["company"]) == (
        "Zoé Ruiz",
        "Tom Ruiz",
        "Ruiz, Inc.",
    )
    assert (gift["city"], gift["province"], gift["zip"], gift["email"]) == (
        "Austin",
        "TX",
        "73301",
        "zoe@example.com",
    )


def test_dropship_json_groups_lines_by_customer_order() -> None:
    data = dropship_json(make_forward())
    assert [o["order_number"] for o in data["orders"]] == ["#1001", "#1002"]
    assert [line["sku"] for line in data["orders"][0]["lines"]] == ["LAMP-001", "LAMP-002"]
    assert data["total_units"] == 4


def test_dropship_email_arrives_with_the_csv(smtp_sink: SmtpSink) -> None:
    forward = make_forward()
    SmtpMailer(smtp_sink.url).send(dropship_email(forward, "orders@bois.test", None))
    [received] = smtp_sink.wait_for(1)
    [attachment] = list(received.iter_attachments())
    assert attachment.get_filename() == "dropship-DS-0007.csv"
    assert attachment.get_content() == "\ufeff" + dropship_csv(forward)  # BOM: Excel then reads UTF-8
    body = received.get_body(("plain",)).get_content()
    assert "Order #1001" in body and "Boston" in body and "Tom Ruiz" in body


class _TagBalance(HTMLParser):
    VOID = {"br", "meta", "img", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> with open {self.stack}"
        self.stack.pop()


def test_gateway_emails_the_po_with_a_message_id_stable_across_retries(smtp_sink: SmtpSink) -> None:
    from adapters.suppliers.gateway import SupplierChannel, SupplierDelivery

    delivery = SupplierDelivery(SmtpMailer(smtp_sink.url), "Bois <orders@bois.test>")
    smtp_sink.refuse_next(1)
    with pytest.raises(DeliveryError) as caught:
        delivery.send_purchase_order(
            make_po(2), SupplierChannel("email"), idempotency_key="po-42", confirm_url=CONFIRM_URL
        )
    assert caught.value.retryable and smtp_sink.messages == []

    first = delivery.send_purchase_order(
        make_po(2), SupplierChannel("email"), idempotency_key="po-42", confirm_url=CONFIRM_URL
    )
    [received] = smtp_sink.wait_for(1)
    assert received["Message-ID"] == first == message_id_for("po-42", "bois.test")
