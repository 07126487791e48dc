"""Toss webhooks over HTTP: stored, then re-read from the (fake) Toss API by the inbox
processor, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import assert_error, payment_body
from tests.api.test_webhooks_stripe import live_server
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.fixtures import load
from tests.inbox import ADMIN, result

WEBHOOK = "/api/webhooks/toss"
KEY = "tpk_1"
CONFIRM = {"paymentKey": KEY, "orderId": "order-1001", "amount": 55000}
TRANSMISSION = "tosspayments-webhook-transmission-id"


def post(
    client: TestClient, body: bytes | dict[str, Any], transmission: str | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if transmission is not None:
        headers[TRANSMISSION] = transmission
    return client.post(WEBHOOK, content=content, headers=headers)


def applied(client: TestClient, body: bytes | dict[str, Any]) -> dict[str, Any]:
    """Post one delivery and wait for what the processor made of it (the inbox's row)."""
    row: dict[str, Any] = result(client, post(client, body))
    return row


def stored(client: TestClient) -> list[dict[str, Any]]:
    """Every delivery in the inbox (a refused one is never stored)."""
    page = client.get("/api/admin/webhooks", params={"provider": "toss"}, headers=ADMIN)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


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
    assert answer.json()["received"] is True and answer.json()["outcome"] == "accepted"
    row = result(client, answer)
    assert (row["outcome"], row["status"]) == ("applied", "completed")
    assert (row["provider"], row["type"], row["attempts"]) == ("toss", "PAYMENT_STATUS_CHANGED", 1)
    assert UUID(row["payment_id"]) == payment_id and row["position"] is not None
    assert fake.calls("GET", f"/v1/payments/{KEY}"), "the payment is re-read from Toss"
    assert event_topics(ledger) == [
        "Initiated",
        "Claimed",
        "Completed",
        "Sent",
        "Decided",
        "Applied",
    ]


def test_redelivered_status_change_is_a_duplicate(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    body = fake.toss_webhook_body(KEY)
    first = post(client, body)
    assert result(client, first)["outcome"] == "applied"
    again = post(client, body)  # the same bytes: the same delivery, stored once
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert again.json()["delivery_id"] == first.json()["delivery_id"]
    # Toss's retry of one transmission carries its id: a duplicate whatever the body.
    retried = post(client, fake.toss_webhook_body(KEY), transmission="tx-1")
    assert result(client, retried)["outcome"] == "duplicate"  # the ledger's receipt
    resent = post(client, fake.toss_webhook_body(KEY), transmission="tx-1")
    assert resent.json() == {**retried.json(), "outcome": "duplicate"}
    assert len(stored(client)) == 2
    assert event_topics(ledger) == [
        "Initiated",
        "Claimed",
        "Completed",
        "Sent",
        "Decided",
        "Applied",
    ]


def test_status_the_ledger_already_has_appends_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    before = event_topics(ledger)
    row = applied(client, fake.toss_webhook_body(KEY))
    assert (row["outcome"], row["status"]) == ("unchanged", "completed")
    assert event_topics(ledger) == before


def test_full_cancel_after_payment_refunds_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    fake.toss_set_status(KEY, "CANCELED")
    row = applied(client, fake.toss_webhook_body(KEY))
    assert (row["outcome"], row["status"]) == ("applied", "refunded")
    payment = ledger.get_payment(confirmed)
    assert payment.refunded_amount == 55000
    assert payment.refund_ids == [fake.toss_get(KEY)["cancels"][0]["transactionKey"]]


def test_new_partial_cancels_apply_together_and_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    first_two = [{"cancelAmount": 10000}, {"cancelAmount": 5000}]
    cancels = fake.toss_set_status(KEY, "PARTIAL_CANCELED", cancels=first_two)["cancels"]
    assert applied(client, fake.toss_webhook_body(KEY))["status"] == "partially_refunded"
    assert ledger.get_payment(confirmed).refunded_amount == 15000
    # One save: both refunds, each told to the trainer (inbox) and to trainer and customer.
    refunds = ["Refunded", "Refunded", "Sent", "Sent", *["Decided"] * 4, "Applied"]
    assert event_topics(ledger)[-len(refunds) :] == refunds

    third = [*cancels, {"cancelAmount": 40000}]
    fake.toss_set_status(KEY, "CANCELED", cancels=third)
    assert applied(client, fake.toss_webhook_body(KEY))["status"] == "refunded"
    assert applied(client, fake.toss_webhook_body(KEY))["outcome"] == "duplicate"
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

        def send(n: int) -> httpx.Response:
            # Half are the same bytes (one delivery), half distinct transmissions of it.
            headers = {TRANSMISSION: f"tx-{n}"} if n % 2 else {}
            return httpx.post(f"{base_url}{WEBHOOK}", content=body, headers=headers, timeout=30)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(send, range(12)))
        assert [a.status_code for a in answers] == [200] * 12
        with httpx.Client(base_url=base_url) as http:
            rows = [result(http, a) for a in answers]  # type: ignore[arg-type]
        topics = event_topics(ledger)
    outcomes = [a.json()["outcome"] for a in answers]
    assert outcomes.count("accepted") == 7 and outcomes.count("duplicate") == 5
    assert len({a.json()["delivery_id"] for a in answers}) == 7
    applied_once = {r["delivery_id"] for r in rows if r["outcome"] == "applied"}
    assert len(applied_once) == 1
    assert all(r["outcome"] in ("applied", "duplicate") for r in rows)
    assert topics.count("Refunded") == 3 and topics.count("Applied") == 1


def test_partial_cancel_of_a_payment_never_seen_paid_completes_and_refunds_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    fake.toss_set_status(KEY, "PARTIAL_CANCELED", cancels=[{"cancelAmount": 5000}])
    assert applied(client, fake.toss_webhook_body(KEY))["status"] == "partially_refunded"
    topics = event_topics(ledger)
    assert topics.count("Completed") == 1 and topics.count("Sent") == 2  # the sale, the refund
    assert ledger.get_payment(payment_id).refunded_amount == 5000


def test_cancel_before_payment_cancels_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="WAITING_FOR_DEPOSIT")
    fake.toss_set_status(KEY, "CANCELED")
    row = applied(client, fake.toss_webhook_body(KEY))
    assert (row["outcome"], row["status"]) == ("applied", "cancelled")
    assert ledger.get_payment(payment_id).refunded_amount == 0


