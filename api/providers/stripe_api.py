"""Stripe's objects and signatures, as the adapter reads them: the SDK client, the event
check on raw bytes, and the fields the ledger takes from sessions, charges and refunds.

Webhooks: https://docs.stripe.com/webhooks (signatures, retries for up to 3 days) and
https://docs.stripe.com/api/events/types (the objects each event type carries).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import stripe

from api.errors import ApiError
from api.providers.base import SettlementLine
from api.providers.webhooks import parse_json_object
from ledger.application import RefundReport
from ledger.errors import ProviderUnavailableError
from ledger.payment import Payment

log = logging.getLogger("ledger.stripe")

# Stripe's own default: a signature older than this is a replay.
SIGNATURE_TOLERANCE_SECONDS = 300
# Balance transactions that settle a payment or give it back (`payment`/`payment_refund`:
# the same for non-card methods); payouts, adjustments and Stripe's own fees are not lines.
SETTLED_TYPES = frozenset({"charge", "payment", "refund", "payment_refund"})


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


def payment_method(session: dict[str, Any]) -> str:
    return ", ".join(session.get("payment_method_types") or ["card"])


@dataclass(frozen=True)
class Captured:
    """What a paid Checkout Session took, in the order's currency: `amount` with the
    `reason` it differs from the order's (if it does), or `refusal` when no amount in the
    order's currency can be named (the ledger records the report, changing no money)."""

    amount: int
    reason: str = "amount differs"
    refusal: str | None = None


def captured(payment: Payment, session: dict[str, Any]) -> Captured:
    """Money Stripe really moved is never refused (README, "Provider truth"): a discount
    (`total_details.amount_discount`) or the older Adaptive Pricing shape, where the session
    is in the customer's currency and `currency_conversion` names the merchant's amount
    (https://docs.stripe.com/payments/checkout/adaptive-pricing)."""
    amount, currency = session.get("amount_total"), _upper(session.get("currency"))
    conversion = session.get("currency_conversion")
    reason = "amount differs"
    if currency != payment.currency and isinstance(conversion, dict):
        amount, currency = conversion.get("amount_total"), _upper(conversion.get("source_currency"))
        reason = "currency_conversion"
    elif isinstance(amount, int) and amount + _discount(session) == payment.ordered_amount:
        reason = "discount"
    if currency != payment.currency:
        refusal = (
            f"Stripe reports {session.get('amount_total')} {_upper(session.get('currency'))},"
            f" which is neither the payment's {payment.currency} nor a conversion from it"
        )
        return Captured(payment.amount, refusal=refusal)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise ApiError(400, "invalid_event", "the Checkout Session's amount_total is not an amount")
    return Captured(amount, reason)


def _discount(session: dict[str, Any]) -> int:
    value = (session.get("total_details") or {}).get("amount_discount")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _upper(currency: Any) -> str:
    return str(currency or "").upper()


def charge_id_of(obj: dict[str, Any]) -> str | None:
    """The charge a dispute or a refund belongs to (an id, or the expanded object)."""
    charge = obj.get("charge")
    if isinstance(charge, dict):
        charge = charge.get("id")
    return str(charge) if charge else None


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


def created_at(event: dict[str, Any]) -> datetime:
    """When Stripe created the event: the same on every redelivery, unlike our clock."""
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, UTC)
    return datetime.now(UTC)


def day_bounds(start: date, end: date, zone: tzinfo) -> tuple[int, int]:
    """Unix seconds of `start`'s first moment and the day after `end`'s, in `zone`."""
    first = datetime.combine(start, time(), zone)
    after = datetime.combine(end + timedelta(days=1), time(), zone)
    return int(first.timestamp()), int(after.timestamp())


def settlement_line(txn: dict[str, Any], zone: tzinfo) -> SettlementLine:
    """A balance transaction as a settlement line: its charge's PaymentIntent and order
    (a refund's through its expanded charge), the fee Stripe kept in the balance's currency."""
    source = txn.get("source")
    source = source if isinstance(source, dict) else {}
    charge = source.get("charge") if source.get("object") == "refund" else source
    charge = charge if isinstance(charge, dict) else {}
    intent = payment_intent_id(source) or payment_intent_id(charge)
    created = datetime.fromtimestamp(int(txn["created"]), UTC)
    return SettlementLine(
        provider_payment_id=intent or str(source.get("id") or ""),
        order_id=order_id_of(charge) or order_id_of(source),
        amount=int(txn["amount"]),
        fee=int(txn.get("fee") or 0),
        currency=_upper(txn.get("currency")),
        settled_on=created.astimezone(zone).date(),
        line_id=str(txn["id"]),
    )


def unavailable(what: str, exc: stripe.StripeError) -> ProviderUnavailableError:
    """Stripe could not be reached or answered 5xx: 502 to the caller, who may retry."""
    log.warning("stripe %s: %r", what, exc)
    return ProviderUnavailableError(f"Stripe did not answer: {type(exc).__name__}")
