"""Self-tests: the fake must satisfy the real httpx client and the real stripe SDK."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
import stripe

from tests.fake_providers import FakeProviders


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProviders]:
    with FakeProviders() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProviders) -> FakeProviders:
    server.reset()
    return server


def _toss(fake: FakeProviders) -> httpx.Client:
    token = base64.b64encode(f"{fake.toss_secret_key}:".encode()).decode()
    return httpx.Client(
        base_url=fake.base_url, headers={"Authorization": f"Basic {token}"}, timeout=5
    )


def _stripe(fake: FakeProviders) -> stripe.StripeClient:
    return stripe.StripeClient(
        fake.stripe_api_key,
        base_addresses={"api": fake.base_url},
        # allow_sync_methods: HTTPXClient is async-only by default in stripe 16.
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )


def test_webhook_signature_accepted_by_stripe_sdk(fake: FakeProviders) -> None:
    payload = fake.stripe_event("checkout.session.completed", {"id": "cs_1", "object": "x"})
    event = stripe.Webhook.construct_event(
        payload, fake.stripe_signature(payload), fake.stripe_webhook_secret
    )
    assert event.type == "checkout.session.completed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            payload, fake.stripe_signature(payload, secret="whsec_other"), "whsec_test_fake"
        )


def test_stripe_sdk_retrieves_session_and_refunds(fake: FakeProviders) -> None:
    fake.stripe_session("cs_test_1", "order-1", 1500, payment_intent="pi_1")
    client = _stripe(fake)
    session = client.v1.checkout.sessions.retrieve("cs_test_1")
    assert session.amount_total == 1500 and session.payment_status == "paid"
    assert session.metadata is not None and session.metadata["order_id"] == "order-1"
    refund = client.v1.refunds.create(
        params={"payment_intent": "pi_1", "amount": 500, "metadata": {"order_id": "order-1"}},
        options={"idempotency_key": "k1"},
    )
    again = client.v1.refunds.create(
        params={"payment_intent": "pi_1", "amount": 500, "metadata": {"order_id": "order-1"}},
        options={"idempotency_key": "k1"},
    )
    assert refund.status == "succeeded" and refund.amount == 500 and again.id == refund.id
    assert refund.metadata is not None and refund.metadata["order_id"] == "order-1"
    assert len(fake.stripe_refunds()) == 1
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.refunds.create(params={"payment_intent": "pi_1", "amount": 5000})
    assert exc.value.code == "amount_too_large"


def test_stripe_unknown_session_and_bad_key(fake: FakeProviders) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        _stripe(fake).v1.checkout.sessions.retrieve("cs_missing")
    assert exc.value.code == "resource_missing" and exc.value.http_status == 404
    bad = stripe.StripeClient(
        "sk_test_wrong",
        base_addresses={"api": fake.base_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.checkout.sessions.retrieve("cs_missing")


def test_toss_confirm_then_already_processed_then_cancel(fake: FakeProviders) -> None:
    body = {"paymentKey": "pk_1", "orderId": "order-1", "amount": 10000}
    with _toss(fake) as http:
        first = http.post("/v1/payments/confirm", json=body)
        assert first.status_code == 200
        assert first.json()["status"] == "DONE"
        assert first.json()["approvedAt"].endswith("+09:00")
        second = http.post("/v1/payments/confirm", json=body)
        assert second.status_code == 400
        assert second.json()["code"] == "ALREADY_PROCESSED_PAYMENT"

        cancel = {"cancelReason": "customer", "cancelAmount": 4000}
        c1 = http.post("/v1/payments/pk_1/cancel", json=cancel, headers={"Idempotency-Key": "i"})
        c2 = http.post("/v1/payments/pk_1/cancel", json=cancel, headers={"Idempotency-Key": "i"})
        assert c1.json() == c2.json()
        assert c1.json()["status"] == "PARTIAL_CANCELED"
        assert c1.json()["balanceAmount"] == 6000
        assert http.get("/v1/payments/nope").json()["code"] == "NOT_FOUND_PAYMENT"
        assert httpx.get(f"{fake.base_url}/v1/payments/pk_1").json()["code"] == "UNAUTHORIZED_KEY"


def test_toss_injected_failures(fake: FakeProviders) -> None:
    fake.toss_payment("pk_2", "order-2", 5000)
    fake.toss_fail_next(500)
    fake.toss_fail_next_confirm(
        "REJECT_CARD_PAYMENT", "한도초과 혹은 잔액부족으로 결제에 실패했습니다."
    )
    body = {"paymentKey": "pk_2", "orderId": "order-2", "amount": 5000}
    with _toss(fake) as http:
        assert http.post("/v1/payments/confirm", json=body).status_code == 500
        rejected = http.post("/v1/payments/confirm", json=body)
        assert (rejected.status_code, rejected.json()["code"]) == (400, "REJECT_CARD_PAYMENT")
        fake.toss_fail_next(500, delay=1.0)
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/payments/confirm", json=body, timeout=0.2)
        assert http.post("/v1/payments/confirm", json=body).json()["status"] == "DONE"


def test_toss_virtual_account_and_webhook_bodies(fake: FakeProviders) -> None:
    fake.toss_virtual_account_next_confirm("ps_secret")
    body = {"paymentKey": "pk_va", "orderId": "order-va", "amount": 30000}
    with _toss(fake) as http:
        paid = http.post("/v1/payments/confirm", json=body).json()
    assert paid["status"] == "WAITING_FOR_DEPOSIT" and paid["secret"] == "ps_secret"
    assert paid["virtualAccount"]["accountNumber"]
    assert b'"secret": "ps_secret"' in fake.toss_deposit_callback_body("pk_va", "ps_secret")
    fake.toss_set_status("pk_va", "DONE")
    assert b'"status": "DONE"' in fake.toss_webhook_body("pk_va")


def test_requests_are_recorded(fake: FakeProviders) -> None:
    assert fake.requests == []
    with _toss(fake) as http:
        http.post("/v1/payments/confirm", json={"paymentKey": "k", "orderId": "o", "amount": 1})
    (req,) = fake.calls("POST", "/v1/payments")
    assert req.json == {"paymentKey": "k", "orderId": "o", "amount": 1}
    assert req.provider == "toss"
    assert (req.header("Authorization") or "").startswith("Basic ")
    assert fake.provider_calls("stripe") == []
