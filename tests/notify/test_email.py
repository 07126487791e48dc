"""The e-mail channel against a real SMTP server (aiosmtpd on a loopback port)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import pytest

from api.notify.channels import Recipient, Rendered, SendFailed, Skipped
from api.notify.email import EmailChannel, SmtpTarget
from tests.notify_servers import MailServer

MAIL_FROM = "Ledger 알림 <ledger@ledger.test>"
TRAINER = Recipient(role="trainer", party_id="trainer-1", email="coach@example.com")


def rendered(message_id: str | None = None) -> Rendered:
    return Rendered(
        message_id=message_id or str(uuid.uuid4()),
        subject="결제가 완료되었습니다 ₩150,000",
        text="김코치님, 회원님의 결제가 완료되었습니다: ₩150,000",
        html="<p>김코치님, 회원님의 결제가 <b>완료</b>되었습니다: ₩150,000</p>",
        sms="결제 완료 ₩150,000",
    )


def channel_for(server: MailServer, url: str | None = None) -> EmailChannel:
    return EmailChannel(url or server.url, MAIL_FROM, 10.0, ssl_context=server.client_tls)


def test_mail_arrives_with_its_headers_and_both_parts_in_korean(smtp_server: MailServer) -> None:
    message = rendered()

    returned = channel_for(smtp_server).send(TRAINER, message)

    [mail] = smtp_server.received
    assert (mail.mail_from, mail.rcpt_tos) == ("ledger@ledger.test", ["coach@example.com"])
    assert mail.header("Message-ID") == f"<{message.message_id}@ledger.test>" == returned
    assert mail.header("Subject") == "결제가 완료되었습니다 ₩150,000"
    assert mail.header("From") == MAIL_FROM
    assert mail.header("To") == "coach@example.com"
    assert parsedate_to_datetime(mail.header("Date")).tzinfo is not None
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.part("plain").rstrip("\n") == message.text
    assert mail.part("html").rstrip("\n") == message.html


def test_korean_goes_over_the_wire_encoded_for_any_relay(smtp_server: MailServer) -> None:
    channel_for(smtp_server).send(TRAINER, rendered())

    [mail] = smtp_server.received
    assert mail.raw.isascii()  # RFC 2047 headers, base64 / quoted-printable bodies
    assert b"Subject: =?utf-8?" in mail.raw


def test_a_resent_message_carries_the_same_message_id(smtp_server: MailServer) -> None:
    message = rendered()
    channel = channel_for(smtp_server)

    channel.send(TRAINER, message)
    channel.send(TRAINER, message)

    first, second = smtp_server.received
    assert first.header("Message-ID") == second.header("Message-ID")


def test_a_recipient_without_an_address_is_skipped(smtp_server: MailServer) -> None:
    customer = Recipient(role="customer", party_id="customer-1")

    with pytest.raises(Skipped) as skipped:
        channel_for(smtp_server).send(customer, rendered())

    assert skipped.value.reason == "no_contact"
    assert smtp_server.received == []


def test_a_451_refusal_is_temporary_and_the_next_attempt_passes(smtp_server: MailServer) -> None:
    smtp_server.refuse_next(1)
    channel = channel_for(smtp_server)

    with pytest.raises(SendFailed) as failed:
        channel.send(TRAINER, rendered())
    channel.send(TRAINER, rendered())

    assert not failed.value.permanent
    assert "451" in failed.value.reason
    assert len(smtp_server.received) == 1


def test_a_550_recipient_refusal_is_permanent(smtp_server: MailServer) -> None:
    smtp_server.refuse_next(1, "550 5.1.1 No such user here")

    with pytest.raises(SendFailed) as failed:
        channel_for(smtp_server).send(TRAINER, rendered())

    assert failed.value.permanent
    assert "550" in failed.value.reason


def test_a_server_down_is_temporary_until_it_is_back(smtp_server: MailServer) -> None:
    channel = channel_for(smtp_server)
    smtp_server.stop()

    with pytest.raises(SendFailed) as failed:
        channel.send(TRAINER, rendered())
    smtp_server.start()
    channel.send(TRAINER, rendered())

    assert not failed.value.permanent
    assert "unreachable" in failed.value.reason
    assert len(smtp_server.received) == 1


def test_a_wrong_password_is_temporary(smtp_server: MailServer) -> None:
    url = smtp_server.url.replace(smtp_server.password, "wrong")

    with pytest.raises(SendFailed) as failed:
        channel_for(smtp_server, url).send(TRAINER, rendered())

    assert not failed.value.permanent  # fixed by the operator, then the retries pass
    assert "535" in failed.value.reason


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_server_that_never_greets_times_out_as_temporary(silent_port: int) -> None:
    channel = EmailChannel(f"smtp://127.0.0.1:{silent_port}", MAIL_FROM, timeout=0.2)

    with pytest.raises(SendFailed) as failed:
        channel.send(TRAINER, rendered())

    assert not failed.value.permanent
    assert "timed out" in failed.value.reason


@pytest.fixture
def tls_server() -> Iterator[MailServer]:
    server = MailServer(tls=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_starttls_upgrades_before_logging_in(tls_server: MailServer) -> None:
    assert tls_server.url.endswith("?starttls=true")

    channel_for(tls_server).send(TRAINER, rendered())

    assert len(tls_server.received) == 1  # the server refuses AUTH and MAIL before TLS


def test_starttls_verifies_the_certificate(tls_server: MailServer) -> None:
    channel = EmailChannel(tls_server.url, MAIL_FROM, 10.0)  # the system's trust store

    with pytest.raises(SendFailed) as failed:
        channel.send(TRAINER, rendered())

    assert "CERTIFICATE_VERIFY_FAILED" in failed.value.reason
    assert tls_server.received == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example:2525", SmtpTarget("mail.example", 2525, None, None, "plain")),
        ("smtp://u:p@mail.example", SmtpTarget("mail.example", 25, "u", "p", "plain")),
        (
            "smtp://u%40x:p%2Fw@mail.example?starttls=true",
            SmtpTarget("mail.example", 587, "u@x", "p/w", "starttls"),
        ),
        ("smtps://u:p@mail.example", SmtpTarget("mail.example", 465, "u", "p", "tls")),
    ],
)
def test_smtp_urls_name_host_port_login_and_security(url: str, expected: SmtpTarget) -> None:
    assert SmtpTarget.from_url(url) == expected


def test_a_bad_smtp_url_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ValueError) as refused:
        SmtpTarget.from_url("http://user:hunter2@mail.example")

    assert "hunter2" not in str(refused.value)
