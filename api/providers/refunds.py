"""Refunds an admin asks for: the rules every provider shares, then the provider's adapter.

Each adapter records each refund the provider reports under the provider's own id (Toss: each
cancel's transactionKey; Stripe: each refund's re_ id), so a refund seen here, in a webhook or
by a concurrent request counts once.
"""

from __future__ import annotations

from uuid import UUID

from api.providers.base import RefundResult
from api.providers.registry import ProviderRegistry
from ledger.application import PaymentLedger
from ledger.errors import ConflictError, LedgerError
from ledger.payment import Status

REFUNDABLE = (Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED)


class Refunds:
    def __init__(self, ledger: PaymentLedger, providers: ProviderRegistry) -> None:
        self.ledger = ledger
        self.providers = providers

    def refund(
        self, payment_id: UUID, amount: int | None, reason: str, idempotency_key: str
    ) -> RefundResult:
        """Refund `amount` (default: all that is left). The provider checks the remaining
        balance; the same `idempotency_key` again returns the first refund, not a second."""
        payment = self.ledger.get_payment(payment_id)
        if payment.status == "disputed":
            # The disputed money is held by the card network; a refund would pay it twice.
            raise ConflictError("a disputed payment cannot be refunded", "disputed")
        if payment.status not in REFUNDABLE or not payment.provider_payment_id:
            raise ConflictError(f"a {payment.status} payment cannot be refunded", "invalid_state")
        if amount is not None and amount > payment.amount:
            raise LedgerError(
                f"refund {amount} exceeds the payment's {payment.amount}", "invalid_refund_amount"
            )
        # Namespaced per payment, so one key reused for two payments makes two refunds.
        key = f"refund:{payment.id}:{idempotency_key}"
        return self.providers.get(payment.provider).refund(payment, amount, reason, key)
