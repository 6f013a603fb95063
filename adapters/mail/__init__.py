"""Outgoing e-mail: the SMTP mailer and a local SMTP sink for tests and the demo."""
