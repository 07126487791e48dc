"""What a payment's change brings with it, decided on the write side and saved in the same
transaction: the trainer's notices, and which reported refunds or approval to record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.domain import Aggregate

from ledger.commands import Approval, RefundReport
from ledger.ids import stable_id
from ledger.message import payment_messages
from ledger.money import Money
from ledger.notification import TrainerNotification
from ledger.payment import Payment


def trainer_notices(
    payment: Payment, events: Sequence[object] | None = None
) -> list[TrainerNotification]:
    """Events that must be saved atomically with the payment's new `events` (default: its
    pending ones): the trainer's notice of a completion, or of a completion reversed."""
    amount = Money(payment.amount, payment.currency).format()
    session = f"for the session on {payment.booking_date}"
    notices = []
    for e in payment.pending_events if events is None else events:
        if isinstance(e, Payment.Refunded):
            notices.append(_refund_notice(payment, e))
            continue
        if isinstance(e, Payment.Completed):
            kind, title = "payment_completed", "New booking paid"
            message = f"{payment.customer_name} paid {amount} {session}."
        elif isinstance(e, Payment.CompletionReversed):
            kind, title = "payment_reversed", "Payment reversed"
            message = (
                f"{payment.customer_name}'s payment of {amount} {session} was reversed "
                f"by the provider ({e.reason}); it is awaiting payment again."
            )
        else:
            continue
        notices.append(_notice(payment, kind, title, message))
    return notices


def reactions(payment: Payment, events: Sequence[object] | None = None) -> list[Aggregate]:
    """Everything saved with the payment's new `events`: the trainer's inbox notices and
    the messages the outbox sends (ledger/message.py)."""
    new = payment.pending_events if events is None else events
    return [*trainer_notices(payment, new), *payment_messages(payment, new)]


def _refund_notice(payment: Payment, e: Payment.Refunded) -> TrainerNotification:
    """One notice per refund (a payment may be refunded in parts): the trainer must not be
    left believing a refunded session is paid."""
    refund = Money(e.amount, payment.currency).format()
    full = payment.refundable_amount == 0
    title = "Payment refunded" if full else "Payment partly refunded"
    message = (
        f"{payment.customer_name}'s payment for the session on {payment.booking_date} was "
        f"{'fully ' if full else ''}refunded: {refund}."
    )
    notice_id = stable_id(f"notification:{payment.id}:refund:{e.refund_id}")
    return TrainerNotification._create(
        TrainerNotification.Sent, id=notice_id, trainer_id=payment.trainer_id,
        booking_id=payment.booking_id, payment_id=payment.id, kind="payment_refunded",
        title=title, message=message,
    )  # fmt: skip


def refunds_to_record(payment: Payment, listed: Sequence[RefundReport]) -> list[RefundReport]:
    """Which of the provider's succeeded refunds (`listed`, oldest first) to record now.

    Each refund is recorded under its own id, once. But histories written before that held
    running-total deltas under other ids (a request's refund id, a webhook's event id), so an
    id not recorded yet may be money already counted. Rule: the ledger never counts more than
    the listed total. Newest first (a delta covered the refunds made before it, so the newest
    are the uncounted ones), a refund is taken only if it fits in what is not counted yet.
    With no such history the uncounted money is exactly the unrecorded refunds: all fit.
    """
    uncounted = sum(r.amount for r in listed) - payment.refunded_amount
    taken: list[RefundReport] = []
    for report in reversed(listed):
        if report.refund_id not in payment.refund_ids and 0 < report.amount <= uncounted:
            taken.append(report)
            uncounted -= report.amount
    return taken[::-1]


def approve(payment: Payment, approval: Approval | None) -> bool:
    if approval is None or not payment.accepts("completed"):
        return False
    return payment.complete(
        approval.provider_payment_id,
        approval.method,
        approval.approved_at,
        approval.captured_amount,
    )


def _notice(payment: Payment, kind: str, title: str, message: str) -> TrainerNotification:
    """One notice per (payment, kind, round): a retried command cannot send it twice, and a
    payment completed again after a reversal tells the trainer again. The first round keeps
    the id notices always had; later rounds name it (`_create` is how the library takes one)."""
    fields: dict[str, Any] = {
        "trainer_id": payment.trainer_id,
        "booking_id": payment.booking_id,
        "payment_id": payment.id,
        "kind": kind,
        "title": title,
        "message": message,
    }
    rounds = payment.reversals - (kind == "payment_reversed")
    if rounds == 0:
        return TrainerNotification(**fields)
    notice_id = stable_id(f"notification:{payment.id}:{kind}:{rounds}")
    return TrainerNotification._create(TrainerNotification.Sent, id=notice_id, **fields)
