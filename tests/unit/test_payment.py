"""The Payment aggregate's state machine, without any store."""

from datetime import UTC, datetime

import pytest

from ledger.application import RefundReport, refunds_to_record
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


# --- which of a provider's listed refunds to record (Stripe's refunds list) ----------


def listed(*refunds: tuple[str, int]) -> list[RefundReport]:
    return [RefundReport(refund_id, amount, "", NOW) for refund_id, amount in refunds]


def ids(reports: list[RefundReport]) -> list[str]:
    return [r.refund_id for r in reports]


def test_each_listed_refund_not_recorded_yet_is_taken_under_its_own_id() -> None:
    payment = new_payment()
    payment.complete("pi_1", "card", NOW)
    assert ids(refunds_to_record(payment, listed(("re_1", 1000), ("re_2", 500)))) == [
        "re_1",
        "re_2",
    ]
    payment.refund("re_1", 1000, "", NOW)
    assert ids(refunds_to_record(payment, listed(("re_1", 1000), ("re_2", 500)))) == ["re_2"]


@pytest.mark.parametrize(
    ("old_id", "old_delta", "expected"),
    [
        ("evt_1", 1000, ["re_2", "re_3"]),  # a webhook's event id for re_1
        ("re_1", 1500, ["re_3"]),  # a request's own id for re_1 + a concurrent re_2
        ("re_2", 1500, ["re_3"]),  # the concurrent request's id for both
    ],
)
def test_money_counted_by_an_old_running_total_is_not_counted_again(
    old_id: str, old_delta: int, expected: list[str]
) -> None:
    payment = new_payment()
    payment.complete("pi_1", "card", NOW)
    payment.refund(old_id, old_delta, "", NOW)
    stripe = listed(("re_1", 1000), ("re_2", 500), ("re_3", 200))
    taken = refunds_to_record(payment, stripe)
    assert ids(taken) == expected
    assert payment.refunded_amount + sum(r.amount for r in taken) == 1700


def test_nothing_is_taken_when_the_ledger_counts_more_than_the_provider_lists() -> None:
    payment = new_payment()
    payment.complete("pi_1", "card", NOW)
    payment.refund("re_failed", 3000, "counted while pending, failed since", NOW)
    assert refunds_to_record(payment, listed(("re_2", 1000))) == []
