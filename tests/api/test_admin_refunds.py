"""Admin refunds over HTTP: the provider's API is called, the ledger records what it reports."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.api.test_checkout import assert_error, payment_body, stripe_body
from tests.api.test_webhooks_stripe import (
    deliver_raw,
    live_server,
    refund_event,
    refunds_recorded,
    stripe_refunds,
)
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import result

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


def test_a_charge_refunded_webhook_after_admin_refunds_counts_nothing_twice(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    answer = refund(client, stripe_payment, "k1", amount=1200)
    assert answer.status_code == 201, answer.text
    assert answer.json()["refund_id"].startswith("re_")
    assert answer.json()["status"] == "partially_refunded"
    fake.stripe_refund("pi_1", 800, reason="refunded in the Dashboard")
    first = result(client, deliver_raw(client, fake, refund_event("evt_refund_1", 1200)))
    # The Dashboard's refund is listed at Stripe by then: recorded now, the admin's not again.
    assert (first["outcome"], first["status"]) == ("applied", "partially_refunded")
    second = result(client, deliver_raw(client, fake, refund_event("evt_refund_2", 2000)))
    assert (second["outcome"], second["status"]) == ("unchanged", "partially_refunded")
    assert refunds_recorded(ledger, stripe_payment) == stripe_refunds(fake)
    assert ledger.get_payment(stripe_payment).refunded_amount == 2000

    again = refund(client, stripe_payment, "k1", amount=1200)  # the same key: the same refund
    assert again.status_code == 201
    assert (again.json()["refund_id"], again.json()["position"]) == (
        answer.json()["refund_id"],
        None,
    )
    assert event_topics(ledger).count("Refunded") == 2


def test_two_concurrent_partial_stripe_refunds_are_recorded_each_under_its_own_id(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake, provider_timeout_seconds=10.0)
    with live_server(settings) as (base_url, ledger):
        payment_id = paid_stripe_payment(base_url, fake)
        fake.stripe_hold_refund_lists(until=2)  # both refunds exist before either is listed

        def post(job: tuple[str, int]) -> httpx.Response:
            return httpx.post(
                f"{base_url}/api/admin/payments/{payment_id}/refunds",
                json={"reason": "two admins at once", "amount": job[1]},
                headers={**ADMIN, "Idempotency-Key": job[0]},
                timeout=30,
            )

        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(post, [("a", 1000), ("b", 700)]))
        recorded = refunds_recorded(ledger, payment_id)

    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert sorted(recorded) == sorted(stripe_refunds(fake))
    assert sorted(a.json()["amount"] for a in answers) == [700, 1000]
    assert {a.json()["refund_id"] for a in answers} == {r for r, _ in recorded}


def paid_stripe_payment(base_url: str, fake: FakeProviders) -> UUID:
    created = httpx.post(f"{base_url}/api/payments", json=stripe_body())
    fake.stripe_session("cs_1", "order-s1", 4200, "usd", payment_intent="pi_1")
    confirmed = httpx.post(f"{base_url}/api/payments/stripe/confirm", json={"session_id": "cs_1"})
    assert confirmed.status_code == 200, confirmed.text
    return UUID(created.json()["payment_id"])


def test_refunds_recorded_by_running_total_are_not_counted_again(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    """Histories from before per-refund recording hold deltas under other ids: here the
    webhook's event id for re_1. Refunds are then recorded only up to Stripe's total."""
    fake.stripe_refund("pi_1", 1200)
    ledger.refund(stripe_payment, "evt_old_charge_refunded", 1200, "refunded at Stripe")
    second = fake.stripe_refund("pi_1", 800)  # not delivered yet
    answer = refund(client, stripe_payment, "k1", amount=1000)
    assert answer.status_code == 201, answer.text
    assert refunds_recorded(ledger, stripe_payment) == [
        ("evt_old_charge_refunded", 1200),
        (second["id"], 800),
        (answer.json()["refund_id"], 1000),
    ]
    late = result(client, deliver_raw(client, fake, refund_event("evt_refund_3", 3000)))
    assert late["outcome"] == "unchanged"
    assert ledger.get_payment(stripe_payment).refunded_amount == 3000


def test_stripe_refund_the_ledger_cannot_record_is_409_and_appends_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    """An old history counted a pending refund that then failed: the ledger counts more
    than Stripe refunded, so the new refund finds nothing left to record."""
    pending = fake.stripe_refund("pi_1", 3000, status="pending")
    ledger.refund(stripe_payment, pending["id"], 3000, "counted while pending")
    fake.stripe_set_refund_status(pending["id"], "failed")
    before = event_topics(ledger)
    error = assert_error(refund(client, stripe_payment, "k1", amount=1000), 409)
    made = fake.stripe_refunds()[-1]
    assert (error["code"], error["details"]) == (
        "refund_not_recorded",
        {"refund_id": made["id"], "amount": 1000},
    )
    assert made["id"] in error["message"] and "recorded nothing" in error["message"]
    assert event_topics(ledger) == before


def test_pending_stripe_refund_is_202_and_counted_once_it_succeeds(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    fake.stripe_next_refund_status("pending")
    before = event_topics(ledger)
    answer = refund(client, stripe_payment, "k1", amount=1200)
    assert answer.status_code == 202, answer.text
    assert (answer.json()["refund_status"], answer.json()["status"]) == ("pending", "completed")
    assert event_topics(ledger) == before

    fake.stripe_set_refund_status(answer.json()["refund_id"], "succeeded")
    delivered = result(client, deliver_raw(client, fake, refund_event("evt_refund_1", 1200)))
    assert (delivered["outcome"], delivered["status"]) == ("applied", "partially_refunded")
    again = refund(client, stripe_payment, "k1", amount=1200)
    assert (again.status_code, again.json()["refund_status"]) == (201, "succeeded")
    assert refunds_recorded(ledger, stripe_payment) == [(answer.json()["refund_id"], 1200)]


def test_refund_beyond_what_is_left_is_declined_by_the_provider_and_records_nothing(
    client: TestClient, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    refund(client, stripe_payment, "k1", amount=4000)
    before = event_topics(ledger)
    declined = assert_error(
        refund(client, stripe_payment, "k2", amount=500), 400, "amount_too_large"
    )
    assert declined["details"] == {"provider": "stripe"}  # Stripe's code, not the ledger's
    ours = assert_error(
        refund(client, stripe_payment, "k3", amount=99999), 400, "invalid_refund_amount"
    )
    assert "details" not in ours
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


def test_toss_cancel_the_ledger_cannot_record_is_409_and_kept_as_a_rejected_transition(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, toss_payment: UUID
) -> None:
    """The ledger counts a refund Toss never made; Toss then cancels more than the ledger
    has left. The cancel is applied like any Toss report: rejected, recorded for auditors."""
    ledger.refund(toss_payment, "not-at-toss", 50000, "recorded by hand")
    error = assert_error(refund(client, toss_payment, "k1", amount=10000), 409)
    key = fake.toss_get("tpk_1")["cancels"][-1]["transactionKey"]
    assert (error["code"], error["details"]) == (
        "refund_not_recorded",
        {"refund_id": key, "amount": 10000},
    )
    assert event_topics(ledger)[-1] == "TransitionRejected"
    assert ledger.get_payment(toss_payment).refunded_amount == 50000


def test_stripe_refund_whose_list_call_fails_is_502_and_the_same_key_records_it_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, stripe_payment: UUID
) -> None:
    """Stripe refunded the money; only reading it back failed: never a 4xx, and a retry with
    the same key finds the same refund instead of making a second one."""
    before = event_topics(ledger)
    fake.stripe_fail_next(status=200)  # the create goes through
    fake.stripe_fail_next(status=500)  # the refunds list that follows does not
    answer = refund(client, stripe_payment, "k-list", amount=1500)
    assert_error(answer, 502, "provider_unavailable")
    assert len(fake.stripe_refunds()) == 1, "Stripe did refund"
    assert event_topics(ledger) == before
    again = refund(client, stripe_payment, "k-list", amount=1500)
    assert again.status_code == 201, again.text
    (made,) = fake.stripe_refunds()
    assert refunds_recorded(ledger, stripe_payment) == [(made["id"], 1500)]