def test_aborted_fails_the_payment_with_tosss_failure(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="ABORTED")
    fake.toss_set_failure(KEY, "REJECT_CARD_COMPANY", "카드사에서 거절했습니다.")
    assert applied(client, fake.toss_webhook_body(KEY))["status"] == "failed"
    payment = ledger.get_payment(payment_id)
    assert (payment.failure_code, payment.failure_message) == (
        "REJECT_CARD_COMPANY",
        "카드사에서 거절했습니다.",
    )


def test_expired_cancels_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="EXPIRED")
    assert applied(client, fake.toss_webhook_body(KEY))["status"] == "cancelled"
    assert ledger.get_payment(payment_id).status == "cancelled"


def test_the_toss_api_wins_over_the_webhook_body(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 55000, status="ABORTED")
    forged = status_change(fake, status="DONE", approvedAt="2026-11-25T12:00:00+09:00")
    assert applied(client, forged)["status"] == "failed"

    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    claims_cancel = status_change(fake, status="CANCELED", totalAmount=1)
    assert applied(client, claims_cancel)["status"] == "completed"
    assert ledger.get_payment(payment_id).refunded_amount == 0


def test_stale_done_delivered_after_the_cancel_leaves_the_payment_refunded(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    stale_done = fake.toss_webhook_body(KEY)
    fake.toss_set_status(KEY, "CANCELED")
    assert applied(client, fake.toss_webhook_body(KEY))["status"] == "refunded"
    before = event_topics(ledger)
    late = post(client, stale_done)
    assert late.json()["outcome"] == "accepted"  # another delivery: re-read, then seen before
    row = result(client, late)
    assert (row["outcome"], row["status"]) == ("duplicate", "refunded")
    assert event_topics(ledger) == before


def test_cancel_status_changed_rereads_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, confirmed: UUID
) -> None:
    fake.toss_set_status(KEY, "CANCELED")
    body = load("toss.cancel_status_changed")
    row = applied(client, body)
    picked = {k: row[k] for k in ("outcome", "payment_id", "status", "position", "reason")}
    assert picked == {
        "outcome": "ignored",
        "payment_id": None,
        "status": None,
        "position": None,
        "reason": "no_payment_key",
    }
    assert row["type"] == "CANCEL_STATUS_CHANGED"
    assert not fake.calls("GET", f"/v1/payments/{KEY}")
    body["data"]["paymentKey"] = KEY  # when Toss names the payment, it is re-read
    assert applied(client, body)["status"] == "refunded"
    assert fake.calls("GET", f"/v1/payments/{KEY}")


