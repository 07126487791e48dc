"""Admin refunds over HTTP: the provider's API is called, the ledger records what it reports."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.api.test_checkout import assert_error, payment_body, stripe_body
from tests.api.test_webhooks_stripe import deliver_raw, refund_event
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders

ADMIN = {"Authorization": "Bearer admin-token"}


def refund(
    client: TestClient, payment_id: UUID, key: str, headers: dict[str, str] = ADMIN, **body: Any
) -> Any:
    return client.post(
        f"/api/admin/payments/{payment_id}/refunds",
        json={"reason": "customer cancelled the session", **body},
        headers={**headers, "Idempotency-Key": key},
    )


@pytest.fixture
def toss_payment(client: TestClient) -> UUID:
    created = client.post("/api/payments", json=payment_body())
    confirm = {"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000}
    assert client.post("/api/payments/toss/confirm", json=confirm).status_code == 200
    return UUID(created.json()["payment_id"])


@pytest.fixture
def stripe_payment(client: TestClient, fake: FakeProviders) -> UUID:
    created = client.post("/api/payments", json=stripe_body())
    fake.stripe_session("cs_1", "order-s1", 4200, "usd", payment_intent="pi_1")
    assert (
        client.post("/api/payments/stripe/confirm", json={"session_id": "cs_1"}).status_code == 200
    )
    return UUID(created.json()["payment_id"])


def test_toss_partial_then_full_refund_cancels_at_toss_and_records_each(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, toss_payment: UUID
) -> None:
    first = refund(client, toss_payment, "k1", amount=5000)
    assert first.status_code == 201, first.text
    assert (first.json()["amount"], first.json()["status"]) == (5000, "partially_refunded")
    cancel = fake.calls("POST", "/v1/payments/tpk_1/cancel")[0]
    assert cancel.json == {"cancelReason": "customer cancelled the session", "cancelAmount": 5000}

    rest = refund(client, toss_payment, "k2")  # no amount: everything that is left
    assert rest.status_code == 201 and rest.json()["status"] == "refunded"
    assert rest.json()["amount"] == 50000
    keys = [c["transactionKey"] for c in fake.toss_get("tpk_1")["cancels"]]
    assert ledger.get_payment(toss_payment).refund_ids == keys
    assert [first.json()["refund_id"], rest.json()["refund_id"]] == keys


def test_same_idempotency_key_returns_the_first_refund_and_refunds_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, toss_payment: UUID
) -> None:
    first = refund(client, toss_payment, "same", amount=1000)
    again = refund(client, toss_payment, "same", amount=1000)
    assert again.status_code == 201
    assert again.json()["refund_id"] == first.json()["refund_id"]
    assert len(fake.toss_get("tpk_1")["cancels"]) == 1
    assert event_topics(ledger).count("Refunded") == 1
    assert ledger.get_payment(toss_payment).refunded_amount == 1000


def test_stripe_refund_and_its_webhook_count_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    answer = refund(client, stripe_payment, "k1", amount=1200)
    assert answer.status_code == 201, answer.text
    assert answer.json()["refund_id"].startswith("re_")
    assert answer.json()["status"] == "partially_refunded"
    event = refund_event("evt_refund_1", 1200)
    event["data"]["object"]["payment_intent"] = "pi_1"
    assert deliver_raw(client, fake, event).json()["outcome"] == "unchanged"
    assert ledger.get_payment(stripe_payment).refunded_amount == 1200
    assert event_topics(ledger).count("Refunded") == 1


def test_refund_beyond_what_is_left_is_declined_by_the_provider_and_records_nothing(
    client: TestClient, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    refund(client, stripe_payment, "k1", amount=4000)
    before = event_topics(ledger)
    assert_error(refund(client, stripe_payment, "k2", amount=500), 400, "amount_too_large")
    assert_error(refund(client, stripe_payment, "k3", amount=99999), 400, "invalid_refund_amount")
    assert event_topics(ledger) == before


def test_refund_needs_a_paid_payment_an_idempotency_key_and_an_admin(
    client: TestClient, ledger: PaymentLedger
) -> None:
    pending = UUID(client.post("/api/payments", json=payment_body()).json()["payment_id"])
    assert_error(refund(client, pending, "k"), 409, "invalid_state")
    no_key = client.post(
        f"/api/admin/payments/{pending}/refunds", json={"reason": "x"}, headers=ADMIN
    )
    assert_error(no_key, 422)
    unknown = UUID("00000000-0000-4000-8000-000000000000")
    assert_error(refund(client, unknown, "k"), 404)
    auditor = {"Authorization": "Bearer auditor-token"}
    assert_error(refund(client, pending, "k", headers=auditor), 403)
    assert_error(refund(client, pending, "k", headers={}), 401)
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_toss_outage_during_refund_is_502_and_records_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, toss_payment: UUID
) -> None:
    before = event_topics(ledger)
    fake.toss_fail_next(503)
    assert_error(refund(client, toss_payment, "k1", amount=100), 502, "provider_unavailable")
    assert event_topics(ledger) == before
    retried = refund(client, toss_payment, "k1", amount=100)  # same key: safe to retry
    assert retried.status_code == 201
    assert ledger.get_payment(toss_payment).refunded_amount == 100
