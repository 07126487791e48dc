"""The SMS channel against a fake Twilio Messages API on a loopback port."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from api.notify.channels import Recipient, Rendered, SendFailed, Skipped
from api.notify.sms import SmsChannel
from tests.notify_servers import FakeTwilio

TRAINER = Recipient(role="trainer", party_id="trainer-1", phone="+821012345678")


def rendered() -> Rendered:
    return Rendered(
        message_id=str(uuid.uuid4()),
        subject="결제 완료",
        text="결제가 완료되었습니다",
        html="<p>결제가 완료되었습니다</p>",
        sms="[레저] 결제가 완료되었습니다 ₩150,000",
    )


@pytest.fixture
def sms(twilio_server: FakeTwilio) -> Iterator[SmsChannel]:
    channel = channel_for(twilio_server)
    yield channel
    channel.close()


def channel_for(server: FakeTwilio, token: str = "", sender: str = "") -> SmsChannel:
    return SmsChannel(
        server.account_sid,
        token or server.auth_token,
        sender or server.from_number,
        server.base_url,
        timeout=10.0,
    )


def test_sms_is_posted_as_twilio_form_fields_with_basic_auth(
    twilio_server: FakeTwilio, sms: SmsChannel
) -> None:
    message = rendered()

    sid = sms.send(TRAINER, message)

    [sent] = twilio_server.messages
    assert sid == sent.sid and sid.startswith("SM")
    assert (sent.to, sent.sender, sent.body) == ("+821012345678", "+15005550006", message.sms)
    [request] = twilio_server.requests
    credentials = f"{twilio_server.account_sid}:{twilio_server.auth_token}".encode()
    assert request.headers["authorization"] == "Basic " + base64.b64encode(credentials).decode()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_every_attempt_carries_the_message_id_as_idempotency_key(
    twilio_server: FakeTwilio, sms: SmsChannel
) -> None:
    message = rendered()
    twilio_server.fail_next(1, 500)

    with pytest.raises(SendFailed):
        sms.send(TRAINER, message)
    sms.send(TRAINER, message)

    keys = [request.headers.get("idempotency-key") for request in twilio_server.requests]
    assert keys == [message.message_id, message.message_id]


def test_a_recipient_without_a_phone_is_skipped(twilio_server: FakeTwilio, sms: SmsChannel) -> None:
    with pytest.raises(Skipped) as skipped:
        sms.send(Recipient(role="customer", party_id="customer-1"), rendered())

    assert skipped.value.reason == "no_contact"
    assert twilio_server.requests == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_temporary(
    twilio_server: FakeTwilio, sms: SmsChannel, status: int
) -> None:
    twilio_server.fail_next(1, status)

    with pytest.raises(SendFailed) as failed:
        sms.send(TRAINER, rendered())

    assert not failed.value.permanent
    assert failed.value.reason.startswith(f"twilio {status} ")


def test_an_invalid_number_is_permanent_with_twilios_code_and_message(sms: SmsChannel) -> None:
    customer = Recipient(role="customer", party_id="customer-1", phone="010-1234-5678")

    with pytest.raises(SendFailed) as failed:
        sms.send(customer, rendered())

    assert failed.value.permanent
    assert failed.value.reason == (
        "twilio 400 21211: The 'To' number 010-1234-5678 is not a valid phone number."
    )


def test_a_scripted_400_is_permanent(twilio_server: FakeTwilio, sms: SmsChannel) -> None:
    twilio_server.fail_next(1, 400, code=21610, message="Attempt to send to unsubscribed recipient")

    with pytest.raises(SendFailed) as failed:
        sms.send(TRAINER, rendered())

    assert failed.value.permanent
    assert "21610" in failed.value.reason


def test_a_wrong_token_is_temporary(twilio_server: FakeTwilio) -> None:
    channel = channel_for(twilio_server, token="wrong")

    with pytest.raises(SendFailed) as failed:
        channel.send(TRAINER, rendered())

    assert not failed.value.permanent  # fixed by the operator, then the retries pass
    assert "20003" in failed.value.reason
    assert twilio_server.messages == []


def test_an_unreachable_api_is_temporary(twilio_server: FakeTwilio, sms: SmsChannel) -> None:
    twilio_server.stop()

    with pytest.raises(SendFailed) as failed:
        sms.send(TRAINER, rendered())

    assert not failed.value.permanent
    assert "unreachable" in failed.value.reason


def test_a_messaging_service_sender_is_sent_as_messaging_service_sid(
    twilio_server: FakeTwilio,
) -> None:
    service = "MG" + "0" * 32
    channel_for(twilio_server, sender=service).send(TRAINER, rendered())

    [request] = twilio_server.requests
    assert f"MessagingServiceSid={service}".encode() in request.body
    assert b"From=" not in request.body
