"""The Web Push channel against a push service on a loopback port that checks VAPID and
decrypts each push with the subscribed browser's keys."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.notify.channels import PushSubscription, Recipient, Rendered, SendFailed, Skipped
from api.notify.push import PushChannel, application_server_key, load_vapid_key
from tests.notify_servers import PushService


def rendered() -> Rendered:
    return Rendered(
        message_id=str(uuid.uuid4()),
        subject="결제가 완료되었습니다 ₩150,000",
        text="김코치님, 회원님의 결제가 완료되었습니다",
        html="<p>결제 완료</p>",
        sms="결제 완료",
        url="https://app.example/bookings/b-1",
        data={"kind": "payment_completed"},
    )


def trainer(*subscriptions: PushSubscription) -> Recipient:
    return Recipient(role="trainer", party_id="trainer-1", push=subscriptions)


class Forgotten(list[str]):
    """A recording `on_gone`: the endpoints the channel reported gone."""

    def __call__(self, endpoint: str) -> None:
        self.append(endpoint)


@pytest.fixture
def forgotten() -> Forgotten:
    return Forgotten()


@pytest.fixture
def push(push_server: PushService, forgotten: Forgotten) -> Iterator[PushChannel]:
    channel = PushChannel(
        push_server.vapid_private_key, push_server.vapid_subject, 10.0, on_gone=forgotten
    )
    yield channel
    channel.close()


def test_the_decrypted_payload_is_what_was_sent(
    push_server: PushService, push: PushChannel
) -> None:
    browser = push_server.subscribe()
    message = rendered()

    push.send(trainer(browser), message)

    [received] = push_server.pushes_to(browser)
    assert received.payload == {
        "kind": "payment_completed",
        "title": "결제가 완료되었습니다 ₩150,000",
        "body": "김코치님, 회원님의 결제가 완료되었습니다",
        "url": "https://app.example/bookings/b-1",
        "message_id": message.message_id,
    }
    assert received.headers["ttl"] == "86400"
    assert received.vapid_claims["sub"] == push_server.vapid_subject


def test_every_attempt_of_a_message_carries_the_same_topic(
    push_server: PushService, push: PushChannel
) -> None:
    browser, message = push_server.subscribe(), rendered()

    push.send(trainer(browser), message)
    push.send(trainer(browser), message)
    push.send(trainer(browser), rendered())

    first, again, other = (received.headers["topic"] for received in push_server.received)
    assert first == again != other and len(first) <= 32


def test_each_browser_of_the_recipient_gets_one_push(
    push_server: PushService, push: PushChannel
) -> None:
    phone, laptop = push_server.subscribe(), push_server.subscribe()

    push.send(trainer(phone, laptop), rendered())

    assert len(push_server.pushes_to(phone)) == len(push_server.pushes_to(laptop)) == 1


def test_a_recipient_without_subscriptions_is_skipped(push: PushChannel) -> None:
    with pytest.raises(Skipped) as skipped:
        push.send(trainer(), rendered())

    assert skipped.value.reason == "no_contact"


def test_a_gone_subscription_is_reported_and_the_others_still_get_it(
    push_server: PushService, push: PushChannel, forgotten: Forgotten
) -> None:
    old, current = push_server.subscribe(), push_server.subscribe()
    push_server.expire(old)

    push.send(trainer(old, current), rendered())

    assert forgotten == [old.endpoint]
    assert len(push_server.pushes_to(current)) == 1


@pytest.mark.parametrize("answer", ["410 expired", "404 unknown"])
def test_when_every_subscription_is_gone_the_push_is_skipped(
    push_server: PushService, push: PushChannel, forgotten: Forgotten, answer: str
) -> None:
    browser = push_server.subscribe()
    if answer == "410 expired":
        push_server.expire(browser)
    else:
        unknown = push_server.base_url + "/push/unknown"
        browser = PushSubscription(unknown, browser.p256dh, browser.auth)

    with pytest.raises(Skipped) as skipped:
        push.send(trainer(browser), rendered())

    assert skipped.value.reason == "no_contact"
    assert forgotten == [browser.endpoint]


@pytest.mark.parametrize("status", [429, 500])
def test_rate_limits_and_server_errors_are_temporary(
    push_server: PushService, push: PushChannel, status: int
) -> None:
    push_server.fail_next(1, status)

    with pytest.raises(SendFailed) as failed:
        push.send(trainer(push_server.subscribe()), rendered())

    assert not failed.value.permanent
    assert failed.value.reason.startswith(f"push {status}: ")


def test_one_browser_refusing_for_now_retries_the_message(
    push_server: PushService, push: PushChannel
) -> None:
    phone, laptop = push_server.subscribe(), push_server.subscribe()
    push_server.fail_next(1, 503)  # the first push, to the phone

    with pytest.raises(SendFailed) as failed:
        push.send(trainer(phone, laptop), rendered())

    assert not failed.value.permanent
    assert len(push_server.pushes_to(laptop)) == 1


def test_a_key_the_push_service_refuses_is_permanent(push_server: PushService) -> None:
    other_key = PushChannel(_raw(ec.generate_private_key(ec.SECP256R1())), "mailto:a@b.c", 10.0)

    with pytest.raises(SendFailed) as failed:
        other_key.send(trainer(push_server.subscribe()), rendered())

    assert failed.value.permanent
    assert failed.value.reason.startswith("push 403: ")


def test_an_unreachable_push_service_is_temporary(
    push_server: PushService, push: PushChannel
) -> None:
    browser = push_server.subscribe()
    push_server.stop()

    with pytest.raises(SendFailed) as failed:
        push.send(trainer(browser), rendered())

    assert not failed.value.permanent
    assert "unreachable" in failed.value.reason


def _raw(key: ec.EllipticCurvePrivateKey) -> str:
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(scalar).rstrip(b"=").decode()


def _der(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.urlsafe_b64encode(der).rstrip(b"=").decode()


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem.decode()


@pytest.mark.parametrize(
    "encode",
    [_raw, _der, _pem, lambda key: _pem(key).replace("\n", "\\n")],
    ids=["raw-base64url", "der-base64url", "pem", "pem-one-line"],
)
def test_the_vapid_key_is_read_in_each_documented_format(
    encode: Callable[[ec.EllipticCurvePrivateKey], str],
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    expected = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )

    vapid = load_vapid_key(encode(key))

    assert application_server_key(vapid) == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "value",
    ["not a key", _der(ec.generate_private_key(ec.SECP384R1()))],
    ids=["garbage", "p-384"],
)
def test_a_vapid_key_that_is_not_p256_fails_at_start_up(value: str) -> None:
    with pytest.raises(ValueError, match="LEDGER_VAPID_PRIVATE_KEY"):
        PushChannel(value, "mailto:ops@ledger.test", 10.0)


def test_a_vapid_subject_must_be_a_mailto_or_https_url(push_server: PushService) -> None:
    with pytest.raises(ValueError, match="LEDGER_VAPID_SUBJECT"):
        PushChannel(push_server.vapid_private_key, "ops@ledger.test", 10.0)


def test_the_push_service_refuses_a_jwt_the_vapid_key_did_not_sign(
    push_server: PushService,
) -> None:
    """The test server's own check: a JWT naming our key `k` but signed by another."""
    forger = load_vapid_key(_raw(ec.generate_private_key(ec.SECP256R1())))
    claims = {"sub": push_server.vapid_subject, "aud": push_server.base_url}
    token = forger.sign(claims)["Authorization"].split("t=")[1].split(",")[0]
    headers = {
        "Authorization": f"vapid t={token},k={push_server.vapid_public_key}",
        "TTL": "60",
        "Content-Encoding": "aes128gcm",
    }

    answer = httpx.post(push_server.subscribe().endpoint, headers=headers, content=b"x")

    assert answer.status_code == 403
    assert push_server.received == []
