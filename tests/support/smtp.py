"""The loopback SMTP sink, re-exported for tests (the demo imports it from adapters.mail.sink)."""

from adapters.mail.sink import ReceivedMail, SmtpSink

__all__ = ["ReceivedMail", "SmtpSink"]
