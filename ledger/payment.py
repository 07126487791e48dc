"""The Payment aggregate: one per (provider, order_id), its events and its state machine."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import stable_id
from ledger.money import Money


class Status(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Provider(StrEnum):
    TOSS = "toss"
    STRIPE = "stripe"


# Which reported outcomes each status accepts. A failed attempt may be followed by a
# successful one (Stripe keeps a Checkout Session open after a declined card).
_ACCEPTS: dict[Status, frozenset[str]] = {
    Status.PENDING: frozenset({"completed", "failed", "cancelled"}),
    Status.FAILED: frozenset({"completed", "failed", "cancelled"}),
    Status.COMPLETED: frozenset({"refunded"}),
    Status.PARTIALLY_REFUNDED: frozenset({"refunded"}),
    Status.CANCELLED: frozenset(),
    Status.REFUNDED: frozenset(),
}


def status_after_refunds(refunded_amount: int, amount: int) -> Status:
    """Refunded once the refunds reach the amount, partially refunded before."""
    return Status.REFUNDED if refunded_amount >= amount else Status.PARTIALLY_REFUNDED


class Payment(Aggregate):
    """A customer's payment for one booking, as reported by checkout and the provider."""

    class Initiated(Aggregate.Created):
        order_id: str
        booking_id: str
        customer_id: str
        customer_name: str
        trainer_id: str
        booking_date: str
        amount: int
        currency: str
        provider: str

    class Completed(Aggregate.Event):
        provider_payment_id: str
        method: str
        approved_at: datetime

    class Failed(Aggregate.Event):
        code: str
        message: str
        failed_at: datetime

    class Cancelled(Aggregate.Event):
        reason: str
        cancelled_at: datetime

    class Refunded(Aggregate.Event):
        refund_id: str
        amount: int
        reason: str
        refunded_at: datetime

    class DepositAwaited(Aggregate.Event):
        """A virtual-account payment was issued; the deposit callback must carry `secret`."""

        provider_payment_id: str
        secret: str

    class TransitionRejected(Aggregate.Event):
        """A provider reported an outcome the state machine forbids; kept for auditors."""

        attempted: str
        from_status: str
        reason: str

    @staticmethod
    def create_id(provider: str, order_id: str, **_: Any) -> UUID:
        return stable_id(f"{provider}:{order_id}")

    @event(Initiated)
    def __init__(
        self,
        *,
        order_id: str,
        booking_id: str,
        customer_id: str,
        customer_name: str,
        trainer_id: str,
        booking_date: str,
        amount: int,
        currency: str,
        provider: str,
    ) -> None:
        self.order_id = order_id
        self.booking_id = booking_id
        self.customer_id = customer_id
        self.customer_name = customer_name
        self.trainer_id = trainer_id
        self.booking_date = booking_date
        self.amount = amount
        self.currency = currency
        self.provider = provider
        self.status = Status.PENDING
        self.refunded_amount = 0
        self.refund_ids: list[str] = []
        self.provider_payment_id: str | None = None
        self.method: str | None = None
        self.completed_at: datetime | None = None
        self.failure_code: str | None = None
        self.failure_message: str | None = None
        self.deposit_secret: str | None = None

    # --- queries -------------------------------------------------------------------

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount

    def accepts(self, outcome: str) -> bool:
        return outcome in _ACCEPTS[self.status]

    # --- commands: decide, then trigger. Return whether an event was triggered. ----

    def complete(self, provider_payment_id: str, method: str, approved_at: datetime) -> bool:
        if self.status == Status.COMPLETED and self.provider_payment_id == provider_payment_id:
            return False
        if not self.accepts("completed"):
            return self._reject("completed", f"cannot complete a {self.status} payment")
        self._completed(
            provider_payment_id=provider_payment_id, method=method, approved_at=approved_at
        )
        return True

    def fail(self, code: str, message: str, failed_at: datetime) -> bool:
        if self.status == Status.FAILED and self.failure_code == code:
            return False
        if not self.accepts("failed"):
            return self._reject("failed", f"cannot fail a {self.status} payment ({code})")
        self._failed(code=code, message=message, failed_at=failed_at)
        return True

    def cancel(self, reason: str, cancelled_at: datetime) -> bool:
        if self.status == Status.CANCELLED:
            return False
        if not self.accepts("cancelled"):
            return self._reject("cancelled", f"cannot cancel a {self.status} payment")
        self._cancelled(reason=reason, cancelled_at=cancelled_at)
        return True

    def refund(self, refund_id: str, amount: int, reason: str, refunded_at: datetime) -> bool:
        if refund_id in self.refund_ids:
            return False
        if not self.accepts("refunded"):
            return self._reject("refunded", f"cannot refund a {self.status} payment")
        if not 0 < amount <= self.refundable_amount:
            return self._reject(
                "refunded", f"refund of {amount} exceeds refundable {self.refundable_amount}"
            )
        self._refunded(refund_id=refund_id, amount=amount, reason=reason, refunded_at=refunded_at)
        return True

    def await_deposit(self, provider_payment_id: str, secret: str) -> bool:
        if self.deposit_secret == secret or self.status != Status.PENDING:
            return False
        self._deposit_awaited(provider_payment_id=provider_payment_id, secret=secret)
        return True

    def _reject(self, attempted: str, reason: str) -> bool:
        self._transition_rejected(attempted=attempted, from_status=self.status.value, reason=reason)
        return True

    # --- event bodies: assign only, so replay gives the same state -----------------

    @event(Completed)
    def _completed(self, provider_payment_id: str, method: str, approved_at: datetime) -> None:
        self.status = Status.COMPLETED
        self.provider_payment_id = provider_payment_id
        self.method = method
        self.completed_at = approved_at

    @event(Failed)
    def _failed(self, code: str, message: str, failed_at: datetime) -> None:
        self.status = Status.FAILED
        self.failure_code = code
        self.failure_message = message

    @event(Cancelled)
    def _cancelled(self, reason: str, cancelled_at: datetime) -> None:
        self.status = Status.CANCELLED

    @event(Refunded)
    def _refunded(self, refund_id: str, amount: int, reason: str, refunded_at: datetime) -> None:
        self.refund_ids.append(refund_id)
        self.refunded_amount += amount
        self.status = status_after_refunds(self.refunded_amount, self.amount)

    @event(DepositAwaited)
    def _deposit_awaited(self, provider_payment_id: str, secret: str) -> None:
        self.provider_payment_id = provider_payment_id
        self.deposit_secret = secret

    @event(TransitionRejected)
    def _transition_rejected(self, attempted: str, from_status: str, reason: str) -> None:
        pass

    def state(self) -> dict[str, Any]:
        """The payment as readers and auditors see it."""
        return {
            "payment_id": str(self.id),
            "order_id": self.order_id,
            "booking_id": self.booking_id,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "trainer_id": self.trainer_id,
            "booking_date": self.booking_date,
            "amount": self.amount,
            "refunded_amount": self.refunded_amount,
            "currency": self.currency,
            "status": self.status.value,
            "provider": self.provider,
            "provider_payment_id": self.provider_payment_id,
            "method": self.method,
            "created_at": self.created_on.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "version": self.version,
        }
