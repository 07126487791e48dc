"""Refunds an admin asks for: the provider's refund/cancel API first, then the ledger.

The ledger records what the provider reports, under the provider's own refund identity
(Toss: each cancel's transactionKey; Stripe: the running refunded total, as the
`charge.refunded` webhook does), so a refund seen both here and in a webhook counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import stripe

from api.providers.stripe import StripePayments
from api.providers.toss import TossDeclined, TossPayments
from ledger.application import CommandResult, PaymentLedger
from ledger.errors import ConflictError, LedgerError, ProviderUnavailableError
from ledger.payment import Payment, Provider, Status

REFUNDABLE = (Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED)


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    amount: int
    result: CommandResult


class Refunds:
    def __init__(self, ledger: PaymentLedger, toss: TossPayments, stripe: StripePayments) -> None:
        self.ledger = ledger
        self.toss = toss
        self.stripe = stripe

    def refund(
        self, payment_id: UUID, amount: int | None, reason: str, idempotency_key: str
    ) -> RefundResult:
        """Refund `amount` (default: all that is left). The provider checks the remaining
        balance; the same `idempotency_key` again returns the first refund, not a second."""
        payment = self.ledger.get_payment(payment_id)
        if payment.status not in REFUNDABLE or not payment.provider_payment_id:
            raise ConflictError(f"a {payment.status} payment cannot be refunded", "invalid_state")
        if amount is not None and amount > payment.amount:
            raise LedgerError(
                f"refund {amount} exceeds the payment's {payment.amount}", "invalid_refund_amount"
            )
        # Namespaced per payment, so one key reused for two payments makes two refunds.
        key = f"refund:{payment.id}:{idempotency_key}"
        if payment.provider == Provider.TOSS:
            return self._toss(payment, amount, reason, key)
        return self._stripe(payment, amount, reason, key)

    def _toss(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        assert payment.provider_payment_id is not None
        try:
            answer = self.toss.client.cancel(payment.provider_payment_id, reason, amount, key)
        except TossDeclined as declined:
            raise LedgerError(declined.message, declined.code) from declined
        cancels = answer.get("cancels") or []
        if not cancels:
            raise ProviderUnavailableError("Toss answered a cancel without cancels[]")
        ours = cancels[-1]  # Toss appends the new cancel; a replay answers the same body
        result = self.toss.apply(payment, answer, delivery=None)
        return RefundResult(
            str(ours.get("transactionKey")), int(ours.get("cancelAmount", 0)), result
        )

    def _stripe(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        client = self.stripe.require_client()
        params: dict[str, object] = {
            "payment_intent": payment.provider_payment_id,
            "metadata": {"order_id": payment.order_id, "reason": reason},
        }
        if amount is not None:
            params["amount"] = amount
        try:
            refund = client.v1.refunds.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]
            listed = client.v1.refunds.list(
                params={"payment_intent": str(payment.provider_payment_id), "limit": 100}
            )
        except stripe.InvalidRequestError as exc:
            raise LedgerError(
                exc.user_message or str(exc), str(exc.code or "refund_declined")
            ) from exc
        except stripe.StripeError as exc:
            raise ProviderUnavailableError(f"Stripe did not answer: {type(exc).__name__}") from exc
        # Stripe's running total is the truth; recording up to it never counts a refund that
        # a charge.refunded webhook already recorded.
        total = sum(r.amount for r in listed.data if r.status in ("succeeded", "pending"))
        result = self.ledger.refund_to_total(
            payment.id, total, refund.id, reason, datetime.now(UTC)
        )
        return RefundResult(refund.id, refund.amount, result)
