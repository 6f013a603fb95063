"""Send e-mail over SMTP, turning every failure into a :class:`DeliveryError`.

The outbox decides between retry and dead letter from ``DeliveryError.retryable``, so the
classification here matters: anything the server may accept later (connection trouble,
4xx replies) is retryable, a 5xx refusal is not. Recipients are checked one by one *before*
DATA, and the transaction is reset if any is refused, so a message never reaches part of
its recipients and then gets retried to all of them.
"""

from __future__ import annotations

import copy
import hashlib
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from connector.errors import ConfigError, DeliveryError

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    use_ssl: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpSettings:
    """Read ``smtp://[user:pass@]host[:port][?starttls=1]`` or ``smtps://...``.

    User and password are percent-decoded, so a password containing ``@`` or ``:`` is written
    ``%40`` / ``%3A``. Default ports: 465 for smtps, 587 with STARTTLS, 25 otherwise.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ConfigError(f"SMTP_URL must start with smtp:// or smtps://, got {parts.scheme or url!r}")
    if not parts.hostname:
        raise ConfigError("SMTP_URL has no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    use_ssl = parts.scheme == "smtps"
    starttls = query.get("starttls", "").lower() in _TRUE
    if use_ssl and starttls:
        raise ConfigError("SMTP_URL: smtps:// is already TLS; drop ?starttls=1")
    try:
        port = parts.port or (465 if use_ssl else 587 if starttls else 25)
    except ValueError as exc:
        raise ConfigError(f"SMTP_URL has a bad port: {exc}") from None
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        use_ssl=use_ssl,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def message_id_for(idempotency_key: str, domain: str) -> str:
    """A Message-ID that is the same every time the same outbox message is (re)sent."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


class SmtpMailer:
    """Deliver :class:`EmailMessage` objects through one SMTP server (one connection per send)."""

    def __init__(self, url: str, timeout: float = 10, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = parse_smtp_url(url)
        self.timeout = timeout
        self._ssl_context = ssl_context

    def send(self, msg: EmailMessage, message_id: str | None = None) -> str:
        """Send *msg* and return its Message-ID.

        Pass ``message_id`` (see :func:`message_id_for`) so a retried send carries the same id
        and receiving systems can recognise the duplicate. Envelope recipients come from
        To, Cc and Bcc; Bcc is stripped from what is transmitted.
        """
        if message_id:
            del msg["Message-ID"]
            msg["Message-ID"] = message_id
        elif not msg["Message-ID"]:
            msg["Message-ID"] = make_msgid(domain=_domain_of(msg["From"]) or None)
        sender = parseaddr(str(msg["Sender"] or msg["From"] or ""))[1]
        if not sender:
            raise DeliveryError("message has no From address", retryable=False)
        recipients = [
            addr
            for _, addr in getaddresses([str(v) for h in ("To", "Cc", "Bcc") for v in msg.get_all(h, [])])
            if addr
        ]
        if not recipients:
            raise DeliveryError("message has no recipients", retryable=False)
        wire = _without_bcc(msg).as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        self._transmit(sender, recipients, wire)
        return str(msg["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.use_ssl:
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self._tls())
        return smtplib.SMTP(s.host, s.port, timeout=self.timeout)

    def _tls(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _transmit(self, sender: str, recipients: list[str], wire: bytes) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            conn = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise _classify(exc, where) from exc
        try:
            conn.ehlo_or_helo_if_needed()
            if s.starttls:
                conn.starttls(context=self._tls())
                conn.ehlo()
            if s.username:
                conn.login(s.username, s.password or "")
            options = ["SMTPUTF8"] if not wire.isascii() and conn.has_extn("smtputf8") else []
            code, reply = conn.mail(sender, options)
            if code != 250:
                raise _reply_error(code, reply, f"MAIL FROM refused by {where}")
            for rcpt in recipients:
                code, reply = conn.rcpt(rcpt)
                if code not in (250, 251):
                    conn.rset()
                    raise _reply_error(code, reply, f"recipient {rcpt} refused by {where}", recipient=rcpt)
            code, reply = conn.data(wire)
            if code != 250:
                raise _reply_error(code, reply, f"message refused by {where}")
        except DeliveryError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise _classify(exc, where) from exc
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()


def _reply_error(code: int, reply: bytes | str, message: str, **data: object) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    # 4xx means "not now"; anything else unexpected (5xx, or a nonsense code) will not improve.
    return DeliveryError(f"{message}: {code} {text}", retryable=400 <= code < 500, status=code, **data)


def _classify(exc: BaseException, where: str) -> DeliveryError:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_error(exc.smtp_code, exc.smtp_error, f"SMTP error from {where}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"{where}: {exc}", retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        # A bad certificate is configuration, not weather: retrying will not help.
        return DeliveryError(f"TLS certificate of {where} rejected: {exc}", retryable=False)
    if isinstance(exc, socket.gaierror):
        return DeliveryError(f"cannot resolve {where}: {exc}", retryable=True)
    return DeliveryError(f"cannot talk to {where}: {exc}", retryable=True)


def _without_bcc(msg: EmailMessage) -> EmailMessage:
    if "Bcc" not in msg:
        return msg
    clone = copy.copy(msg)
    del clone["Bcc"]
    return clone


def _domain_of(address: object) -> str:
    addr = parseaddr(str(address or ""))[1]
    return addr.rpartition("@")[2]
