"""A real SMTP server on loopback that keeps what it receives.

The tests and ``make demo`` need mail to go through an actual SMTP conversation (so
refusals, envelopes and MIME encoding are exercised), yet never leave the machine. The sink
runs aiosmtpd in its own thread; received messages are parsed with the modern e-mail policy
so callers get :class:`email.message.EmailMessage` objects with ``get_body`` and
``iter_attachments``.
"""

from __future__ import annotations

import email
import email.policy
import errno
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message with its SMTP envelope (which may differ from the headers, e.g. Bcc)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._sink._recipient_refusal(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusal = self._sink._take_data_refusal()
        if refusal:
            return refusal
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self._sink._store(ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpSink:
    """Loopback SMTP server capturing messages; can be told to refuse for retry tests.

    ``refuse_next(n)`` answers ``451`` (temporary) to the next *n* messages at DATA, so nothing
    of those messages is stored; ``reject_recipient(addr)`` answers ``550`` to that address
    at RCPT, which a mailer must treat as permanent.

    With ``tls_context`` the sink offers STARTTLS (or, with ``implicit_tls=True``, speaks TLS
    from the first byte like an ``smtps://`` server); with ``credentials`` it requires AUTH
    (PLAIN/LOGIN, only after TLS). ``url`` reflects all of that.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if (implicit_tls or credentials) and tls_context is None:
            raise ValueError("implicit_tls and credentials need a tls_context")
        self.host = host
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.credentials = credentials
        self._requested_port = port
        self.port = 0
        self._controller: Controller | None = None
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._data_refusals: list[str] = []
        self._rejected: dict[str, str] = {}
        self._arrived = threading.Condition(self._lock)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SmtpSink:
        if self._controller is not None:
            return self
        last_error: OSError | None = None
        # A free port picked by binding port 0 can be taken again before aiosmtpd binds it
        # (aiosmtpd cannot use port 0 itself: it connects to the port to await the greeting).
        for _ in range(5):
            port = self._requested_port or _free_port(self.host)
            controller = Controller(
                _Handler(self), hostname=self.host, port=port, ready_timeout=5.0, **self._options()
            )
            try:
                controller.start()
            except OSError as exc:
                last_error = exc
                if self._requested_port or exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not bind an SMTP sink on {self.host}") from last_error

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.tls_context is not None:
            if self.implicit_tls:
                options["ssl_context"] = self.tls_context
            else:
                options.update(tls_context=self.tls_context, require_starttls=True)
        if self.credentials is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
        return options

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        login, password = self.credentials
        ok = auth_data.login == login.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("SmtpSink is not started")
        scheme = "smtps" if self.implicit_tls else "smtp"
        auth = ""
        if self.credentials:
            auth = f"{quote(self.credentials[0], safe='')}:{quote(self.credentials[1], safe='')}@"
        query = "?starttls=1" if self.tls_context is not None and not self.implicit_tls else ""
        return f"{scheme}://{auth}{self.host}:{self.port}{query}"

    # -- behaviour switches ------------------------------------------------------------------

    def refuse_next(self, count: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer *reply* at DATA to the next *count* messages (nothing of them is kept)."""
        with self._lock:
            self._data_refusals.extend([reply] * count)

    def reject_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        with self._lock:
            self._rejected[address.lower()] = reply

    def reset(self) -> None:
        """Forget received messages and every refusal switch."""
        with self._lock:
            self._messages.clear()
            self._data_refusals.clear()
            self._rejected.clear()

    # -- what arrived ------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [m.message for m in self._messages]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until at least *count* messages arrived (delivery is synchronous, but be kind)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} messages, got {len(self._messages)}")
                self._arrived.wait(remaining)
            return [m.message for m in self._messages]

    # -- called from the server thread -------------------------------------------------------

    def _store(self, mail: ReceivedMail) -> None:
        with self._arrived:
            self._messages.append(mail)
            self._arrived.notify_all()

    def _take_data_refusal(self) -> str | None:
        with self._lock:
            return self._data_refusals.pop(0) if self._data_refusals else None

    def _recipient_refusal(self, address: str) -> str | None:
        with self._lock:
            return self._rejected.get(address.lower())


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":  # pragma: no cover - manual/demo use: python -m adapters.mail.sink
    import sys

    with SmtpSink(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0) as sink:
        print(f"SMTP sink listening: SMTP_URL={sink.url}", flush=True)
        seen = 0
        try:
            while True:
                for mail in sink.wait_for(seen + 1, timeout=3600)[seen:]:
                    print(f"-- to {mail['To']}: {mail['Subject']}", flush=True)
                    seen += 1
        except KeyboardInterrupt:
            pass
