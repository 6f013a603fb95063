"""The purchase order as a PDF (reportlab platypus, A4, built-in Helvetica).

Helvetica covers Latin-1 only: characters outside it print as boxes. Good enough for SKUs,
quantities and Western names; a Unicode TTF font would be the fix if suppliers need it.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from adapters.suppliers.formatting import address_lines, money
from adapters.suppliers.model import PurchaseOrderDoc


def render_purchase_order_pdf(doc: PurchaseOrderDoc) -> bytes:
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=8.5, leading=10.5)
    cell = ParagraphStyle("cell", parent=small, wordWrap="CJK")  # CJK wrap also breaks long SKUs

    def para(text: str, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(escape(text), style)

    def block(title: str, lines: list[str]) -> Paragraph:
        body = "<br/>".join(escape(s) for s in lines) or "-"
        return Paragraph(f"<b>{escape(title)}</b><br/>{body}", small)

    supplier_lines = (
        [doc.supplier_name]
        + [s for s in address_lines(doc.supplier_address) if s != doc.supplier_name]
        + ([doc.supplier_email] if doc.supplier_email else [])
    )

    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Purchase order {doc.number}",
        author=doc.buyer_name or "backorder-connector",
        subject=f"Purchase order {doc.number} for {doc.supplier_name}",
        invariant=1,  # no timestamps or random ids: the same PO gives the same bytes
    )
    story: list = [
        Paragraph(f"Purchase order {escape(doc.number)}", styles["Title"]),
        Table(
            [
                [
                    block("Date", [doc.created.isoformat()]),
                    block(
                        "Requested delivery",
                        [doc.requested.isoformat() if doc.requested else "As soon as possible"],
                    ),
                    block("Currency", [doc.currency]),
                ],
                [
                    block("Supplier", supplier_lines),
                    block("Ship to", address_lines(doc.ship_to)),
                    block("Buyer", [doc.buyer_name] if doc.buyer_name else []),
                ],
            ],
            colWidths=[60 * mm, 60 * mm, 60 * mm],
            style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]),
        ),
        Spacer(1, 6 * mm),
    ]

    header = [
        "#",
        "Supplier SKU",
        "Our SKU",
        "Item",
        "Qty",
        f"Unit cost\n{doc.currency}",
        f"Line total\n{doc.currency}",
    ]
    rows: list[list] = [header]
    for n, line in enumerate(doc.lines, start=1):
        rows.append(
            [
                str(n),
                para(line.supplier_sku, cell),
                para(line.sku, cell),
                para(line.title, cell),
                str(line.quantity),
                money(line.unit_cost_cents),
                money(line.total_cents),
            ]
        )
    rows.append(["", "", "", "Total", str(doc.total_units), "", money(doc.total_cents)])
    table = Table(
        rows,
        colWidths=[8 * mm, 30 * mm, 28 * mm, 56 * mm, 14 * mm, 20 * mm, 24 * mm],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
                ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.black),
                ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f6f6f6")]),
            ]
        )
    )
    story.append(table)
    if doc.notes:
        story += [Spacer(1, 5 * mm), block("Notes", doc.notes.splitlines())]
    story += [
        Spacer(1, 5 * mm),
        para(
            "Please confirm this order and your expected delivery date"
            + (f" (requested: {doc.requested.isoformat()})." if doc.requested else ".")
        ),
    ]

    def footer(canvas: Canvas, _doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(15 * mm, 10 * mm, f"Purchase order {doc.number}")
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Page {canvas.getPageNumber()}")
        canvas.restoreState()

    pdf.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
