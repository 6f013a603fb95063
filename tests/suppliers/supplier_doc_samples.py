"""Realistic supplier documents shared by the supplier tests."""

from datetime import date

from adapters.suppliers.model import (
    DropshipForwardDoc,
    DropshipLineDoc,
    PurchaseOrderDoc,
    PurchaseOrderLineDoc,
)
from connector.domain.records import Address

WAREHOUSE = Address(
    name="Bois & Lumière",
    address1="12 rue des Tanneurs",
    city="Lyon",
    zip="69002",
    country_code="FR",
    phone="+33 4 00 00 00 00",
)
SUPPLIER_ADDRESS = Address(
    name="Atelier Nord", address1="3 Industriestraße", city="Köln", zip="50667", country_code="DE"
)


def make_po(line_count: int = 3, number: str = "PO-2026-0042") -> PurchaseOrderDoc:
    tricky_titles = ['Oak lamp, "large"', '=HYPERLINK("http://evil")', "Lampe à poser <b>"]
    lines = tuple(
        PurchaseOrderLineDoc(
            supplier_sku=f"AN-{1000 + i}",
            sku=f"LAMP-{i:03d}",
            title=tricky_titles[i % len(tricky_titles)] + f" #{i}",
            quantity=6 * (i + 1),
            unit_cost_cents=1999 + 250 * i,
        )
        for i in range(line_count)
    )
    return PurchaseOrderDoc(
        number=number,
        created=date(2026, 11, 27),
        requested=date(2026, 12, 18),
        currency="EUR",
        supplier_name="Atelier Nord",
        supplier_email="orders@atelier-nord.test",
        supplier_address=SUPPLIER_ADDRESS,
        ship_to=WAREHOUSE,
        lines=lines,
        buyer_name="Bois & Lumière",
        notes="Deliver on weekdays, 8:00-16:00.",
    )


def make_forward() -> DropshipForwardDoc:
    ana = Address(
        name="Ana Lima",
        address1="5 Elm St",
        address2="Apt 2",
        city="Boston",
        province="MA",
        zip="02110",
        country_code="US",
        phone="+1 617 555 0100",
    )
    gift = Address(
        name="Tom Ruiz",
        company="Ruiz, Inc.",
        address1="9 Pine Rd",
        city="Austin",
        province="TX",
        zip="73301",
        country_code="US",
    )
    return DropshipForwardDoc(
        number="DS-0007",
        created=date(2026, 11, 27),
        supplier_name="Atelier Nord",
        supplier_email="dropship@atelier-nord.test",
        lines=(
            DropshipLineDoc("#1001", "Ana Lima", ana, "LAMP-001", "AN-1001", 1, title="Oak lamp"),
            DropshipLineDoc("#1001", "Ana Lima", ana, "LAMP-002", "AN-1002", 2, title="Shade"),
            DropshipLineDoc(
                "#1002",
                "Zoé Ruiz",
                gift,
                "LAMP-001",
                "AN-1001",
                1,
                title="Oak lamp",
                customer_email="zoe@example.com",
            ),
        ),
        buyer_name="Bois & Lumière",
    )
