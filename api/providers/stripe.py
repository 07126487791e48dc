"""Stripe adapter: the official SDK pointed at STRIPE_API_BASE, mapped onto ledger commands."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import stripe

from ledger.application import CommandResult, PaymentLedger
from ledger.errors import AmountMismatchError, LedgerError, NotFoundError, ProviderUnavailableError
from ledger.payment import Payment, Provider

log = logging.getLogger("ledger.stripe")


def make_client(api_key: str | None, api_base: str, timeout: float) -> stripe.StripeClient | None:
    if not api_key:
        return None
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")},
        http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
        # The ledger decides about retries (the caller gets 502 and may confirm again).
        max_network_retries=0,
    )


def order_id_of(obj: dict[str, Any]) -> str | None:
    """Our order id, from metadata (preferred) or client_reference_id."""
    metadata = obj.get("metadata") or {}
    value = metadata.get("order_id") or obj.get("client_reference_id")
    return str(value) if value else None


class StripePayments:
    """Confirms Stripe Checkout Sessions after the success redirect."""

    def __init__(self, ledger: PaymentLedger, client: stripe.StripeClient | None) -> None:
        self.ledger = ledger
        self.client = client

    def retrieve_session(self, session_id: str) -> dict[str, Any]:
        if self.client is None:
            raise ProviderUnavailableError(
                "STRIPE_API_KEY is not configured", "provider_not_configured"
            )
        try:
            session = self.client.v1.checkout.sessions.retrieve(session_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise NotFoundError(
                    f"unknown Checkout Session {session_id}", "unknown_session"
                ) from exc
            raise LedgerError(exc.user_message or str(exc), "stripe_invalid_request") from exc
        except stripe.StripeError as exc:  # connection, 5xx, authentication, rate limit
            log.warning("stripe session %s: %r", session_id, exc)
            raise ProviderUnavailableError(f"Stripe did not answer: {type(exc).__name__}") from exc
        return session.to_dict()

    def confirm(self, session_id: str) -> CommandResult:
        session = self.retrieve_session(session_id)
        order_id = order_id_of(session)
        if order_id is None:
            raise LedgerError("Checkout Session carries no order id", "unknown_order")
        payment = self.ledger.find_payment(Provider.STRIPE, order_id)
        check_amount(payment, session.get("amount_total"), session.get("currency"))
        if session.get("payment_status") != "paid":
            return CommandResult(payment.id, payment.status, "unchanged")
        return self.ledger.complete(
            payment.id,
            provider_payment_id=payment_intent_id(session) or session_id,
            method=", ".join(session.get("payment_method_types") or ["card"]),
            approved_at=datetime.now(UTC),
        )


def payment_intent_id(obj: dict[str, Any]) -> str | None:
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return str(intent) if intent else None


def check_amount(payment: Payment, amount: Any, currency: Any) -> None:
    if amount != payment.amount or str(currency or "").upper() != payment.currency:
        raise AmountMismatchError(
            f"Stripe reports {amount} {str(currency or '').upper()}, "
            f"the payment is {payment.amount} {payment.currency}"
        )
