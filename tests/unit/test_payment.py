"""The Payment aggregate's state machine, without any store."""

from datetime import UTC, datetime

import pytest

from ledger.payment import Payment, Status

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_payment(amount: int = 15000, provider: str = "toss") -> Payment:
    return Payment(
        order_id="order-1",
        booking_id="booking-1",
        customer_id="cust-1",
        customer_name="Kim Minji",
        trainer_id="trainer-1",
        booking_date="2026-12-01",
        amount=amount,
        currency="KRW",
        provider=provider,
    )


def event_names(payment: Payment) -> list[str]:
    return [type(e).__name__ for e in payment.pending_events]


def test_id_is_deterministic_per_provider_and_order() -> None:
    assert new_payment().id == Payment.create_id("toss", "order-1")
    assert Payment.create_id("toss", "order-1") != Payment.create_id("stripe", "order-1")


def test_completion_then_partial_and_full_refund() -> None:
    payment = new_payment()
    assert payment.complete("pk", "카드", NOW)
    assert payment.refund("r1", 5000, "customer asked", NOW)
    assert payment.status == Status.PARTIALLY_REFUNDED and payment.refundable_amount == 10000
    assert payment.refund("r2", 10000, "rest", NOW)
    assert payment.status == Status.REFUNDED
    assert event_names(payment) == ["Initiated", "Completed", "Refunded", "Refunded"]


def test_same_report_twice_appends_nothing() -> None:
    payment = new_payment()
    assert payment.complete("pk", "card", NOW)
    assert not payment.complete("pk", "card", NOW)
    assert payment.refund("r1", 100, "", NOW)
    assert not payment.refund("r1", 100, "", NOW)
    assert event_names(payment) == ["Initiated", "Completed", "Refunded"]
    expired = new_payment()
    assert expired.cancel("expired", NOW)
    assert not expired.cancel("expired", NOW)
    assert event_names(expired) == ["Initiated", "Cancelled"]


def test_failure_after_completion_is_recorded_but_changes_nothing() -> None:
    payment = new_payment()
    payment.complete("pk", "card", NOW)
    assert payment.fail("CARD_DECLINED", "late report", NOW)
    assert payment.status == Status.COMPLETED
    assert payment.failure_code is None
    assert event_names(payment)[-1] == "TransitionRejected"


def test_expiry_after_completion_is_rejected() -> None:
    payment = new_payment()
    payment.complete("pk", "card", NOW)
    payment.cancel("expired", NOW)
    assert payment.status == Status.COMPLETED
    assert event_names(payment)[-1] == "TransitionRejected"


def test_a_failed_attempt_can_be_followed_by_success() -> None:
    payment = new_payment()
    payment.fail("card_declined", "Your card was declined.", NOW)
    assert payment.status == Status.FAILED
    payment.complete("pi_1", "card", NOW)
    assert payment.status == Status.COMPLETED


@pytest.mark.parametrize("amount", [0, -1, 15001])
def test_refund_outside_the_refundable_amount_is_rejected(amount: int) -> None:
    payment = new_payment()
    payment.complete("pk", "card", NOW)
    payment.refund("r1", amount, "", NOW)
    assert payment.status == Status.COMPLETED and payment.refunded_amount == 0
    assert event_names(payment)[-1] == "TransitionRejected"


def test_refund_of_a_pending_payment_is_rejected() -> None:
    payment = new_payment()
    payment.refund("r1", 100, "", NOW)
    assert payment.status == Status.PENDING
    assert event_names(payment)[-1] == "TransitionRejected"


def test_cancelled_payment_cannot_complete() -> None:
    payment = new_payment()
    payment.cancel("expired", NOW)
    payment.complete("pk", "card", NOW)
    assert payment.status == Status.CANCELLED


def test_replaying_events_gives_the_same_state() -> None:
    payment = new_payment()
    payment.complete("pk", "card", NOW)
    payment.refund("r1", 4000, "partial", NOW)
    replayed = None
    for domain_event in payment.collect_events():
        replayed = domain_event.mutate(replayed)
    assert replayed is not None
    assert replayed.state() == payment.state()
