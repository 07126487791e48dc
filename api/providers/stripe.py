"""Stripe adapter: the official SDK pointed at STRIPE_API_BASE, mapped onto ledger commands.

Webhooks: https://docs.stripe.com/webhooks (signatures, retries for up to 3 days) and
https://docs.stripe.com/api/events/types (the objects each event type carries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import stripe

from api.errors import ApiError
from api.providers.webhooks import (
    DeliveryLog,
    WebhookOutcome,
    ignored,
    outcome_of,
    parse_json_object,
)
from ledger.application import Approval, CommandResult, Delivery, PaymentLedger, RefundReport
from ledger.errors import AmountMismatchError, LedgerError, NotFoundError, ProviderUnavailableError
from ledger.payment import Payment, Provider

log = logging.getLogger("ledger.stripe")

# Stripe's own default: a signature older than this is a replay.
SIGNATURE_TOLERANCE_SECONDS = 300


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


Handler = Callable[[Payment, dict[str, Any], datetime, Delivery], WebhookOutcome]


class StripePayments:
    """Confirms Stripe Checkout Sessions after the success redirect and applies webhooks."""

    def __init__(self, ledger: PaymentLedger, client: stripe.StripeClient | None) -> None:
        self.ledger = ledger
        self.client = client
        self._handlers: dict[str, Handler] = {
            "checkout.session.completed": self._session_completed,
            "checkout.session.async_payment_succeeded": self._session_completed,
            "checkout.session.async_payment_failed": self._session_failed,
            "checkout.session.expired": self._session_expired,
            "payment_intent.payment_failed": self._intent_failed,
            "charge.refunded": self._charge_refunded,
        }

    def require_client(self) -> stripe.StripeClient:
        if self.client is None:
            raise ProviderUnavailableError(
                "STRIPE_API_KEY is not configured", "provider_not_configured"
            )
        return self.client

    def retrieve_session(self, session_id: str) -> dict[str, Any]:
        client = self.require_client()
        try:
            session = client.v1.checkout.sessions.retrieve(session_id)
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
            loaded=payment,
        )

    # --- webhooks ------------------------------------------------------------------

    def handle_webhook(
        self, payload: bytes, signature: str | None, secret: str | None
    ) -> WebhookOutcome:
        """Verify one delivery on its raw bytes and apply it once (the event id is the key)."""
        with DeliveryLog(Provider.STRIPE.value) as delivery:
            event = verify_event(payload, signature, secret)
            delivery.identify(event["id"], event["type"])
            return delivery.finish(self._dispatch(event))

    def _dispatch(self, event: dict[str, Any]) -> WebhookOutcome:
        handler = self._handlers.get(event["type"])
        if handler is None:
            return ignored("unhandled_type")
        obj = event["data"]["object"]
        order_id = order_id_of(obj)
        try:
            if order_id is None:
                raise NotFoundError("the object names no order")
            payment = self.ledger.find_payment(Provider.STRIPE, order_id)
        except NotFoundError:
            # Not 404: Stripe would retry for three days a payment we will never know.
            return ignored("unknown_order")
        delivery = Delivery(Provider.STRIPE.value, event["id"], event["type"])
        return handler(payment, obj, _created(event), delivery)

    def _session_completed(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        check_amount(payment, session.get("amount_total"), session.get("currency"))
        if session.get("payment_status") != "paid":
            # Delayed methods (bank debits) complete later with async_payment_succeeded.
            reason = f"payment_status {session.get('payment_status')}"
            return WebhookOutcome("unchanged", payment.id, payment.status, reason=reason)
        provider_payment_id = payment_intent_id(session) or str(session.get("id"))
        method = ", ".join(session.get("payment_method_types") or ["card"])
        result = self.ledger.complete(
            payment.id, provider_payment_id, method, at, delivery, loaded=payment
        )
        return outcome_of(result, {"completed"})

    def _session_failed(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        check_amount(payment, session.get("amount_total"), session.get("currency"))
        message = "the delayed payment of the Checkout Session failed"
        result = self.ledger.fail(
            payment.id, "async_payment_failed", message, at, delivery, loaded=payment
        )
        return outcome_of(result, {"failed"})

    def _session_expired(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        check_amount(payment, session.get("amount_total"), session.get("currency"))
        result = self.ledger.cancel(
            payment.id, "checkout session expired", at, delivery, loaded=payment
        )
        return outcome_of(result, {"cancelled"})

    def _intent_failed(
        self, payment: Payment, intent: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        check_amount(payment, intent.get("amount"), intent.get("currency"))
        error = intent.get("last_payment_error") or {}
        code = str(error.get("code") or "payment_failed")
        message = str(error.get("message") or "the payment failed")
        result = self.ledger.fail(payment.id, code, message, at, delivery, loaded=payment)
        return outcome_of(result, {"failed"})

    def _charge_refunded(
        self, payment: Payment, charge: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        check_amount(payment, charge.get("amount"), charge.get("currency"))
        total = charge.get("amount_refunded")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ApiError(400, "invalid_event", "charge.amount_refunded is not an amount")
        # A refund proves the charge succeeded, should its completion arrive later.
        method = (charge.get("payment_method_details") or {}).get("type") or "card"
        approval = Approval(payment_intent_id(charge) or str(charge.get("id")), method, at)
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

    def list_refunds(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """All refunds of a PaymentIntent or charge, newest first as Stripe lists them."""
        client = self.require_client()
        try:
            page = client.v1.refunds.list(params={**filters, "limit": 100})  # type: ignore[arg-type]
            return [r.to_dict() for r in page.auto_paging_iter()]
        except stripe.StripeError as exc:  # a retry (Stripe's, or the admin's) can help
            log.warning("stripe refunds %s: %r", filters, exc)
            raise ProviderUnavailableError(f"Stripe did not answer: {type(exc).__name__}") from exc


def succeeded_refunds(refunds: list[dict[str, Any]]) -> list[RefundReport]:
    """Stripe's refunds (newest first) as the ledger's reports, oldest first. Only succeeded
    ones count: a pending refund may still fail (https://docs.stripe.com/refunds#failed-refunds)."""
    reports = [
        RefundReport(
            refund_id=str(r["id"]),
            amount=int(r["amount"]),
            reason=str((r.get("metadata") or {}).get("reason") or "refunded at Stripe"),
            refunded_at=datetime.fromtimestamp(int(r["created"]), UTC),
        )
        for r in refunds
        if r.get("status") == "succeeded"
    ]
    return reports[::-1]


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


def verify_event(payload: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    """The event, once its signature verifies on the raw bytes (the SDK's own check)."""
    if not secret:
        raise ApiError(503, "webhook_not_configured", "STRIPE_WEBHOOK_SECRET is not set")
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, SIGNATURE_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise ApiError(400, "invalid_signature", f"Stripe-Signature: {exc.user_message}") from None
    except ValueError:  # not UTF-8, so it cannot be what Stripe signed
        raise ApiError(400, "malformed_json", "the body is not UTF-8 JSON") from None
    event = parse_json_object(payload)
    data = event.get("data")
    if (
        not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
    ):
        raise ApiError(400, "invalid_event", "not a Stripe event: id, type or data.object missing")
    return event


def _created(event: dict[str, Any]) -> datetime:
    """When Stripe created the event: the same on every redelivery, unlike our clock."""
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, UTC)
    return datetime.now(UTC)
