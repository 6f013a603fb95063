import socket

import pytest
from mail_samples import make_message

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer, message_id_for, parse_smtp_url
from connector.errors import ConfigError, DeliveryError


def test_message_arrives_at_the_real_sink_with_the_stable_message_id(smtp_sink: SmtpSink) -> None:
    mailer = SmtpMailer(smtp_sink.url, timeout=5)
    stable = message_id_for("shop-1:order-1001:backorder_confirmation", "shop.example.com")

    returned = mailer.send(make_message(), message_id=stable)

    [received] = smtp_sink.wait_for(1)
    assert returned == stable
    assert received["Message-ID"] == stable
    assert received["Subject"] == "Your order #1001"
    assert "on its way" in received.get_content()


def test_retried_send_reuses_the_same_message_id() -> None:
    assert message_id_for("k1", "x.test") == message_id_for("k1", "x.test")
    assert message_id_for("k1", "x.test") != message_id_for("k2", "x.test")


def test_missing_message_id_is_generated(smtp_sink: SmtpSink) -> None:
    returned = SmtpMailer(smtp_sink.url).send(make_message())
    [received] = smtp_sink.wait_for(1)
    assert returned.startswith("<") and returned.endswith("@example.com>")
    assert received["Message-ID"] == returned


def test_bcc_is_in_the_envelope_but_not_in_the_headers(smtp_sink: SmtpSink) -> None:
    msg = make_message()
    msg["Bcc"] = "archive@example.com"
    SmtpMailer(smtp_sink.url).send(msg)
    [mail] = smtp_sink.received
    assert set(mail.rcpt_tos) == {"ana@example.com", "archive@example.com"}
    assert "Bcc" not in mail.message


def test_non_ascii_names_and_subjects_survive(smtp_sink: SmtpSink) -> None:
    msg = make_message(to="Zoé Müller <zoe@example.com>", subject="Votre commande — délai")
    SmtpMailer(smtp_sink.url).send(msg)
    [received] = smtp_sink.wait_for(1)
    assert received["Subject"] == "Votre commande — délai"
    assert received["To"].addresses[0].display_name == "Zoé Müller"


def test_temporary_refusal_is_retryable_and_nothing_is_kept(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_next(1)
    mailer = SmtpMailer(smtp_sink.url)

    with pytest.raises(DeliveryError) as caught:
        mailer.send(make_message())

    assert caught.value.retryable is True
    assert caught.value.data["status"] == 451
    assert smtp_sink.messages == []
    # the next attempt goes through
    mailer.send(make_message())
    assert len(smtp_sink.wait_for(1)) == 1


def test_one_refused_recipient_sends_to_nobody(smtp_sink: SmtpSink) -> None:
    smtp_sink.reject_recipient("gone@example.com")
    msg = make_message(to="ana@example.com, gone@example.com")

    with pytest.raises(DeliveryError) as caught:
        SmtpMailer(smtp_sink.url).send(msg)

    assert caught.value.retryable is False
    assert caught.value.data["recipient"] == "gone@example.com"
    assert smtp_sink.messages == []


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connect is refused
        with pytest.raises(DeliveryError) as caught:
            SmtpMailer(f"smtp://127.0.0.1:{port}", timeout=2).send(make_message())
    assert caught.value.retryable is True


def test_message_without_recipients_is_a_permanent_error(smtp_sink: SmtpSink) -> None:
    msg = make_message()
    del msg["To"]
    with pytest.raises(DeliveryError) as caught:
        SmtpMailer(smtp_sink.url).send(msg)
    assert caught.value.retryable is False


def test_smtp_url_forms() -> None:
    plain = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (plain.host, plain.port, plain.use_ssl, plain.starttls, plain.username) == (
        "127.0.0.1",
        2525,
        False,
        False,
        None,
    )
    auth = parse_smtp_url("smtp://mailer:p%40ss%3Aword@mail.example.com?starttls=1")
    assert (auth.port, auth.starttls, auth.username, auth.password) == (587, True, "mailer", "p@ss:word")
    tls = parse_smtp_url("smtps://u:p@mail.example.com")
    assert (tls.port, tls.use_ssl) == (465, True)


@pytest.mark.parametrize("url", ["http://x", "smtp://", "smtps://h?starttls=1", "smtp://h:notaport"])
def test_bad_smtp_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_smtp_url(url)
