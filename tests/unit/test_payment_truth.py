"""Provider truth in the Payment aggregate: captured amounts, reversals, failed refunds and
disputes, without any store."""

from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import Application

from ledger.application import PaymentLedger
from ledger.payment import Payment, Status
from ledger.reactions import trainer_notices

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def paid(amount: int = 10000) -> Payment:
    payment = Payment(
        order_id="order-1",
        booking_id="booking-1",
        customer_id="cust-1",
        customer_name="Jane Doe",
        trainer_id="trainer-1",
        booking_date="2026-12-01",
        amount=amount,
        currency="USD",
        provider="stripe",
    )
    payment.complete("pi_1", "card", NOW)
    return payment


def last_event(payment: Payment) -> str:
    return type(payment.pending_events[-1]).__name__


def test_a_discounted_capture_is_recorded_and_counted_as_the_money_captured() -> None:
    payment = Payment(
        order_id="order-1", booking_id="b", customer_id="c", customer_name="n",
        trainer_id="t", booking_date="2026-12-01", amount=10000, currency="USD",
        provider="stripe",
    )  # fmt: skip
    assert payment.complete("pi_1", "card", NOW, captured_amount=8000, discrepancy_reason="coupon")
    names = [type(e).__name__ for e in payment.pending_events]
    assert names == ["Initiated", "AmountDiscrepancyRecorded", "Completed"]
    assert (payment.amount, payment.ordered_amount, payment.refundable_amount) == (
        8000,
        10000,
        8000,
    )
    state = payment.state()
    assert state["amount_discrepancy"] == {
        "expected_amount": 10000, "captured_amount": 8000, "reason": "coupon",
    }  # fmt: skip
    assert state["currency"] == "USD" and state["status"] == "completed"


def test_the_same_captured_amount_records_no_discrepancy() -> None:
    payment = Payment(
        order_id="o", booking_id="b", customer_id="c", customer_name="n", trainer_id="t",
        booking_date="2026-12-01", amount=10000, currency="USD", provider="stripe",
    )  # fmt: skip
    payment.complete("pi_1", "card", NOW, captured_amount=10000)
    assert payment.discrepancy is None and payment.state()["amount_discrepancy"] is None


def test_a_deposit_error_reverses_a_completion_to_pending() -> None:
    payment = paid()
    assert payment.await_deposit("pk", "secret-2", "deposit error", NOW)
    assert [type(e).__name__ for e in payment.pending_events][-2:] == [
        "CompletionReversed", "DepositAwaited",
    ]  # fmt: skip
    assert payment.status == Status.PENDING and payment.completed_at is None
    assert payment.deposit_secret == "secret-2"
    # Paid again once the deposit is made.
    assert payment.complete("pi_1", "virtual_account", NOW)
    assert payment.state()["status"] == "completed"


def test_a_refunded_payment_is_not_reversed() -> None:
    payment = paid()
    payment.refund("re_1", 1000, "asked", NOW)
    assert payment.await_deposit("pk", "secret", "deposit error", NOW)
    assert last_event(payment) == "TransitionRejected"
    assert payment.status == Status.PARTIALLY_REFUNDED and payment.refunded_amount == 1000


def test_a_failed_refund_gives_the_money_back_once_and_is_never_recounted() -> None:
    payment = paid()
    payment.refund("re_1", 3000, "asked", NOW)
    payment.refund("re_2", 7000, "rest", NOW)
    assert payment.status == Status.REFUNDED
    assert payment.fail_refund("re_2", "insufficient funds", NOW)
    assert (payment.status, payment.refunded_amount) == (Status.PARTIALLY_REFUNDED, 3000)
    assert not payment.fail_refund("re_2", "again", NOW)
    assert not payment.fail_refund("re_unknown", "never recorded", NOW)
    assert not payment.refund("re_2", 7000, "listed again", NOW)  # the id stays recorded
    assert payment.fail_refund("re_1", "failed too", NOW)
    assert (payment.status, payment.refunded_amount) == (Status.COMPLETED, 0)
    assert payment.failed_refund_ids == ["re_2", "re_1"]


def test_a_won_dispute_returns_to_the_status_before_it() -> None:
    payment = paid()
    payment.refund("re_1", 2000, "asked", NOW)
    assert payment.open_dispute("dp_1", 8000, "fraudulent", NOW)
    assert payment.status == Status.DISPUTED
    assert payment.state()["dispute"] == {
        "dispute_id": "dp_1", "amount": 8000, "reason": "fraudulent",
        "opened_at": NOW.isoformat(),
    }  # fmt: skip
    assert not payment.open_dispute("dp_1", 8000, "fraudulent", NOW)
    assert payment.close_dispute("dp_1", "won", 8000, NOW)
    assert payment.state()["status"] == "partially_refunded" and payment.chargeback_amount == 0
    assert payment.state()["dispute"] is None
    assert not payment.close_dispute("dp_1", "lost", 8000, NOW)  # closed before
    assert payment.chargeback_amount == 0


