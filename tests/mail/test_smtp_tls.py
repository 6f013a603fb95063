from pathlib import Path

import pytest
from mail_samples import make_message
from tls_material import client_context, server_context, write_self_signed

from adapters.mail.sink import SmtpSink
from adapters.mail.smtp import SmtpMailer
from connector.errors import DeliveryError


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_self_signed(tmp_path_factory.mktemp("tls"))


def test_starttls_with_login_delivers(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key), credentials=("mailer", "s3cr:t@x")) as sink:
        assert sink.url.startswith("smtp://mailer:s3cr%3At%40x@127.0.0.1:") and sink.url.endswith(
            "?starttls=1"
        )
        SmtpMailer(sink.url, ssl_context=client_context(cert)).send(make_message())
        assert len(sink.wait_for(1)) == 1


def test_implicit_tls_smtps_delivers(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key), implicit_tls=True) as sink:
        assert sink.url.startswith("smtps://")
        SmtpMailer(sink.url, ssl_context=client_context(cert)).send(make_message())
        assert len(sink.wait_for(1)) == 1


def test_wrong_password_is_permanent(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key), credentials=("mailer", "right")) as sink:
        url = sink.url.replace(":right@", ":wrong@")
        with pytest.raises(DeliveryError) as caught:
            SmtpMailer(url, ssl_context=client_context(cert)).send(make_message())
        assert caught.value.retryable is False
        assert sink.messages == []


def test_untrusted_certificate_is_permanent(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with SmtpSink(tls_context=server_context(cert, key)) as sink:
        with pytest.raises(DeliveryError) as caught:
            SmtpMailer(sink.url).send(make_message())  # system trust store: self-signed is refused
        assert caught.value.retryable is False
