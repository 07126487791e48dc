"""Checkout over HTTP against the fake providers, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "order-1001",
        "booking_id": "booking-77",
        "customer_id": "cust-5",
        "customer_name": "김민지",
        "trainer_id": "trainer-9",
        "booking_date": "2026-12-03",
        "amount": 55000,
        "currency": "KRW",
        "provider": "toss",
    }
    return {**body, **overrides}


def stripe_body(**overrides: Any) -> dict[str, Any]:
    return payment_body(
        order_id="order-s1", amount=4200, currency="usd", provider="stripe", **overrides
    )


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def test_toss_payment_is_initiated_and_confirmed(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    created = client.post("/api/payments", json=payment_body())
    assert created.status_code == 201
    assert created.json()["status"] == "pending"

    confirmed = client.post(
        "/api/payments/toss/confirm",
        json={"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {
        "payment_id": created.json()["payment_id"],
        "status": "completed",
        "position": confirmed.json()["position"],
    }
    call = fake.calls("POST", "/v1/payments/confirm")[0]
    assert call.json == {"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000}
    assert call.header(
        "authorization",
    ).startswith("Basic ")  # type: ignore[union-attr]
    assert event_topics(ledger) == ["Initiated", "Claimed", "Completed", "Sent", "Decided"]


def test_repeated_toss_confirm_does_not_call_toss_again(
    client: TestClient, fake: FakeProviders
) -> None:
    client.post("/api/payments", json=payment_body())
    confirm = {"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000}
    client.post("/api/payments/toss/confirm", json=confirm)
    again = client.post("/api/payments/toss/confirm", json=confirm)
    assert again.status_code == 200 and again.json()["status"] == "completed"
    assert len(fake.calls("POST", "/v1/payments/confirm")) == 1


def test_stripe_payment_is_initiated_and_confirmed(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    created = client.post("/api/payments", json=stripe_body())
    assert created.status_code == 201
    assert created.json()["order_id"] == "order-s1"
    fake.stripe_session("cs_1", "order-s1", 4200, "usd", payment_intent="pi_1")

    confirmed = client.post("/api/payments/stripe/confirm", json={"session_id": "cs_1"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "completed"
    assert ledger.get_payment(UUID(created.json()["payment_id"])).provider_payment_id == "pi_1"
    assert event_topics(ledger) == ["Initiated", "Claimed", "Completed", "Sent", "Decided"]


def test_stripe_session_found_by_client_reference_id(
    client: TestClient, fake: FakeProviders
) -> None:
    client.post("/api/payments", json=stripe_body())
    fake.stripe_session("cs_2", "order-s1", 4200, "usd", use_client_reference_id=True)
    confirmed = client.post("/api/payments/stripe/confirm", json={"session_id": "cs_2"})
    assert confirmed.json()["status"] == "completed"


def test_unpaid_stripe_session_stays_pending(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    client.post("/api/payments", json=stripe_body())
    fake.stripe_session("cs_3", "order-s1", 4200, "usd", payment_status="unpaid", status="open")
    answer = client.post("/api/payments/stripe/confirm", json={"session_id": "cs_3"})
    assert answer.status_code == 200 and answer.json()["status"] == "pending"
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_repeating_the_same_payment_returns_the_same_payment(
    client: TestClient, ledger: PaymentLedger
) -> None:
    first = client.post("/api/payments", json=payment_body())
    second = client.post("/api/payments", json=payment_body())
    assert second.status_code == 200
    assert second.json()["payment_id"] == first.json()["payment_id"]
    assert event_topics(ledger) == ["Initiated", "Claimed"]


@pytest.mark.parametrize(
    "change",
    [{"amount": 1}, {"customer_name": "someone else"}, {"provider": "stripe", "currency": "USD"}],
)
def test_same_order_with_a_different_body_is_a_conflict(
    client: TestClient, ledger: PaymentLedger, change: dict[str, Any]
) -> None:
    client.post("/api/payments", json=payment_body())
    assert_error(client.post("/api/payments", json=payment_body(**change)), 409, "conflict")
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_toss_amount_mismatch_is_refused_without_calling_toss(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    client.post("/api/payments", json=payment_body())
    answer = client.post(
        "/api/payments/toss/confirm",
        json={"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 100},
    )
    assert_error(answer, 400, "amount_mismatch")
    assert fake.provider_calls("toss") == []
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_unknown_order_is_not_found(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    answer = client.post(
        "/api/payments/toss/confirm", json={"paymentKey": "tpk_1", "orderId": "nope", "amount": 100}
    )
    assert_error(answer, 404, "unknown_order")
    fake.stripe_session("cs_x", "nope", 100, "usd")
    assert_error(
        client.post("/api/payments/stripe/confirm", json={"session_id": "cs_x"}),
        404,
        "unknown_order",
    )
    assert_error(
        client.post("/api/payments/stripe/confirm", json={"session_id": "cs_missing"}), 404
    )
    assert fake.provider_calls("toss") == []
    assert event_topics(ledger) == []


def test_malformed_json_is_refused_with_the_error_body(
    client: TestClient, ledger: PaymentLedger
) -> None:
    answer = client.post(
        "/api/payments", content=b'{"order_id": "x",', headers={"content-type": "application/json"}
    )
    assert_error(answer, 422, "malformed_json")
    assert event_topics(ledger) == []


@pytest.mark.parametrize(
    "body",
    [
        {k: v for k, v in payment_body().items() if k != "trainer_id"},
        payment_body(amount=15000.5),
        payment_body(amount="15000"),
        payment_body(amount=0),
        payment_body(currency="WON"[:2]),
        payment_body(booking_date="03/12/2026"),
        payment_body(unexpected="field"),
    ],
)
def test_invalid_payment_bodies_are_refused(
    client: TestClient, ledger: PaymentLedger, body: dict[str, Any]
) -> None:
    assert_error(client.post("/api/payments", json=body), 422, "validation_error")
    assert event_topics(ledger) == []


def test_a_provider_that_is_not_registered_is_refused(
    client: TestClient, ledger: PaymentLedger
) -> None:
    answer = client.post("/api/payments", json=payment_body(provider="paypal"))
    assert "toss, stripe" in assert_error(answer, 422, "unknown_provider")["message"]
    assert event_topics(ledger) == []


def test_toss_decline_is_recorded_and_answered_402(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    created = client.post("/api/payments", json=payment_body()).json()
    fake.toss_fail_next_confirm("REJECT_CARD_COMPANY", "카드사에서 거절했습니다.")
    answer = client.post(
        "/api/payments/toss/confirm",
        json={"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000},
    )
    error = assert_error(answer, 402, "REJECT_CARD_COMPANY")
    assert error["message"] == "카드사에서 거절했습니다."
    payment = ledger.get_payment(UUID(created["payment_id"]))
    assert (payment.status, payment.failure_code) == ("failed", "REJECT_CARD_COMPANY")


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 200, "delay": 1.5}])
def test_toss_outage_answers_502_and_payment_can_be_confirmed_later(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, failure: dict[str, Any]
) -> None:
    client.post("/api/payments", json=payment_body())
    fake.toss_fail_next(**failure)
    confirm = {"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000}
    assert_error(
        client.post("/api/payments/toss/confirm", json=confirm), 502, "provider_unavailable"
    )
    assert event_topics(ledger) == ["Initiated", "Claimed"]
    retried = client.post("/api/payments/toss/confirm", json=confirm)
    assert retried.status_code == 200 and retried.json()["status"] == "completed"


def test_stripe_outage_answers_502_and_payment_stays_pending(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    client.post("/api/payments", json=stripe_body())
    fake.stripe_session("cs_1", "order-s1", 4200, "usd")
    fake.stripe_fail_next(503)
    assert_error(client.post("/api/payments/stripe/confirm", json={"session_id": "cs_1"}), 502)
    assert event_topics(ledger) == ["Initiated", "Claimed"]
    assert (
        client.post("/api/payments/stripe/confirm", json={"session_id": "cs_1"}).json()["status"]
        == "completed"
    )


def test_oversized_body_is_refused_413(
    client: TestClient, settings: Any, ledger: PaymentLedger
) -> None:
    big = payment_body(customer_name="x" * 100) | {"padding": "y" * settings.max_body_bytes}
    assert_error(client.post("/api/payments", json=big), 413, "payload_too_large")

    def chunks() -> Any:
        for _ in range(settings.max_body_bytes // 1000 + 2):
            yield b" " * 1000  # chunked: no Content-Length to trust

    answer = client.post(
        "/api/payments", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(answer, 413, "payload_too_large")
    assert event_topics(ledger) == []


def test_unknown_route_uses_the_error_body(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
