"""Stripe's later word on a paid charge: refunds (made, failed later, succeeded later) and
disputes (chargebacks), each mapped onto one ledger command.

A dispute names only its charge, and a refund made in the Dashboard carries no metadata: the
charge, read from Stripe, carries the order id (`charge_order_id`).
Disputes: https://docs.stripe.com/disputes/how-disputes-work (`lost` is a chargeback);
refunds that fail after succeeding: https://docs.stripe.com/refunds#failed-refunds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import stripe

from api.errors import ApiError
from api.providers.stripe_api import (
    order_id_of,
    payment_intent_id,
    succeeded_refunds,
    unavailable,
)
from api.providers.webhooks import WebhookOutcome, outcome_of
from ledger.application import Approval, Delivery, PaymentLedger
from ledger.payment import Payment, Status

ListRefunds = Callable[[dict[str, str]], list[dict[str, Any]]]
# Where a paid payment may be once a refund or a dispute has moved on.
PAID = frozenset({Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED})
# A refund in these states gave the money back to the charge (Stripe reverses it).
UNDONE = ("failed", "canceled")


def charge_order_id(client: stripe.StripeClient, charge_id: str) -> str | None:
    """The order id the charge carries; None for a charge this account does not have.
    Stripe unreachable is a 502 (Stripe retries the delivery), never an ignored delivery."""
    try:
        charge = client.v1.charges.retrieve(charge_id).to_dict()
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise unavailable(f"charge {charge_id}", exc) from exc
    except stripe.StripeError as exc:
        raise unavailable(f"charge {charge_id}", exc) from exc
    return order_id_of(charge)


class ChargeReports:
    """Webhook handlers for what happens to a charge after it was paid."""

    def __init__(self, ledger: PaymentLedger, list_refunds: ListRefunds) -> None:
        self.ledger = ledger
        self.list_refunds = list_refunds

    def charge_refunded(
        self, payment: Payment, charge: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        total, amount = charge.get("amount_refunded"), charge.get("amount")
        if not isinstance(amount, int) or not _is_amount(amount) or not _is_amount(total):
            raise ApiError(400, "invalid_event", "charge amount or amount_refunded is not one")
        refusal = _unmatched_charge(payment, amount, charge.get("currency"))
        if refusal is not None:  # 200 rejected, recorded: a 400 would be retried for days
            result = self.ledger.record_unrepresentable(
                payment.id, "refunded", refusal, delivery, loaded=payment
            )
            return WebhookOutcome("rejected", result.payment_id, result.status, reason=refusal)
        # A refund proves the charge succeeded (for what it took), should its completion
        # arrive later.
        method = (charge.get("payment_method_details") or {}).get("type") or "card"
        intent = payment_intent_id(charge) or str(charge.get("id"))
        approval = Approval(intent, method, at, captured_amount=amount)
        # Each refund under its own re_ id, from Stripe's list (not amount_refunded: a total
        # that names no refund), so one seen by an admin request or a redelivery counts once.
        listed = succeeded_refunds(self._refunds_of(charge))
        result = self.ledger.record_listed_refunds(
            payment.id, listed, approval, delivery, loaded=payment
        )
        return outcome_of(result, {"completed", "partially_refunded", "refunded"})

    def _refunds_of(self, charge: dict[str, Any]) -> list[dict[str, Any]]:
        # The charge carries its refunds only on API versions before 2022-11-15 or when the
        # endpoint expands them (https://docs.stripe.com/changelog/2022-11-15/deprecates-charges-auto-expand).
        embedded = charge.get("refunds")
        if isinstance(embedded, dict) and embedded.get("has_more") is False:
            return [r for r in embedded.get("data") or [] if isinstance(r, dict)]
        intent = payment_intent_id(charge)
        return self.list_refunds(
            {"payment_intent": intent} if intent else {"charge": str(charge.get("id"))}
        )

    def refund_updated(
        self, payment: Payment, refund: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        """`charge.refund.updated`: failed or canceled undoes that refund (one the ledger
        never counted is unchanged); succeeded records it as Stripe's list has it now (so a
        stale `succeeded` delivered after its `failed` counts nothing); pending waits."""
        status = str(refund.get("status"))
        if status in UNDONE:
            reason = str(refund.get("failure_reason") or f"refund {status} at Stripe")
            result = self.ledger.fail_refund(
                payment.id, str(refund["id"]), reason, at, delivery, loaded=payment
            )
            return outcome_of(result, set(Status))
        if status == "succeeded":
            intent = payment_intent_id(refund)
            filters = {"payment_intent": intent} if intent else {"charge": str(refund["charge"])}
            listed = succeeded_refunds(self.list_refunds(filters))
            approval = Approval(intent or str(refund["charge"]), "card", at)
            result = self.ledger.record_listed_refunds(
                payment.id, listed, approval, delivery, loaded=payment
            )
            return outcome_of(result, PAID)
        reason = f"refund {status}: counted once it succeeds"
        return WebhookOutcome("unchanged", payment.id, payment.status, reason=reason)

    def dispute_created(
        self, payment: Payment, dispute: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        loaded = self._paid_first(payment, dispute, at)
        result = self.ledger.open_dispute(
            payment.id,
            str(dispute["id"]),
            disputed_amount(payment, dispute),
            str(dispute.get("reason") or "disputed"),
            at,
            delivery,
            loaded,
        )
        return outcome_of(result, {"disputed"})

    def dispute_closed(
        self, payment: Payment, dispute: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        """`status` won / warning_closed → the status before the dispute; lost → a
        chargeback. A close delivered before its created opens the dispute first, so the
        created, when it comes, finds it closed (unchanged) instead of opening it for good.
        Refunds made before the dispute but delivered while it was open were refused then
        (a disputed payment takes no refund): they are recorded from Stripe's list after it."""
        dispute_id, amount = str(dispute["id"]), disputed_amount(payment, dispute)
        intent = payment_intent_id(dispute)
        filters = {"payment_intent": intent} if intent else {"charge": str(dispute["charge"])}
        listed = succeeded_refunds(self.list_refunds(filters))  # before: 502 retries it all
        loaded = self._paid_first(payment, dispute, at)
        known = dispute_id in payment.closed_dispute_ids or (
            payment.dispute is not None and payment.dispute["dispute_id"] == dispute_id
        )
        if not known and (loaded is None or payment.accepts("disputed")):
            reason = str(dispute.get("reason") or "disputed")
            self.ledger.open_dispute(payment.id, dispute_id, amount, reason, at, loaded=loaded)
            loaded = None  # saved: the close decides on the stored payment
        result = self.ledger.close_dispute(
            payment.id, dispute_id, str(dispute.get("status")), amount, at, delivery, loaded
        )
        if result.appended and listed:
            late = self.ledger.record_listed_refunds(payment.id, listed)
            result = late if late.appended else result
        return outcome_of(result, PAID)

    def _paid_first(
        self, payment: Payment, dispute: dict[str, Any], at: datetime
    ) -> Payment | None:
        """A dispute proves the charge was paid (as a refund does): a payment whose completion
        has not been delivered yet is completed first. None: the caller must reload."""
        if not payment.accepts("completed"):
            return payment
        intent = payment_intent_id(dispute) or str(dispute.get("charge"))
        method = (dispute.get("payment_method_details") or {}).get("type") or "card"
        self.ledger.complete(payment.id, intent, str(method), at, loaded=payment)
        return None


def disputed_amount(payment: Payment, dispute: dict[str, Any]) -> int:
    """The dispute's amount in the payment's currency; a dispute in another currency (a
    converted payment's presentment currency) is taken as all the customer still paid."""
    amount = dispute.get("amount")
    same = str(dispute.get("currency") or "").upper() == payment.currency
    if same and isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
        return amount
    return payment.refundable_amount


def _is_amount(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _unmatched_charge(payment: Payment, amount: int, currency: Any) -> str | None:
    """Why a refunded charge cannot be the payment's: another currency (a converted charge's
    refunds are in the customer's money), or another amount than the one it captured."""
    reported = f"{amount} {str(currency or '').upper()}"
    if str(currency or "").upper() != payment.currency:
        return f"Stripe reports a charge of {reported}; the payment is in {payment.currency}"
    if payment.completed_at is not None and amount != payment.amount:
        return f"Stripe reports a charge of {reported}; the payment took {payment.amount}"
    return None
