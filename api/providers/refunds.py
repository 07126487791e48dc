"""Refunds an admin asks for: the provider's refund/cancel API first, then the ledger.

The ledger records each refund the provider reports under the provider's own id (Toss: each
cancel's transactionKey; Stripe: each refund's re_ id, from the PaymentIntent's refunds list,
as the `charge.refunded` webhook does), so a refund seen here, in a webhook or by a concurrent
request counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import stripe

from api.providers.stripe import StripePayments, succeeded_refunds
from api.providers.toss import TossDeclined, TossPayments
from ledger.application import CommandResult, PaymentLedger
from ledger.errors import ConflictError, LedgerError, ProviderUnavailableError
from ledger.payment import Payment, Provider, Status

REFUNDABLE = (Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED)
# The provider has accepted the refund but not given the money back yet: counted on success.
PENDING = ("pending", "requires_action")


@dataclass(frozen=True)
class RefundResult:
    """What became of the refund the provider made: `recorded` once the ledger counts it
    under `refund_id`; else pending at the provider, or `problem` says why it is not."""

    refund_id: str
    amount: int
    refund_status: str  # the provider's word: succeeded, pending, failed ...
    status: str  # the payment's, after the refund
    position: int | None
    recorded: bool
    problem: str | None = None


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
        done = ours.get("cancelStatus") in (None, "DONE")  # foreign easy-pay cancels pend
        result = self.toss.apply(payment, answer, delivery=None)
        refund_id, refunded = str(ours.get("transactionKey")), int(ours.get("cancelAmount", 0))
        return self._outcome(result, refund_id, refunded, "succeeded" if done else "pending")

    def _stripe(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        refund = self._create_stripe_refund(payment, amount, reason, key)
        listed = self.stripe.list_refunds({"payment_intent": str(payment.provider_payment_id)})
        # The listed copy is fresher than a replayed create answer; a list that lags behind
        # the create leaves the create's answer, which is Stripe's word too.
        ours = next((r for r in listed if r.get("id") == refund["id"]), None)
        if ours is None:
            listed.insert(0, ours := refund)
        reports = succeeded_refunds(listed)
        result = self.ledger.record_listed_refunds(payment.id, reports)
        total = sum(r.amount for r in reports)
        return self._outcome(
            result,
            str(ours["id"]),
            int(ours["amount"]),
            str(ours.get("status")),
            f"Stripe's succeeded refunds total {total}",
        )

    def _create_stripe_refund(
        self, payment: Payment, amount: int | None, reason: str, key: str
    ) -> dict[str, Any]:
        client = self.stripe.require_client()
        params: dict[str, object] = {
            "payment_intent": payment.provider_payment_id,
            "metadata": {"order_id": payment.order_id, "reason": reason},
        }
        if amount is not None:
            params["amount"] = amount
        try:
            refund = client.v1.refunds.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            raise LedgerError(
                exc.user_message or str(exc), str(exc.code or "refund_declined")
            ) from exc
        except stripe.StripeError as exc:
            raise ProviderUnavailableError(f"Stripe did not answer: {type(exc).__name__}") from exc
        return refund.to_dict()

    def _outcome(
        self, result: CommandResult, refund_id: str, amount: int, status: str, note: str = ""
    ) -> RefundResult:
        """Whether the ledger now counts this refund: recorded now, or before (a replayed
        key, the webhook, a concurrent request)."""
        payment = self.ledger.get_payment(result.payment_id)
        recorded = refund_id in payment.refund_ids
        problem = None
        if not recorded and status not in PENDING:
            counted = f"{payment.refunded_amount} of {payment.amount} {payment.currency}"
            problem = (
                f"{payment.provider} made refund {refund_id} of {amount} ({status}), but the "
                f"ledger recorded nothing for it: it counts {counted} as refunded"
                + (f"; {note}" if note else "")
            )
        return RefundResult(
            refund_id, amount, status, payment.status, result.position, recorded, problem
        )
