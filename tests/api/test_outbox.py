"""Telling people, end to end: payment changes reach trainers and customers by inbox, e-mail
(a real SMTP server), SMS (a Twilio-compatible fake) and Web Push (decrypted by the test's
push service), from the outbox, with every attempt visible to admins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import payment_body
from tests.api.test_trainer_inbox import bearer
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import ADMIN
from tests.live import until
from tests.notify_servers import (  # noqa: F401
    FakeTwilio,
    MailServer,
    PushService,
    ReceivedMail,
    push_server,
    smtp_server,
    twilio_server,
)

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
TRAINER = {"email": "coach@example.kr", "phone": "+821012345678",
           "channels": ["inbox", "email", "sms", "push"]}  # fmt: skip
CUSTOMER = {"email": "minji@example.kr", "phone": "+821098765432", "locale": "en"}
RETRY_URL = "https://app.example/bookings/{booking_id}/pay"


@pytest.fixture
def settings(
    database_url: str,
    fake: FakeProviders,
    smtp_server: MailServer,  # noqa: F811
    twilio_server: FakeTwilio,  # noqa: F811
    push_server: PushService,  # noqa: F811
) -> Settings:
    return make_settings(
        database_url, fake, retry_url=RETRY_URL, outbox_retry_seconds=(0.05, 0.05, 0.05),
        **smtp_server.settings_overrides(), **twilio_server.settings_overrides(),
        **push_server.settings_overrides(),
    )  # fmt: skip


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def ledger(client: TestClient) -> PaymentLedger:
    return client.app.state.services.ledger  # type: ignore[attr-defined,no-any-return]


def with_contacts(client: TestClient, settings: Settings, push: PushService) -> Any:
    put = client.put("/api/admin/trainers/trainer-9/contact", json=TRAINER, headers=ADMIN)
    assert put.status_code == 200, put.text
    put = client.put("/api/admin/customers/cust-5/contact", json=CUSTOMER, headers=ADMIN)
    assert put.status_code == 200, put.text
    subscription = push.subscribe()
    body = {"endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}  # fmt: skip
    added = client.post("/api/trainers/trainer-9/push-subscriptions", json=body,
                        headers=bearer(settings, "trainer-9"))  # fmt: skip
    assert added.status_code == 201, added.text
    return subscription


def initiated(client: TestClient) -> UUID:
    answer = client.post("/api/payments", json=payment_body(amount=150000))
    assert answer.status_code == 201, answer.text
    return UUID(answer.json()["payment_id"])


def deliveries(client: TestClient, **query: str) -> list[dict[str, Any]]:
    answer = client.get("/api/admin/notifications", params={"limit": 500, **query}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def settled(client: TestClient, count: int) -> list[dict[str, Any]]:
    """Every delivery, once `count` of them exist and none is waiting any more."""

    def done() -> list[dict[str, Any]] | None:
        items = deliveries(client)
        waiting = [i for i in items if i["status"] in ("pending", "failed")]
        return items if len(items) == count and not waiting else None

    found: list[dict[str, Any]] = until(done, f"{count} deliveries settled")
    return found


def mail_to(smtp: MailServer, address: str) -> list[ReceivedMail]:
    return [mail for mail in smtp.received if address in mail.rcpt_tos]


def test_a_completed_payment_reaches_the_trainer_by_inbox_email_sms_and_push(
    client: TestClient,
    ledger: PaymentLedger,
    settings: Settings,
    smtp_server: MailServer,  # noqa: F811
    twilio_server: FakeTwilio,  # noqa: F811
    push_server: PushService,  # noqa: F811
) -> None:
    subscription = with_contacts(client, settings, push_server)
    ledger.complete(initiated(client), "pk-1", "card", NOW)

    items = settled(client, 3)
    assert {(i["channel"], i["status"], i["kind"], i["recipient"]) for i in items} == {
        (channel, "sent", "payment_completed", "trainer:trainer-9")
        for channel in ("email", "sms", "push")
    }
    message_id = items[0]["message_id"]
    [mail] = mail_to(smtp_server, TRAINER["email"])
    assert mail.header("Subject") == "새 예약 결제: ₩150,000"
    assert message_id in mail.header("Message-ID")
    assert "김민지님이 2026-12-03 세션을 ₩150,000 결제했습니다." in mail.part("plain")
    assert "김민지님이" in mail.part("html")
    [sms] = twilio_server.messages
    assert (sms.to, sms.body) == (TRAINER["phone"], "[결제 완료] 김민지님 2026-12-03 세션 ₩150,000")
    [push] = push_server.pushes_to(subscription)
    assert push.payload["title"] == "새 예약 결제: ₩150,000"
    inbox = client.get("/api/trainers/trainer-9/notifications", headers=ADMIN).json()["items"]
    assert [n["title"] for n in inbox] == ["New booking paid"]


def test_a_partial_refund_reaches_trainer_and_customer_each_in_their_language(
    client: TestClient,
    ledger: PaymentLedger,
    settings: Settings,
    smtp_server: MailServer,  # noqa: F811
    push_server: PushService,  # noqa: F811
) -> None:
    with_contacts(client, settings, push_server)
    payment = initiated(client)
    ledger.complete(payment, "pk-1", "card", NOW)
    ledger.refund(payment, "rf-1", 50000, "customer asked", NOW)

    items = settled(client, 3 + 3 + 2)  # completed → trainer; refund → trainer and customer
    refunds = [i for i in items if i["kind"] == "payment_partially_refunded"]
    assert {i["recipient"] for i in refunds} == {"trainer:trainer-9", "customer:cust-5"}
    [to_trainer] = [m for m in mail_to(smtp_server, TRAINER["email"])
                    if "환불" in m.header("Subject")]  # fmt: skip
    assert to_trainer.header("Subject") == "결제 부분 환불: ₩50,000"
    [to_customer] = mail_to(smtp_server, CUSTOMER["email"])
    assert to_customer.header("Subject") == "Payment partly refunded: ₩50,000"
    assert "₩50,000 of the payment of ₩150,000" in to_customer.part("plain")
    inbox = client.get("/api/trainers/trainer-9/notifications", headers=ADMIN).json()["items"]
    assert [n["title"] for n in inbox] == ["Payment partly refunded", "New booking paid"]


def test_a_failed_payment_reaches_the_customer_with_a_retry_link(
    client: TestClient,
    ledger: PaymentLedger,
    settings: Settings,
    smtp_server: MailServer,  # noqa: F811
    twilio_server: FakeTwilio,  # noqa: F811
    push_server: PushService,  # noqa: F811
) -> None:
    with_contacts(client, settings, push_server)
    ledger.fail(initiated(client), "REJECT_CARD_COMPANY", "카드사 승인 거절", NOW)

    items = settled(client, 2)  # the customer's e-mail and SMS; nothing to the trainer
    assert {(i["recipient"], i["kind"], i["status"]) for i in items} == {
        ("customer:cust-5", "payment_failed", "sent")
    }
    link = "https://app.example/bookings/booking-77/pay"
    [mail] = mail_to(smtp_server, CUSTOMER["email"])
    assert mail.header("Subject") == "Your payment did not go through"
    assert link in mail.part("plain") and f'href="{link}"' in mail.part("html")
    [sms] = twilio_server.messages
    assert sms.to == CUSTOMER["phone"] and link in sms.body


def test_smtp_down_twice_then_delivered_once_with_every_attempt_shown(
    client: TestClient,
    ledger: PaymentLedger,
    settings: Settings,
    smtp_server: MailServer,  # noqa: F811
    push_server: PushService,  # noqa: F811
) -> None:
    with_contacts(client, settings, push_server)
    smtp_server.refuse_next(2)
    ledger.complete(initiated(client), "pk-1", "card", NOW)

    items = settled(client, 3)
    [email] = [i for i in items if i["channel"] == "email"]
    assert (email["status"], email["attempts"]) == ("sent", 3)
    assert len(mail_to(smtp_server, TRAINER["email"])) == 1
    detail = client.get(f"/api/admin/notifications/{email['message_id']}", headers=ADMIN).json()
    [logged] = [d for d in detail["deliveries"] if d["channel"] == "email"]
    assert [a["status"] for a in logged["attempt_log"]] == ["failed", "failed", "sent"]
    assert "451" in logged["attempt_log"][0]["error"]


def test_channels_not_configured_or_contacts_missing_are_skipped_and_say_why(
    database_url: str, fake: FakeProviders
) -> None:
    with TestClient(create_app(make_settings(database_url, fake))) as client:
        ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
        ledger.complete(initiated(client), "pk-1", "card", NOW)
        items = settled(client, 3)
    assert {(i["status"], i["last_error"]) for i in items} == {("skipped", "not_configured")}


def test_an_erased_customer_is_skipped_and_the_history_still_verifies(
    client: TestClient, ledger: PaymentLedger, settings: Settings,
    push_server: PushService,  # noqa: F811
) -> None:  # fmt: skip
    with_contacts(client, settings, push_server)
    assert client.delete("/api/admin/customers/cust-5/contact", headers=ADMIN).status_code == 204
    ledger.fail(initiated(client), "REJECT_CARD_COMPANY", "declined", NOW)

    items = settled(client, 2)
    assert {(i["status"], i["last_error"]) for i in items} == {("skipped", "no_contact")}
    verdict = client.get("/api/audit/verify", headers=ADMIN).json()
    assert verdict["ok"] is True


def test_resending_a_message_sends_it_again_with_the_same_message_id(
    client: TestClient, ledger: PaymentLedger, settings: Settings,
    smtp_server: MailServer, push_server: PushService,  # noqa: F811
) -> None:  # fmt: skip
    with_contacts(client, settings, push_server)
    ledger.complete(initiated(client), "pk-1", "card", NOW)
    message_id = settled(client, 3)[0]["message_id"]
    before = len(event_topics(ledger))

    answer = client.post(f"/api/admin/notifications/{message_id}/resend", headers=ADMIN)
    assert answer.status_code == 202, answer.text
    until(lambda: len(mail_to(smtp_server, TRAINER["email"])) == 2, "the e-mail sent again")
    first, second = mail_to(smtp_server, TRAINER["email"])
    assert first.header("Message-ID") == second.header("Message-ID")
    unknown = client.post(f"/api/admin/notifications/{UUID(int=7)}/resend", headers=ADMIN)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_message"
    assert len(event_topics(ledger)) == before  # a resend is not an event


def test_a_booking_shows_its_messages_with_their_deliveries(
    client: TestClient, ledger: PaymentLedger, settings: Settings,
    push_server: PushService,  # noqa: F811
) -> None:  # fmt: skip
    with_contacts(client, settings, push_server)
    ledger.complete(initiated(client), "pk-1", "card", NOW)
    settled(client, 3)
    head = ledger.recorder.max_notification_id()
    detail = client.get(f"/api/admin/bookings/booking-77?min_position={head}", headers=ADMIN)
    [message] = detail.json()["messages"]
    assert message["kind"] == "payment_completed"
    assert {d["channel"]: d["status"] for d in message["deliveries"]} == {
        "email": "sent", "sms": "sent", "push": "sent"
    }  # fmt: skip


def test_a_closed_statement_and_its_payout_reach_the_trainer(
    client: TestClient, ledger: PaymentLedger, settings: Settings,
    smtp_server: MailServer, push_server: PushService,  # noqa: F811
) -> None:  # fmt: skip
    with_contacts(client, settings, push_server)
    ledger.complete(initiated(client), "pk-1", "card", datetime(2026, 11, 10, 3, 0, tzinfo=UTC))
    head = ledger.recorder.max_notification_id()
    closed = client.post("/api/admin/settlements/close", json={"period_end": "2026-11-30"},
                         headers=ADMIN, params={"min_position": head})  # fmt: skip
    assert closed.status_code == 200, closed.text
    [statement_id] = closed.json()["closed"]
    paid = client.post(f"/api/admin/settlements/{statement_id}/payout",
                       json={"reference": "bank-77"}, headers=ADMIN)  # fmt: skip
    assert paid.status_code == 200, paid.text

    items = settled(client, 3 * 3)  # the sale, the close and the payout, on three channels
    assert {i["kind"] for i in items} == {"payment_completed", "statement_closed",
                                          "payout_recorded"}  # fmt: skip
    subjects = [m.header("Subject") for m in mail_to(smtp_server, TRAINER["email"])]
    payout = paid.json()["payout_amount"]
    assert f"정산금 지급: ₩{payout:,}" in subjects
    assert "정산서 마감: 2026-11-01 ~ 2026-11-30" in subjects


def test_a_booking_shows_the_failed_attempt_its_retry_link_and_the_retry_that_paid(
    client: TestClient, ledger: PaymentLedger, settings: Settings,
    smtp_server: MailServer, push_server: PushService,  # noqa: F811
) -> None:  # fmt: skip
    with_contacts(client, settings, push_server)
    ledger.fail(initiated(client), "REJECT_CARD_COMPANY", "declined", NOW)
    retry = client.post("/api/payments", json=payment_body(order_id="order-1002", amount=150000))
    assert retry.status_code == 201, retry.text
    ledger.complete(UUID(retry.json()["payment_id"]), "pk-2", "card", NOW)

    settled(client, 2 + 3)
    head = ledger.recorder.max_notification_id()
    detail = client.get(f"/api/admin/bookings/booking-77?min_position={head}", headers=ADMIN).json()
    assert [(p["order_id"], p["status"]) for p in detail["payments"]] == [
        ("order-1001", "failed"), ("order-1002", "completed")
    ]  # fmt: skip
    assert [(m["kind"], m["recipient"]) for m in detail["messages"]] == [
        ("payment_failed", "customer:cust-5"), ("payment_completed", "trainer:trainer-9")
    ]  # fmt: skip
    [failed_mail] = mail_to(smtp_server, CUSTOMER["email"])
    assert "https://app.example/bookings/booking-77/pay" in failed_mail.part("plain")