def test_unknown_order_is_404_and_unknown_payment_fails_the_delivery(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    fake.toss_payment(KEY, "order-elsewhere", 55000, status="DONE")
    assert_error(post(client, fake.toss_webhook_body(KEY)), 404, "unknown_order")
    assert stored(client) == []  # refused: not stored
    # A body naming no order is left to the re-read, which names one the ledger lacks.
    unnamed = json.loads(fake.toss_webhook_body(KEY))
    del unnamed["data"]["orderId"]
    row = applied(client, unnamed)
    assert row["outcome"] == "failed" and row["reason"].startswith("unknown_order: ")
    assert fake.calls("GET", f"/v1/payments/{KEY}")
    # An order the ledger knows, a paymentKey Toss does not.
    assert client.post("/api/payments", json=payment_body()).status_code == 201
    body = json.loads(fake.toss_webhook_body(KEY))
    body["data"].update(orderId="order-1001", paymentKey="tpk_unknown_to_toss")
    row = applied(client, body)
    assert row["outcome"] == "failed" and row["reason"].startswith("unknown_payment: ")
    assert row["status"] is None and row["position"] is None
    assert fake.calls("GET", "/v1/payments/tpk_unknown_to_toss")
    assert event_topics(ledger) == ["Initiated", "Claimed"]


@pytest.fixture
def retrying_client(database_url: str, fake: FakeProviders) -> Iterator[TestClient]:
    """An app whose processor retries an unreachable Toss soon (0.5 s, then 1 s...)."""
    settings = make_settings(database_url, fake, inbox_retry_seconds=0.5)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("failure", [{"status": 500}, {"status": 503}, {"delay": 1.5}])
def test_toss_api_down_keeps_the_delivery_and_applies_it_once_toss_is_back(
    retrying_client: TestClient, fake: FakeProviders, failure: dict[str, Any]
) -> None:
    client = retrying_client
    ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
    assert client.post("/api/payments", json=payment_body()).status_code == 201
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    body = fake.toss_webhook_body(KEY)
    fake.toss_fail_next(**{"status": 200, **failure})  # the first re-read only
    answer = post(client, body)
    assert answer.json()["outcome"] == "accepted"  # acknowledged: Toss need not retry
    waiting = result(client, answer, waiting=("accepted",))
    assert waiting["outcome"] == "retrying", waiting
    assert waiting["reason"].startswith("provider_unavailable"), waiting
    assert waiting["attempts"] == 1 and waiting["next_attempt_at"] is not None
    assert event_topics(ledger) == ["Initiated", "Claimed"]
    # Toss answers again: the processor's retry applies the delivery, once.
    row = result(client, answer)
    assert (row["outcome"], row["status"], row["attempts"]) == ("applied", "completed", 2)
    assert len(fake.calls("GET", f"/v1/payments/{KEY}")) == 2
    assert event_topics(ledger) == [
        "Initiated",
        "Claimed",
        "Completed",
        "Sent",
        "Decided",
        "Applied",
    ]
    again = post(client, body)  # Toss retrying the same delivery after all
    assert again.json() == {**answer.json(), "outcome": "duplicate"}
    assert result(client, again)["attempts"] == 2
    assert event_topics(ledger).count("Completed") == 1


def test_amount_reported_by_toss_must_match(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.toss_payment(KEY, "order-1001", 100, status="DONE")
    row = applied(client, fake.toss_webhook_body(KEY))
    assert row["outcome"] == "failed" and row["reason"].startswith("amount_mismatch: ")
    assert event_topics(ledger) == ["Initiated", "Claimed"]
    assert ledger.get_payment(payment_id).status == "pending"


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
    row = applied(client, fake.toss_deposit_callback_body(KEY, "ps_right_secret"))
    assert (row["outcome"], row["status"], row["type"]) == (
        "applied",
        "completed",
        "DEPOSIT_CALLBACK",
    )
    assert event_topics(ledger) == [
        "Initiated",
        "Claimed",
        "DepositAwaited",
        "Completed",
        "Sent",
        "Decided",
        "Applied",
    ]
    # The PAYMENT_STATUS_CHANGED twin of the same deposit changes nothing more.
    assert applied(client, fake.toss_webhook_body(KEY))["outcome"] == "duplicate"
    assert event_topics(ledger).count("Completed") == 1


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
    assert stored(client) == []
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
    assert stored(client) == []
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
    assert stored(client) == []
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_unhandled_toss_event_types_are_ignored(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    body = {"eventType": "METHOD_UPDATED", "createdAt": "2026-11-25T12:00:00.000000", "data": {}}
    answer = post(client, body)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "accepted")
    row = result(client, answer)
    assert (row["outcome"], row["reason"]) == ("ignored", "unhandled_type")
    assert fake.calls("GET", "/v1/payments") == []
    assert event_topics(ledger) == []


def test_oversized_toss_body_is_refused_413(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    body = {"eventType": "PAYMENT_STATUS_CHANGED", "data": {"pad": "x" * settings.max_body_bytes}}
    assert_error(post(client, body), 413, "payload_too_large")
    assert stored(client) == []
    assert event_topics(ledger) == []
