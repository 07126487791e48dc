"""Messages to people: decided on the write side, with the change that causes them.

A `Message` says what to tell whom (a kind, a recipient, the facts its texts need), never how
to reach them: contact details are personal data and stay out of the history (the contacts
store). It is saved in the same transaction as the payment change, so a change is never
saved without its messages nor told twice; the outbox (api/notify) sends it, at least once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import stable_id
from ledger.payment import Payment
from ledger.statement import Statement

TRAINER, CUSTOMER = "trainer", "customer"


class Message(Aggregate):
    """One thing to tell one person: `kind` names the text, `facts` fill it in."""

    class Decided(Aggregate.Created):
        cause: str  # what made it: "{payment_id}:{version}" of the payment's event
        kind: str
        recipient_role: str
        recipient_id: str
        booking_id: str | None  # None: not about one booking (a statement)
        payment_id: UUID | None
        facts: dict[str, Any]

    @staticmethod
    def create_id(cause: str, kind: str, recipient_role: str, **_: Any) -> UUID:
        # One message per (cause, kind, recipient): a retried command cannot decide it twice.
        return stable_id(f"message:{cause}:{kind}:{recipient_role}")

    @event(Decided)
    def __init__(
        self,
        *,
        cause: str,
        kind: str,
        recipient_role: str,
        recipient_id: str,
        booking_id: str | None,
        payment_id: UUID | None,
        facts: dict[str, Any],
    ) -> None:
        self.cause = cause
        self.kind = kind
        self.recipient_role = recipient_role
        self.recipient_id = recipient_id
        self.booking_id = booking_id
        self.payment_id = payment_id
        self.facts = facts


def payment_messages(payment: Payment, events: Sequence[object]) -> list[Message]:
    """What the payment's new `events` tell its trainer and its customer (CONTRACT.md):
    completed → trainer; refunded → both; failed or cancelled → the customer (with a
    retry link); a completion reversed → trainer."""
    messages = []
    for e in events:
        for kind, role, facts in _told(payment, e):
            messages.append(_message(payment, e, kind, role, facts))
    return messages


def _told(payment: Payment, e: object) -> list[tuple[str, str, dict[str, Any]]]:
    if isinstance(e, Payment.Completed):
        return [("payment_completed", TRAINER, {})]
    if isinstance(e, Payment.Refunded):
        facts = {"refund_amount": e.amount, "refund_id": e.refund_id, "reason": e.reason,
                 "full": payment.refundable_amount == 0}  # fmt: skip
        kind = "payment_refunded" if facts["full"] else "payment_partially_refunded"
        return [(kind, TRAINER, facts), (kind, CUSTOMER, facts)]
    if isinstance(e, Payment.Failed):
        return [("payment_failed", CUSTOMER, {"code": e.code, "reason": e.message})]
    if isinstance(e, Payment.Cancelled):
        return [("payment_cancelled", CUSTOMER, {"reason": e.reason})]
    if isinstance(e, Payment.CompletionReversed):
        return [("payment_reversed", TRAINER, {"reason": e.reason})]
    return []


def _message(payment: Payment, e: object, kind: str, role: str, facts: dict[str, Any]) -> Message:
    version = getattr(e, "originator_version")  # noqa: B009 - every payment event has one
    return Message(
        cause=f"{payment.id}:{version}",
        kind=kind,
        recipient_role=role,
        recipient_id=payment.trainer_id if role == TRAINER else payment.customer_id,
        booking_id=payment.booking_id,
        payment_id=payment.id,
        facts={
            "amount": payment.amount,
            "currency": payment.currency,
            "customer_name": payment.customer_name,
            "booking_date": payment.booking_date,
            "order_id": payment.order_id,
            "provider": payment.provider,
            **facts,
        },
    )


def statement_messages(statement: Statement, events: Sequence[object]) -> list[Message]:
    """A statement closed, or its payout recorded → its trainer."""
    messages = []
    for e in events:
        facts: dict[str, Any]
        if isinstance(e, Statement.Closed):
            kind, facts = "statement_closed", {"gross_sales": e.gross_sales}
        elif isinstance(e, Statement.PaidOut):
            kind, facts = "payout_recorded", {"reference": e.reference}
        else:
            continue
        version = getattr(e, "originator_version")  # noqa: B009 - every event has one
        messages.append(Message(
            cause=f"{statement.id}:{version}", kind=kind, recipient_role=TRAINER,
            recipient_id=statement.trainer_id, booking_id=None, payment_id=None,
            facts={"amount": statement.payout_amount, "currency": statement.currency,
                   "period_start": statement.period_start, "period_end": statement.period_end,
                   "statement_id": str(statement.id), **facts},
        ))  # fmt: skip
    return messages
