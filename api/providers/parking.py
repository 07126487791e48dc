"""Releasing parked deliveries: when an order is initiated, the deliveries its provider sent
before (ledger/parking.py) are applied through the adapter, oldest first, each once."""

from __future__ import annotations

import logging
from typing import Protocol

from api.errors import ApiError
from api.providers.webhooks import WebhookOutcome
from ledger import parking
from ledger.application import CommandResult, PaymentLedger
from ledger.errors import ConflictError, LedgerError, ProviderUnavailableError

log = logging.getLogger("ledger.parking")


class Releasing(Protocol):
    """What releasing needs of a provider's adapter (a `PaymentProvider` is one)."""

    @property
    def name(self) -> str: ...

    def apply_verified(self, body: bytes) -> WebhookOutcome: ...


def release_parked(
    ledger: PaymentLedger, provider: Releasing, order_id: str
) -> list[WebhookOutcome]:
    """Apply the order's unreleased parked deliveries of `provider`, oldest first, and mark
    each released with its outcome. One that fails where a retry can help (the provider's
    API unreachable) stays parked with those after it, for the next release; one refused
    for good is released as `refused`. Never raises for a delivery: the caller's command
    (an initiate) has succeeded either way."""
    outcomes: list[WebhookOutcome] = []
    for delivery in parking.unreleased(ledger, provider.name, order_id):
        try:
            outcome = provider.apply_verified(delivery.body.encode("utf-8"))
        except Exception as exc:
            if _retryable(exc):
                log.warning(
                    "parked %s delivery %s of order %s stays parked: %r",
                    provider.name,
                    delivery.event_key,
                    order_id,
                    exc,
                )
                break
            outcome = WebhookOutcome("refused", reason=_reason(exc))
        parking.release(ledger, provider.name, order_id, delivery.event_key, outcome.outcome)
        outcomes.append(outcome)
    return outcomes


def initiated_after_release(
    ledger: PaymentLedger, provider: Releasing, order_id: str, initiated: CommandResult
) -> CommandResult:
    """The initiate's result once the order's parked deliveries are released: the payment's
    status and the last position they appended (so `?min_position=` sees them)."""
    applied = [o.position for o in release_parked(ledger, provider, order_id) if o.position]
    if not applied:
        return initiated
    payment = ledger.get_payment(initiated.payment_id)
    position = max(initiated.position or 0, *applied)
    return CommandResult(payment.id, payment.status, initiated.outcome, position)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, ProviderUnavailableError | ConflictError):
        return True
    if isinstance(exc, ApiError):
        return exc.status >= 500
    return not isinstance(exc, LedgerError)  # not a rule's refusal: a fault, maybe passing


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError | LedgerError):
        return f"{exc.code}: {exc.message}"
    return type(exc).__name__
