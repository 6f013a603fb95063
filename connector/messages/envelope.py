"""Wrap a rendered customer e-mail in an :class:`EmailMessage` ready for the mailer."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr

from connector.errors import ValidationError
from connector.messages.model import MessageContext, RenderedEmail


def customer_email(
    ctx: MessageContext,
    rendered: RenderedEmail,
    *,
    from_addr: str | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """Text and HTML alternatives, From the shop (or *from_addr*), Reply-To the shop's address.

    The customer's display name goes through :class:`email.headerregistry.Address`, so a name
    with commas, quotes or non-ASCII letters cannot add recipients or break the header.
    """
    sender = from_addr or ctx.shop.from_addr
    if not sender:
        raise ValidationError(f"shop {ctx.shop.name} has no From address", field="from_addr")
    _, addr = parseaddr(ctx.customer_email)
    if "@" not in addr:
        raise ValidationError(f"not an e-mail address: {ctx.customer_email!r}", field="customer_email")
    username, _, domain = addr.rpartition("@")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = Address(display_name=ctx.customer_name or "", username=username, domain=domain)
    if ctx.shop.reply_to:
        msg["Reply-To"] = ctx.shop.reply_to
    msg["Subject"] = rendered.subject
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
