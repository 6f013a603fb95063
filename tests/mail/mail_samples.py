"""Messages shared by the mail tests."""

from email.message import EmailMessage


def make_message(to: str = "ana@example.com", subject: str = "Your order #1001") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Hello Ana, your order is on its way.")
    return msg
