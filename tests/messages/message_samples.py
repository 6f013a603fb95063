"""A realistic backordered order for the message tests."""

from dataclasses import replace
from datetime import date

from connector.messages import MessageContext, MessageLine, ShopBranding

SHOP_EN = ShopBranding(
    name="Bois & Lumière",
    logo_url="https://cdn.shop.test/logo.png?v=2&w=200",
    reply_to="hello@bois.test",
    language="en",
    from_addr="Bois & Lumière <hello@bois.test>",
)


def order_context(kind: str, language: str = "en", **changes: object) -> MessageContext:
    lines = (
        MessageLine(
            "Oak table lamp",
            "LAMP-001",
            1,
            eta=date(2027, 3, 12),
            previous_eta=date(2027, 2, 26),
            release_date=date(2027, 3, 1),
        ),
        MessageLine(
            "Linen shade, natural",
            "SHADE-9",
            2,
            eta=date(2027, 4, 2),
            previous_eta=date(2027, 3, 5),
            release_date=date(2027, 3, 1),
        ),
    )
    ctx = MessageContext(
        kind=kind,
        shop=replace(SHOP_EN, language=language),
        order_number="#1042",
        customer_name="Camille Martin",
        customer_email="camille@example.com",
        lines=lines,
        reason="The workshop closed for a week after a flood."
        if kind in ("delay_notice", "thirty_day_notice")
        else None,
        cancel_url="https://bois.test/apps/backorders/cancel?order=1042&sig=abc",
        keep_url="https://bois.test/apps/backorders/keep?order=1042&sig=def",
        respond_by=date(2027, 3, 26),
        order_url="https://bois.test/account/orders/1042",
        tracking_number="1Z999AA10123456784",
        tracking_url="https://carrier.test/track?n=1Z999AA10123456784",
        carrier="UPS",
    )
    return replace(ctx, **changes)  # type: ignore[arg-type]
