"""What Toss really did with the money, as its documented webhooks report it: an overseas
easy-pay cancel that finishes later, and (below) a virtual-account deposit error."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.api.test_webhooks_toss import (  # noqa: F401
    KEY,
    awaiting_deposit,
    confirmed,
    payment_id,
    post,
)
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders
from tests.fixtures import load
from tests.inbox import result

ADMIN = {"Authorization": "Bearer admin-token"}


def cancel_status_changed(cancel: dict[str, Any]) -> dict[str, Any]:
    """The documented CANCEL_STATUS_CHANGED body for one of the payment's cancels: a Cancel
    object, which names its transactionKey and not the payment."""
    body = load("toss.cancel_status_changed")
    body["data"].update({k: cancel[k] for k in body["data"] if k in cancel})
    return body


def pending_cancel(fake: FakeProviders, status: str) -> dict[str, Any]:
    """The customer's overseas easy-pay cancel, accepted by Toss but still IN_PROGRESS."""
    paid = fake.toss_get(KEY)["totalAmount"]
    moved = fake.toss_set_status(
        KEY, status, cancels=[{"cancelAmount": paid, "cancelStatus": cancel_state(status)}]
    )
    cancel: dict[str, Any] = moved["cancels"][-1]
    return cancel


def cancel_state(status: str) -> str:
    return "IN_PROGRESS" if status == "CANCELED" else "DONE"


def finish(fake: FakeProviders, cancel: dict[str, Any]) -> dict[str, Any]:
    done = {**cancel, "cancelStatus": "DONE"}
    moved = fake.toss_set_status(KEY, "CANCELED", cancels=[done])
    finished: dict[str, Any] = moved["cancels"][-1]
    return finished


def test_an_overseas_cancel_that_finishes_later_is_recorded_from_its_cancel_object(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    confirmed: UUID,  # noqa: F811
) -> None:
    cancel = pending_cancel(fake, "CANCELED")
    first = result(client, post(client, fake.toss_webhook_body(KEY)))  # its cancel IN_PROGRESS
    assert (first["status"], first["outcome"]) == ("completed", "unchanged")
    finished = finish(fake, cancel)
    answer = post(client, cancel_status_changed(finished))
    assert answer.status_code == 200, answer.text
    row = result(client, answer)
    assert (row["outcome"], row["status"]) == ("applied", "refunded")
    payment = ledger.get_payment(confirmed)
    assert (payment.refunded_amount, payment.refund_ids) == (55000, [cancel["transactionKey"]])
    same = post(client, cancel_status_changed(finished))  # the same bytes: stored once
    assert same.json() == {**answer.json(), "outcome": "duplicate"}
    again = post(client, cancel_status_changed(finished), transmission="tx-again")
    assert again.json()["outcome"] == "accepted"  # another transmission: re-read, seen before
    assert result(client, again)["outcome"] == "duplicate"
    assert event_topics(ledger).count("Refunded") == 1


def test_a_cancel_object_for_a_cancel_never_seen_pending_is_ignored(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    confirmed: UUID,  # noqa: F811
) -> None:
    before = event_topics(ledger)
    row = result(client, post(client, load("toss.cancel_status_changed")))
    assert (row["outcome"], row["reason"]) == ("ignored", "no_payment_key")
    assert not fake.calls("GET", f"/v1/payments/{KEY}")
    assert event_topics(ledger) == before


def test_an_admin_refund_toss_leaves_in_progress_is_202_then_counted_by_the_webhook(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    confirmed: UUID,  # noqa: F811
) -> None:
    fake.toss_next_cancel_status("IN_PROGRESS")
    refund = client.post(
        f"/api/admin/payments/{confirmed}/refunds",
        json={"reason": "session cancelled"},
        headers={**ADMIN, "Idempotency-Key": "k-overseas"},
    )
    assert refund.status_code == 202, refund.text
    assert refund.json()["refund_status"] == "pending"
    assert ledger.get_payment(confirmed).refunded_amount == 0
    (cancel,) = fake.toss_get(KEY)["cancels"]
    row = result(client, post(client, cancel_status_changed(finish(fake, cancel))))
    assert (row["outcome"], row["status"]) == ("applied", "refunded")
    assert ledger.get_payment(confirmed).refunded_amount == 55000


def test_a_paid_then_cancelled_payment_whose_done_webhook_was_lost_is_refunded_not_cancelled(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    payment_id: UUID,  # noqa: F811
) -> None:
    """Toss approved (approvedAt) and later cancelled the payment; the ledger only hears of
    the cancel: the customer paid and got the money back, which is not 'never paid'."""
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    fake.toss_set_status(KEY, "CANCELED")
    row = result(client, post(client, fake.toss_webhook_body(KEY)))
    assert (row["outcome"], row["status"]) == ("applied", "refunded")
    payment = ledger.get_payment(payment_id)
    assert (payment.refunded_amount, payment.provider_payment_id) == (55000, KEY)


def test_a_deposit_error_after_done_reverses_the_completion_and_tells_the_trainer(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    awaiting_deposit: UUID,  # noqa: F811
) -> None:
    fake.toss_set_status(KEY, "DONE")
    deposit = post(client, fake.toss_deposit_callback_body(KEY, "ps_right_secret"))
    assert result(client, deposit)["status"] == "completed"
    fake.toss_set_status(KEY, "WAITING_FOR_DEPOSIT")  # the bank took the deposit back
    answer = post(client, fake.toss_webhook_body(KEY))
    assert answer.status_code == 200, answer.text
    row = result(client, answer)
    assert (row["outcome"], row["status"]) == ("applied", "pending")
    payment = ledger.get_payment(awaiting_deposit)
    assert (payment.status, payment.completed_at) == ("pending", None)
    assert event_topics(ledger).count("CompletionReversed") == 1
    assert result(client, post(client, fake.toss_webhook_body(KEY)))["outcome"] == "duplicate"
    assert event_topics(ledger).count("CompletionReversed") == 1
    head = row["position"]
    inbox = client.get(
        f"/api/trainers/trainer-9/notifications?min_position={head}", headers=ADMIN
    ).json()["items"]
    assert [n["title"] for n in inbox][:1] == ["Payment reversed"]
    stats = client.get(f"/api/admin/stats?min_position={head}", headers=ADMIN).json()
    assert stats["total_revenue"] == {} and stats["pending_count"] == 1

    fake.toss_set_status(KEY, "DONE")  # deposited again: completed again, counted once
    again = result(client, post(client, fake.toss_deposit_callback_body(KEY, "ps_right_secret")))
    assert (again["outcome"], again["status"]) == ("applied", "completed")
    assert ledger.get_payment(awaiting_deposit).status == "completed"
