"""Stripe adapter: the official SDK pointed at STRIPE_API_BASE, mapped onto ledger commands.

Checkout Sessions are confirmed after the success redirect and re-read by reconciliation;
webhooks are verified on their raw bytes (api/providers/stripe_api.py) and applied once,
keyed by the event id; refunds are created with the admin's idempotency key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import stripe

from api.providers.base import (
    Accepted,
    RefundResult,
    SettlementLine,
    WebhookRequest,
    header,
    refund_outcome,
)
from api.providers.parking import release_parked
from api.providers.stripe_api import (
    SETTLED_TYPES,
    captured,
    charge_id_of,
    created_at,
    day_bounds,
    make_client,
    order_id_of,
    payment_intent_id,
    payment_method,
    settlement_line,
    succeeded_refunds,
    unavailable,
    verify_event,
)
from api.providers.stripe_disputes import ChargeReports, charge_order_id
from api.providers.webhooks import (
    DeliveryLog,
    WebhookOutcome,
    ignored,
    outcome_of,
    parse_json_object,
)
from ledger.application import CommandResult, Delivery, PaymentLedger, PaymentOrder
from ledger.errors import (
    LedgerError,
    NotFoundError,
    ProviderRefusedError,
    ProviderUnavailableError,
)
from ledger.parking import park
from ledger.payment import Payment, Provider
from ledger.settings import Settings

Handler = Callable[[Payment, dict[str, Any], datetime, Delivery], WebhookOutcome]
# A Checkout Session is created shortly before the ledger's payment or after it; reconciliation
# lists the sessions created from this long before the payment.
SESSION_LOOKBACK = timedelta(hours=1)


def from_settings(ledger: PaymentLedger, settings: Settings) -> StripePayments:
    key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
    client = make_client(key, settings.stripe_api_base, settings.provider_timeout_seconds)
    secret = settings.stripe_webhook_secret
    secret_value = secret.get_secret_value() if secret else None
    return StripePayments(ledger, client, secret_value, settings.zone)


class StripePayments:
    """Confirms Stripe Checkout Sessions after the success redirect and applies webhooks."""

    name = Provider.STRIPE.value
    # accept checks the signature on the bytes: nothing to wait for
    checks_offline = True

    def __init__(
        self,
        ledger: PaymentLedger,
        client: stripe.StripeClient | None,
        webhook_secret: str | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.webhook_secret = webhook_secret
        self.zone = zone  # settlement days are business days there
        later = ChargeReports(ledger, self.list_refunds)
        # charge.dispute.funds_withdrawn / funds_reinstated are left unhandled (ignored):
        # the dispute's close decides the money.
        self._handlers: dict[str, Handler] = {
            "checkout.session.completed": self._session_completed,
            "checkout.session.async_payment_succeeded": self._session_completed,
            "checkout.session.async_payment_failed": self._session_failed,
            "checkout.session.expired": self._session_expired,
            "payment_intent.payment_failed": self._intent_failed,
            "charge.refunded": later.charge_refunded,
            "charge.refund.updated": later.refund_updated,
            "charge.dispute.created": later.dispute_created,
            "charge.dispute.closed": later.dispute_closed,
        }

    def close(self) -> None:
        pass  # the SDK's httpx client lives as long as the process

    def check_order(self, order: PaymentOrder) -> None:
        pass  # Stripe takes any currency it lists; ISO 4217 is checked for every order

    def require_client(self) -> stripe.StripeClient:
        if self.client is None:
            raise ProviderUnavailableError(
                "STRIPE_API_KEY is not configured", "provider_not_configured"
            )
        return self.client

    # --- checkout ------------------------------------------------------------------

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
            raise unavailable("session", exc) from exc
        return session.to_dict()

    def confirm(self, session_id: str) -> CommandResult:
        session = self.retrieve_session(session_id)
        order_id = order_id_of(session)
        if order_id is None:
            raise LedgerError("Checkout Session carries no order id", "unknown_order")
        payment = self.ledger.find_payment(Provider.STRIPE, order_id)
        return self._apply_session(payment, session, datetime.now(UTC), None)

    def _apply_session(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery | None
    ) -> CommandResult:
        if session.get("payment_status") == "paid":
            taken = captured(payment, session)
            if taken.refusal:
                return self.ledger.record_unrepresentable(
                    payment.id, "completed", taken.refusal, delivery, loaded=payment
                )
            intent = payment_intent_id(session) or str(session.get("id"))
            method = payment_method(session)
            return self.ledger.complete(
                payment.id, intent, method, at, delivery, payment, taken.amount, taken.reason
            )
        if session.get("status") == "expired":
            return self.ledger.cancel(
                payment.id, "checkout session expired", at, delivery, loaded=payment
            )
        return CommandResult(payment.id, payment.status, "unchanged")

    # --- refunds, reconciliation, settlements --------------------------------------

    def refund(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        """Create the refund under `key`, then record every succeeded refund Stripe lists for
        the PaymentIntent, each under its own re_ id (as `charge.refunded` does)."""
        refund = self._create_refund(payment, amount, reason, key)
        listed = self.list_refunds({"payment_intent": str(payment.provider_payment_id)})
        # The listed copy is fresher than a replayed create answer; a list that lags behind
        # the create leaves the create's answer, which is Stripe's word too.
        ours = next((r for r in listed if r.get("id") == refund["id"]), None)
        if ours is None:
            listed.insert(0, ours := refund)
        reports = succeeded_refunds(listed)
        result = self.ledger.record_listed_refunds(payment.id, reports)
        total = sum(r.amount for r in reports)
        return refund_outcome(
            self.ledger,
            result,
            str(ours["id"]),
            int(ours["amount"]),
            str(ours.get("status")),
            f"Stripe's succeeded refunds total {total}",
        )

    def _create_refund(
        self, payment: Payment, amount: int | None, reason: str, key: str
    ) -> dict[str, Any]:
        client = self.require_client()
        params: dict[str, object] = {
            "payment_intent": payment.provider_payment_id,
            "metadata": {"order_id": payment.order_id, "reason": reason},
        }
        if amount is not None:
            params["amount"] = amount
        try:
            refund = client.v1.refunds.create(params=params, options={"idempotency_key": key})  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            message, code = exc.user_message or str(exc), str(exc.code or "refund_declined")
            raise ProviderRefusedError(message, code, "stripe") from exc
        except stripe.StripeError as exc:
            raise unavailable("refund", exc) from exc
        return refund.to_dict()

    def list_refunds(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """All refunds of a PaymentIntent or charge, newest first as Stripe lists them."""
        client = self.require_client()
        try:
            page = client.v1.refunds.list(params={**filters, "limit": 100})  # type: ignore[arg-type]
            return [r.to_dict() for r in page.auto_paging_iter()]
        except stripe.StripeError as exc:  # a retry (Stripe's, or the admin's) can help
            raise unavailable(f"refunds {filters}", exc) from exc

    def reread(self, payment: Payment) -> CommandResult:
        """Find the payment's Checkout Session (by its order id, among the sessions created
        around the payment) and apply it as the confirm would."""
        session = self._session_of(payment)
        if session is None:
            return CommandResult(payment.id, payment.status, "unchanged")
        return self._apply_session(payment, session, datetime.now(UTC), None)

    def _session_of(self, payment: Payment) -> dict[str, Any] | None:
        client = self.require_client()
        since = int((payment.created_on - SESSION_LOOKBACK).timestamp())
        params: dict[str, Any] = {"created": {"gte": since}, "limit": 100}
        try:
            page = client.v1.checkout.sessions.list(params=params)  # type: ignore[arg-type]
            for session in page.auto_paging_iter():
                found = session.to_dict()
                if order_id_of(found) == payment.order_id:
                    return found
        except stripe.StripeError as exc:
            raise unavailable("sessions", exc) from exc
        return None

    def settlements(self, start: date, end: date) -> list[SettlementLine] | None:
        """The balance transactions of charges and refunds created on those business days,
        each with the fee Stripe kept (https://docs.stripe.com/api/balance_transactions);
        `data.source` is expanded (and a refund's charge) to name the payment and order."""
        client = self.require_client()
        since, until = day_bounds(start, end, self.zone)
        params: dict[str, Any] = {
            "created": {"gte": since, "lt": until},
            "limit": 100,
            "expand": ["data.source", "data.source.charge"],
        }
        try:
            page = client.v1.balance_transactions.list(params=params)  # type: ignore[arg-type]
            found = [t.to_dict() for t in page.auto_paging_iter()]
        except stripe.StripeError as exc:
            raise unavailable("balance transactions", exc) from exc
        return [
            settlement_line(txn, self.zone) for txn in found if txn.get("type") in SETTLED_TYPES
        ]

    # --- webhooks ------------------------------------------------------------------

    def accept(self, request: WebhookRequest) -> Accepted:
        """The signature on the raw bytes, and the shape of an event (the id is the key)."""
        with DeliveryLog(self.name) as delivery:
            signature = header(request, "Stripe-Signature")
            event = verify_event(request.body, signature, self.webhook_secret)
            delivery.identify(event["id"], event["type"])
            delivery.finish(WebhookOutcome("accepted"))
            return Accepted(event["id"], event["type"])

    def apply_verified(self, body: bytes) -> WebhookOutcome:
        """Apply a delivery verified when it arrived (from the inbox, or a parked one), once,
        under its event id's receipt."""
        with DeliveryLog(self.name, self.ledger) as delivery:
            event = parse_json_object(body)  # its shape was checked with its signature
            delivery.identify(event["id"], event["type"])
            return delivery.finish(self._dispatch(event, body))

    def _dispatch(self, event: dict[str, Any], body: bytes) -> WebhookOutcome:
        handler = self._handlers.get(event["type"])
        if handler is None:
            return ignored("unhandled_type")
        obj = event["data"]["object"]
        order_id = self._order_id(obj)
        if order_id is None:
            # Not 404: Stripe would retry for three days a payment we will never know.
            return ignored("unknown_order")
        try:
            payment = self.ledger.find_payment(Provider.STRIPE, order_id)
        except NotFoundError:
            return self._park(order_id, event, body)
        delivery = Delivery(self.name, event["id"], event["type"])
        return handler(payment, obj, created_at(event), delivery)

    def _order_id(self, obj: dict[str, Any]) -> str | None:
        """Sessions, charges and our own refunds carry the order id; a dispute (or a refund
        made in the Dashboard) names only its charge, which carries it."""
        order_id, charge = order_id_of(obj), charge_id_of(obj)
        if order_id is None and charge and obj.get("object") in ("dispute", "refund"):
            order_id = charge_order_id(self.require_client(), charge)
        return order_id

    def _park(self, order_id: str, event: dict[str, Any], body: bytes) -> WebhookOutcome:
        """Keep a delivery that beat its order's initiate; applied when the order is."""
        park(self.ledger, self.name, order_id, event["id"], event["type"], body.decode())
        # The initiate may have looked for parked deliveries just before this one was
        # stored: then release it now (whoever releases it, it applies once).
        if Payment.create_id(self.name, order_id) in self.ledger.repository:
            release_parked(self.ledger, self, order_id)
        reason = f"order {order_id} is not initiated yet: applied when it is"
        return WebhookOutcome("parked", reason=reason)

    def _session_completed(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        # Unpaid, expired and failed sessions carry no money: their amount is not checked.
        if session.get("payment_status") != "paid":
            # Delayed methods (bank debits) complete later with async_payment_succeeded.
            reason = f"payment_status {session.get('payment_status')}"
            return WebhookOutcome("unchanged", payment.id, payment.status, reason=reason)
        outcome = outcome_of(self._apply_session(payment, session, at, delivery), {"completed"})
        refusal = captured(payment, session).refusal
        if outcome.outcome == "rejected" and refusal:
            return dataclasses.replace(outcome, reason=refusal)
        return outcome

    def _session_failed(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        message = "the delayed payment of the Checkout Session failed"
        result = self.ledger.fail(
            payment.id, "async_payment_failed", message, at, delivery, loaded=payment
        )
        return outcome_of(result, {"failed"})

    def _session_expired(
        self, payment: Payment, session: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        result = self.ledger.cancel(
            payment.id, "checkout session expired", at, delivery, loaded=payment
        )
        return outcome_of(result, {"cancelled"})

    def _intent_failed(
        self, payment: Payment, intent: dict[str, Any], at: datetime, delivery: Delivery
    ) -> WebhookOutcome:
        error = intent.get("last_payment_error") or {}
        code = str(error.get("code") or "payment_failed")
        message = str(error.get("message") or "the payment failed")
        result = self.ledger.fail(payment.id, code, message, at, delivery, loaded=payment)
        return outcome_of(result, {"failed"})
