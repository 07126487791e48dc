"""Toss webhooks over HTTP: re-read from the (fake) Toss API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import assert_error, payment_body
from tests.api.test_webhooks_stripe import live_server
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders
from tests.fixtures import load

WEBHOOK = "/api/webhooks/toss"
KEY = "tpk_1"
CONFIRM = {"paymentKey": KEY, "orderId": "order-1001", "amount": 55000}


def post(client: TestClient, body: bytes | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(WEBHOOK, content=content, headers={"content-type": "application/json"})


def status_change(fake: FakeProviders, **data_overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(fake.toss_webhook_body(KEY))
    body["data"].update(data_overrides)
    return body


@pytest.fixture
def payment_id(client: TestClient) -> UUID:
    created = client.post("/api/payments", json=payment_body())
    assert created.status_code == 201, created.text
    return UUID(created.json()["payment_id"])


@pytest.fixture
def confirmed(client: TestClient, payment_id: UUID) -> UUID:
    answer = client.post("/api/payments/toss/confirm", json=CONFIRM)
    assert answer.json()["status"] == "completed", answer.text
    return payment_id


def test_done_completes_the_payment_and_notifies_the_trainer(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    answer = post(client, fake.toss_webhook_body(KEY))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["outcome"], answer.json()["status"]) == ("applied", "completed")
    assert fake.calls("GET", f"/v1/payments/{KEY}"), "the payment is re-read from Toss"
    assert event_topics(ledger) == ["Initiated", "Claimed", "Completed", "Sent", "Applied"]


def test_redelivered_status_change_is_a_duplicate(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    body = fake.toss_webhook_body(KEY)
    post(client, body)
    again = post(client, body)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert event_topics(ledger) == ["Initiated", "Claimed", "Completed", "Sent", "Applied"]


def test_status_the_ledger_already_has_appends_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    before = event_topics(ledger)
    answer = post(client, fake.toss_webhook_body(KEY))
    assert (answer.json()["outcome"], answer.json()["status"]) == ("unchanged", "completed")
    assert event_topics(ledger) == before


def test_full_cancel_after_payment_refunds_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    fake.toss_set_status(KEY, "CANCELED")
    answer = post(client, fake.toss_webhook_body(KEY))
    assert (answer.json()["outcome"], answer.json()["status"]) == ("applied", "refunded")
    payment = ledger.get_payment(confirmed)
    assert payment.refunded_amount == 55000
    assert payment.refund_ids == [fake.toss_get(KEY)["cancels"][0]["transactionKey"]]


def test_new_partial_cancels_apply_together_and_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    first_two = [{"cancelAmount": 10000}, {"cancelAmount": 5000}]
    cancels = fake.toss_set_status(KEY, "PARTIAL_CANCELED", cancels=first_two)["cancels"]
    answer = post(client, fake.toss_webhook_body(KEY))
    assert answer.json()["status"] == "partially_refunded"
    assert ledger.get_payment(confirmed).refunded_amount == 15000
    assert event_topics(ledger)[-3:] == ["Refunded", "Refunded", "Applied"]  # one save

    third = [*cancels, {"cancelAmount": 40000}]
    fake.toss_set_status(KEY, "CANCELED", cancels=third)
    assert post(client, fake.toss_webhook_body(KEY)).json()["status"] == "refunded"
    assert post(client, fake.toss_webhook_body(KEY)).json()["outcome"] == "duplicate"
    topics = event_topics(ledger)
    assert topics.count("Refunded") == 3 and topics.count("Applied") == 2
    assert ledger.get_payment(confirmed).refunded_amount == 55000


def test_concurrent_copies_of_a_multi_cancel_report_apply_once(
    settings: Settings, fake: FakeProviders
) -> None:
    with live_server(settings) as (base_url, ledger):
        httpx.post(f"{base_url}/api/payments", json=payment_body())
        httpx.post(f"{base_url}/api/payments/toss/confirm", json=CONFIRM)
        three = [{"cancelAmount": 1000}, {"cancelAmount": 2000}, {"cancelAmount": 3000}]
        fake.toss_set_status(KEY, "PARTIAL_CANCELED", cancels=three)
        body = fake.toss_webhook_body(KEY)

        def send(_: int) -> httpx.Response:
            return httpx.post(f"{base_url}{WEBHOOK}", content=body, timeout=30)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(send, range(12)))
        topics = event_topics(ledger)
    assert [a.status_code for a in answers] == [200] * 12
    assert [a.json()["outcome"] for a in answers].count("applied") == 1
    assert topics.count("Refunded") == 3 and topics.count("Applied") == 1


def test_partial_cancel_of_a_payment_never_seen_paid_completes_and_refunds_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    fake.toss_set_status(KEY, "PARTIAL_CANCELED", cancels=[{"cancelAmount": 5000}])
    answer = post(client, fake.toss_webhook_body(KEY))
    assert answer.json()["status"] == "partially_refunded"
    topics = event_topics(ledger)
    assert topics.count("Completed") == 1 and topics.count("Sent") == 1
    assert ledger.get_payment(payment_id).refunded_amount == 5000


def test_cancel_before_payment_cancels_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="WAITING_FOR_DEPOSIT")
    fake.toss_set_status(KEY, "CANCELED")
    answer = post(client, fake.toss_webhook_body(KEY))
    assert (answer.json()["outcome"], answer.json()["status"]) == ("applied", "cancelled")
    assert ledger.get_payment(payment_id).refunded_amount == 0


def test_aborted_fails_the_payment_with_tosss_failure(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="ABORTED")
    fake.toss_set_failure(KEY, "REJECT_CARD_COMPANY", "카드사에서 거절했습니다.")
    answer = post(client, fake.toss_webhook_body(KEY))
    assert answer.json()["status"] == "failed"
    payment = ledger.get_payment(payment_id)
    assert (payment.failure_code, payment.failure_message) == (
        "REJECT_CARD_COMPANY",
        "카드사에서 거절했습니다.",
    )


def test_expired_cancels_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="EXPIRED")
    assert post(client, fake.toss_webhook_body(KEY)).json()["status"] == "cancelled"


def test_the_toss_api_wins_over_the_webhook_body(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="ABORTED")
    forged = status_change(fake, status="DONE", approvedAt="2026-11-25T12:00:00+09:00")
    assert post(client, forged).json()["status"] == "failed"

    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    claims_cancel = status_change(fake, status="CANCELED", totalAmount=1)
    assert post(client, claims_cancel).json()["status"] == "completed"
    assert ledger.get_payment(payment_id).refunded_amount == 0


def test_stale_done_delivered_after_the_cancel_leaves_the_payment_refunded(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    stale_done = fake.toss_webhook_body(KEY)
    fake.toss_set_status(KEY, "CANCELED")
    post(client, fake.toss_webhook_body(KEY))
    before = event_topics(ledger)
    late = post(client, stale_done)
    assert (late.json()["outcome"], late.json()["status"]) == ("duplicate", "refunded")
    assert event_topics(ledger) == before


def test_cancel_status_changed_rereads_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    fake.toss_set_status(KEY, "CANCELED")
    body = load("toss.cancel_status_changed")
    assert post(client, body).json() == {
        "received": True,
        "outcome": "ignored",
        "payment_id": None,
        "status": None,
        "position": None,
        "reason": "no_payment_key",
    }
    body["data"]["paymentKey"] = KEY  # when Toss names the payment, it is re-read
    assert post(client, body).json()["status"] == "refunded"


def test_unknown_order_or_payment_is_404(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    fake.toss_payment(KEY, "order-elsewhere", 55000, status="DONE")
    assert_error(post(client, fake.toss_webhook_body(KEY)), 404, "unknown_order")
    fake.toss_payment("tpk_gone", "order-gone", 100, status="DONE")
    body = json.loads(fake.toss_webhook_body("tpk_gone"))
    body["data"]["paymentKey"] = "tpk_unknown_to_toss"
    assert_error(post(client, body), 404, "unknown_payment")
    assert event_topics(ledger) == []


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 503}, {"delay": 1.5}])
def test_toss_api_down_answers_5xx_so_toss_retries_and_appends_nothing(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    payment_id: UUID,
    failure: dict[str, Any],
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    body = fake.toss_webhook_body(KEY)
    fake.toss_fail_next(**{"status": 200, **failure})
    assert_error(post(client, body), 502, "provider_unavailable")
    assert event_topics(ledger) == ["Initiated", "Claimed"]
    assert post(client, body).json()["outcome"] == "applied"  # Toss's retry


def test_amount_reported_by_toss_must_match(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 100, status="DONE")
    assert_error(post(client, fake.toss_webhook_body(KEY)), 400, "amount_mismatch")
    assert event_topics(ledger) == ["Initiated", "Claimed"]


@pytest.fixture
def awaiting_deposit(client: TestClient, fake: FakeProviders, payment_id: UUID) -> UUID:
    fake.toss_virtual_account_next_confirm("ps_right_secret")
    answer = client.post("/api/payments/toss/confirm", json=CONFIRM)
    assert answer.json()["status"] == "pending", answer.text
    return payment_id


def test_deposit_callback_with_the_confirm_secret_completes_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, awaiting_deposit: UUID
) -> None:
    fake.toss_set_status(KEY, "DONE")
    answer = post(client, fake.toss_deposit_callback_body(KEY, "ps_right_secret"))
    assert (answer.json()["outcome"], answer.json()["status"]) == ("applied", "completed")
    assert event_topics(ledger) == [
        "Initiated",
        "Claimed",
        "DepositAwaited",
        "Completed",
        "Sent",
        "Applied",
    ]
    # The PAYMENT_STATUS_CHANGED twin of the same deposit changes nothing more.
    assert post(client, fake.toss_webhook_body(KEY)).json()["outcome"] == "duplicate"


@pytest.mark.parametrize("secret", ["ps_wrong_secret", "", "ps_right_secre"])
def test_deposit_callback_with_another_secret_is_refused(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    awaiting_deposit: UUID,
    secret: str,
) -> None:
    fake.toss_set_status(KEY, "DONE")
    before = event_topics(ledger)
    answer = post(client, fake.toss_deposit_callback_body(KEY, secret))
    assert_error(answer, 400)
    assert event_topics(ledger) == before
    assert ledger.get_payment(awaiting_deposit).status == "pending"


def test_deposit_callback_for_a_payment_without_virtual_account_is_refused(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    fake.toss_set_status(KEY, "CANCELED")
    before = event_topics(ledger)
    assert_error(post(client, fake.toss_deposit_callback_body(KEY, "")), 400, "invalid_body")
    forged = fake.toss_deposit_callback_body(KEY, "ps_guess")
    assert_error(post(client, forged), 400, "invalid_secret")
    assert event_topics(ledger) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"eventType": "PAYMENT_STATUS_CHANGED", ', "malformed_json"),
        (b'"PAYMENT_STATUS_CHANGED"', "invalid_body"),
        (b'{"eventType": "PAYMENT_STATUS_CHANGED", "data": null}', "invalid_body"),
        (b'{"createdAt": "2026-11-25T12:00:00.000000", "status": "DONE"}', "invalid_body"),
    ],
    ids=["malformed", "not-object", "no-data", "deposit-without-secret"],
)
def test_malformed_toss_bodies_are_refused_400(
    client: TestClient, ledger: PaymentLedger, payment_id: UUID, body: bytes, code: str
) -> None:
    assert_error(post(client, body), 400, code)
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_unhandled_toss_event_types_are_ignored(client: TestClient, ledger: PaymentLedger) -> None:
    body = {"eventType": "METHOD_UPDATED", "createdAt": "2026-11-25T12:00:00.000000", "data": {}}
    answer = post(client, body)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored")
    assert event_topics(ledger) == []


def test_oversized_toss_body_is_refused_413(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    body = {"eventType": "PAYMENT_STATUS_CHANGED", "data": {"pad": "x" * settings.max_body_bytes}}
    assert_error(post(client, body), 413, "payload_too_large")
    assert event_topics(ledger) == []
