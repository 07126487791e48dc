"""The Payment aggregate: one per (provider, order_id), its events and its state machine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import stable_id
from ledger.money import Money
from ledger.status import (
    Provider,
    Status,
    accepts,
    chargeback,
    paid_status,
    status_after_refunds,
)

__all__ = ["Payment", "Provider", "Status", "paid_status", "status_after_refunds"]


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

    # Provider truth (README, "Provider truth"): what the provider did with the money.
    class AmountDiscrepancyRecorded(Aggregate.Event):
        """The provider captured another amount than the order's (a discount, a conversion);
        applied just before `Completed`, so money counts what was really captured."""

        expected_amount: int
        captured_amount: int
        reason: str

    class CompletionReversed(Aggregate.Event):
        """The provider took back its completion (Toss: a deposit error, DONE → waiting)."""

        reason: str
        reversed_at: datetime

    class RefundFailed(Aggregate.Event):
        refund_id: str
        amount: int
        reason: str
        failed_at: datetime

    class DisputeOpened(Aggregate.Event):
        dispute_id: str
        amount: int
        reason: str
        opened_at: datetime

    class DisputeClosed(Aggregate.Event):
        dispute_id: str
        outcome: str  # won, warning_closed (money kept) or lost (a chargeback)
        amount: int
        closed_at: datetime

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
        self.ordered_amount = amount
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
        self.discrepancy: dict[str, Any] | None = None
        self.refund_amounts: dict[str, int] = {}
        self.failed_refund_ids: list[str] = []
        self.chargeback_amount = 0
        self.dispute: dict[str, Any] | None = None  # the open one
        self.closed_dispute_ids: list[str] = []
        self.reversals = 0

    # --- queries -------------------------------------------------------------------

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def refundable_amount(self) -> int:
        return self.amount - self.refunded_amount - self.chargeback_amount

    def accepts(self, outcome: str) -> bool:
        return accepts(self.status, outcome)

    # --- commands: decide, then trigger. Return whether an event was triggered. ----

    def complete(
        self,
        provider_payment_id: str,
        method: str,
        approved_at: datetime,
        captured_amount: int | None = None,
        discrepancy_reason: str = "amount differs",
    ) -> bool:
        if self.status == Status.COMPLETED and self.provider_payment_id == provider_payment_id:
            return False
        if not self.accepts("completed"):
            return self._reject("completed", f"cannot complete a {self.status} payment")
        if captured_amount is not None and captured_amount != self.amount:
            self._amount_discrepancy_recorded(
                expected_amount=self.amount,
                captured_amount=captured_amount,
                reason=discrepancy_reason,
            )
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

    def await_deposit(
        self,
        provider_payment_id: str,
        secret: str,
        reason: str = "deposit error",
        reversed_at: datetime | None = None,
    ) -> bool:
        """Waiting for a deposit; a paid payment is reversed first (only if not refunded)."""
        if self.status in (Status.PARTIALLY_REFUNDED, Status.REFUNDED, Status.DISPUTED):
            return self._reject("reversed", f"cannot reverse a {self.status} payment")
        if self.status == Status.COMPLETED:
            self._completion_reversed(reason=reason, reversed_at=reversed_at or datetime.now(UTC))
        elif self.deposit_secret == secret or self.status != Status.PENDING:
            return False
        if self.deposit_secret != secret:
            self._deposit_awaited(provider_payment_id=provider_payment_id, secret=secret)
        return True

    def fail_refund(self, refund_id: str, reason: str, failed_at: datetime) -> bool:
        """Undo a recorded refund the provider reports failed; its id stays recorded, so a
        later refund list does not count it again."""
        if refund_id not in self.refund_amounts or refund_id in self.failed_refund_ids:
            return False
        amount = self.refund_amounts[refund_id]
        self._refund_failed(refund_id=refund_id, amount=amount, reason=reason, failed_at=failed_at)
        return True

    def open_dispute(self, dispute_id: str, amount: int, reason: str, opened_at: datetime) -> bool:
        if dispute_id in self.closed_dispute_ids or (
            self.dispute is not None and self.dispute["dispute_id"] == dispute_id
        ):
            return False
        if not self.accepts("disputed"):
            return self._reject("disputed", f"cannot dispute a {self.status} payment")
        self._dispute_opened(
            dispute_id=dispute_id, amount=amount, reason=reason, opened_at=opened_at
        )
        return True

    def close_dispute(
        self, dispute_id: str, outcome: str, amount: int, closed_at: datetime
    ) -> bool:
        if self.dispute is None or self.dispute["dispute_id"] != dispute_id:
            return False  # unknown, or closed before
        if outcome not in ("won", "warning_closed", "lost"):
            return self._reject("dispute_closed", f"unknown dispute outcome {outcome}")
        self._dispute_closed(
            dispute_id=dispute_id, outcome=outcome, amount=amount, closed_at=closed_at
        )
        return True

    def refuse(self, attempted: str, reason: str) -> bool:
        """Record a provider report that cannot be represented; changes no money or status."""
        return self._reject(attempted, reason)

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
        self.refund_amounts[refund_id] = amount
        self.refunded_amount += amount
        if self.dispute is None:  # an open dispute keeps the payment disputed until it closes
            self.status = status_after_refunds(
                self.refunded_amount + self.chargeback_amount, self.amount
            )

    @event(AmountDiscrepancyRecorded)
    def _amount_discrepancy_recorded(
        self, expected_amount: int, captured_amount: int, reason: str
    ) -> None:
        self.amount = captured_amount
        self.discrepancy = {
            "expected_amount": expected_amount,
            "captured_amount": captured_amount,
            "reason": reason,
        }

    @event(CompletionReversed)
    def _completion_reversed(self, reason: str, reversed_at: datetime) -> None:
        self.status = Status.PENDING
        self.completed_at = None
        self.reversals += 1

    @event(RefundFailed)
    def _refund_failed(self, refund_id: str, amount: int, reason: str, failed_at: datetime) -> None:
        self.failed_refund_ids.append(refund_id)
        self.refunded_amount -= amount
        if self.status != Status.DISPUTED:
            self.status = self._paid_status()

    @event(DisputeOpened)
    def _dispute_opened(
        self, dispute_id: str, amount: int, reason: str, opened_at: datetime
    ) -> None:
        self.status = Status.DISPUTED
        self.dispute = {"dispute_id": dispute_id, "amount": amount, "reason": reason}
        self.dispute["opened_at"] = opened_at.isoformat()

    @event(DisputeClosed)
    def _dispute_closed(
        self, dispute_id: str, outcome: str, amount: int, closed_at: datetime
    ) -> None:
        if outcome == "lost":
            self.chargeback_amount += chargeback(amount, self.refundable_amount)
        # Back to the status before the dispute: the same money (a refund failing during the
        # dispute is counted too), so recomputed rather than remembered.
        self.status = self._paid_status()
        self.dispute = None
        self.closed_dispute_ids.append(dispute_id)

    def _paid_status(self) -> Status:
        return paid_status(self.refunded_amount + self.chargeback_amount, self.amount)

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
            "ordered_amount": self.ordered_amount,
            "refunded_amount": self.refunded_amount,
            "chargeback_amount": self.chargeback_amount,
            "amount_discrepancy": self.discrepancy,
            "dispute": self.dispute,
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