def test_a_lost_dispute_is_a_chargeback() -> None:
    payment = paid()
    payment.open_dispute("dp_1", 10000, "fraudulent", NOW)
    assert payment.close_dispute("dp_1", "lost", 10000, NOW)
    assert (payment.status, payment.chargeback_amount) == (Status.REFUNDED, 10000)
    assert payment.refundable_amount == 0
    partial = paid()
    partial.open_dispute("dp_2", 4000, "product not received", NOW)
    partial.close_dispute("dp_2", "lost", 4000, NOW)
    assert (partial.status, partial.refundable_amount) == (Status.PARTIALLY_REFUNDED, 6000)


def test_a_refund_reported_while_disputed_counts_and_unpaid_payments_cannot_be_disputed() -> None:
    """The provider made the refund (before the dispute, reported late): its money moved, so
    it counts; the payment stays disputed until the dispute closes, and a lost dispute then
    takes only what the customer still had paid."""
    payment = paid()
    payment.open_dispute("dp_1", 10000, "fraudulent", NOW)
    assert payment.refund("re_1", 1000, "asked", NOW)
    assert last_event(payment) == "Refunded"
    assert payment.refunded_amount == 1000 and payment.status == Status.DISPUTED
    payment.close_dispute("dp_1", "lost", 10000, NOW)
    assert (payment.chargeback_amount, payment.status) == (9000, Status.REFUNDED)
    unpaid = Payment(
        order_id="o", booking_id="b", customer_id="c", customer_name="n", trainer_id="t",
        booking_date="2026-12-01", amount=10000, currency="USD", provider="stripe",
    )  # fmt: skip
    assert unpaid.open_dispute("dp_1", 10000, "fraudulent", NOW)
    assert last_event(unpaid) == "TransitionRejected" and unpaid.status == Status.PENDING
    assert not unpaid.close_dispute("dp_unknown", "lost", 10000, NOW)


def test_a_refund_failing_during_a_dispute_keeps_it_disputed() -> None:
    payment = paid()
    payment.refund("re_1", 2000, "asked", NOW)
    payment.open_dispute("dp_1", 8000, "fraudulent", NOW)
    payment.fail_refund("re_1", "failed", NOW)
    assert payment.status == Status.DISPUTED and payment.refunded_amount == 0
    payment.close_dispute("dp_1", "warning_closed", 8000, NOW)
    assert payment.state()["status"] == "completed"


def test_replaying_the_stored_events_gives_the_same_state() -> None:
    app = Application[UUID]()
    payment = Payment(
        order_id="o", booking_id="b", customer_id="c", customer_name="n", trainer_id="t",
        booking_date="2026-12-01", amount=10000, currency="USD", provider="stripe",
    )  # fmt: skip
    payment.complete("pi_1", "card", NOW, captured_amount=9000, discrepancy_reason="discount")
    payment.refund("re_1", 1000, "asked", NOW)
    payment.fail_refund("re_1", "failed", NOW)
    payment.refund("re_2", 500, "asked", NOW)
    payment.open_dispute("dp_1", 8500, "fraudulent", NOW)
    payment.close_dispute("dp_1", "lost", 3000, NOW)
    app.save(payment)
    replayed: Payment = app.repository.get(payment.id)
    assert replayed.state() == payment.state()
    assert replayed.state()["chargeback_amount"] == 3000
    assert replayed.state()["status"] == "partially_refunded"
    assert (replayed.refund_amounts, replayed.failed_refund_ids) == (
        {"re_1": 1000, "re_2": 500}, ["re_1"],
    )  # fmt: skip


def test_the_trainer_is_told_of_each_reversal_and_each_completion() -> None:
    ledger = PaymentLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    payment = paid()
    ledger.save(payment)
    payment = ledger.get_payment(payment.id)
    payment.await_deposit("pk", "s1", "deposit error", NOW)
    [reversed_notice] = trainer_notices(payment)
    assert (
        reversed_notice.kind == "payment_reversed" and reversed_notice.title == "Payment reversed"
    )
    assert "Jane Doe" in reversed_notice.message and "2026-12-01" in reversed_notice.message
    assert "100.00 USD" in reversed_notice.message
    ledger.save(payment, reversed_notice)
    again = ledger.complete(payment.id, "pi_1", "virtual_account", NOW)
    assert again.outcome == "applied"  # a second completion notice does not collide
    assert ledger.await_deposit(payment.id, "pk", "s2").outcome == "applied"
