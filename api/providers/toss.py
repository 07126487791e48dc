"""Toss Payments adapter: the mapping of the Toss API's answers onto ledger commands.

API reference: https://docs.tosspayments.com/reference (confirm, look-up, cancel).
Webhooks: https://docs.tosspayments.com/reference/using-api/webhook-events. They are not
signed, so a status change is only a hint to re-read the payment from the API; a
DEPOSIT_CALLBACK is authenticated by the `secret` the confirm answer carried.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any

from api.errors import ApiError
from api.providers.base import (
    Accepted,
    RefundResult,
    SettlementLine,
    WebhookRequest,
    header,
    refund_outcome,
)
from api.providers.toss_client import TossClient, TossDeclined
from api.providers.toss_prefetch import PrefetchedReads
from api.providers.webhooks import (
    DeliveryLog,
    WebhookOutcome,
    ignored,
    outcome_of,
    parse_json_object,
)
from ledger.application import (
    Approval,
    CommandResult,
    Delivery,
    PaymentLedger,
    PaymentOrder,
    RefundReport,
)
from ledger.errors import (
    AmountMismatchError,
    ConflictError,
    LedgerError,
    NotFoundError,
    ProviderError,
    ProviderRefusedError,
    ProviderUnavailableError,
)
from ledger.payment import Payment, Provider, Status
from ledger.pending_refund import note_pending_refund, payment_of_pending_refund
from ledger.settings import Settings

STATUS_EVENTS = frozenset({"PAYMENT_STATUS_CHANGED", "CANCEL_STATUS_CHANGED"})
DEPOSIT_CALLBACK = "DEPOSIT_CALLBACK"
SETTLEMENT_PAGE = 100  # lines per GET /v1/settlements page
# The ledger statuses each Toss status leads to, to tell an applied report from a rejected one.
_REACHES: dict[str, frozenset[str]] = {
    "DONE": frozenset({"completed"}),
    "WAITING_FOR_DEPOSIT": frozenset({"pending"}),
    "CANCELED": frozenset({"cancelled", "refunded"}),
    "PARTIAL_CANCELED": frozenset({"partially_refunded"}),
    "ABORTED": frozenset({"failed"}),
    "EXPIRED": frozenset({"cancelled"}),
}


def _parse_time(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else datetime.now(UTC)


def from_settings(ledger: PaymentLedger, settings: Settings) -> TossPayments:
    secret = settings.toss_secret_key.get_secret_value() if settings.toss_secret_key else None
    client = TossClient(settings.toss_api_base, secret, settings.provider_timeout_seconds)
    return TossPayments(ledger, client, settings.inbox_fetch_concurrency)


class TossPayments:
    """Confirms Toss checkouts and applies what the Toss API says a payment is."""

    name = Provider.TOSS.value
    # accept looks the order up in the store
    checks_offline = False

    def __init__(self, ledger: PaymentLedger, client: TossClient, fetch_concurrency: int) -> None:
        self.ledger = ledger
        self.client = client
        self._prefetch = PrefetchedReads(client.get_payment, fetch_concurrency, STATUS_EVENTS)

    def close(self) -> None:
        self.client.close()

    def check_order(self, order: PaymentOrder) -> None:
        # Toss settles in KRW; its answers for other currencies carry decimal amounts that
        # would only be found out after Toss had approved the payment.
        if order.currency != "KRW":
            message = f"Toss payments are KRW only, not {order.currency}"
            raise ApiError(422, "validation_error", message)

    def confirm(self, payment_key: str, order_id: str, amount: int) -> CommandResult:
        payment = self.ledger.find_payment(Provider.TOSS, order_id)
        if amount != payment.amount:
            raise AmountMismatchError(
                f"amount {amount} differs from the initiated {payment.amount} {payment.currency}"
            )
        if payment.provider_payment_id == payment_key and payment.status != Status.PENDING:
            return CommandResult(payment.id, payment.status, "unchanged")  # already confirmed
        if payment.status not in (Status.PENDING, Status.FAILED):
            raise ConflictError(f"payment is {payment.status}", "invalid_state")
        try:
            answer = self.client.confirm(payment_key, order_id, amount)
        except TossDeclined as declined:
            if declined.code != "ALREADY_PROCESSED_PAYMENT":
                self.ledger.fail(payment.id, declined.code, declined.message)
                raise ProviderError(declined.message, declined.code) from declined
            # Our earlier confirm reached Toss but its answer was lost: read the truth.
            answer = self.client.get_payment(payment_key)
        return self.apply(payment, answer, delivery=None)

    def apply(
        self, payment: Payment, answer: dict[str, Any], delivery: Delivery | None
    ) -> CommandResult:
        """Move `payment` to the state of Toss's Payment object `answer`."""
        if answer.get("orderId") != payment.order_id:
            raise ConflictError("Toss payment belongs to another order", "order_mismatch")
        amount, currency = answer.get("totalAmount", payment.amount), answer.get("currency")
        if int(amount) != payment.amount or (currency and currency != payment.currency):
            raise AmountMismatchError(
                f"Toss reports {amount} {currency}, not {payment.amount} {payment.currency}"
            )
        status = answer.get("status")
        key = str(answer.get("paymentKey"))
        if status == "DONE":
            method = str(answer.get("method") or "unknown")
            approved_at = _parse_time(answer.get("approvedAt"))
            return self.ledger.complete(
                payment.id, key, method, approved_at, delivery, loaded=payment
            )
        if status == "WAITING_FOR_DEPOSIT":
            # Also a deposit error after DONE (the bank took the deposit back): the ledger
            # reverses the completion (https://docs.tosspayments.com/guides/v2/webhook).
            secret = str(answer.get("secret") or payment.deposit_secret or "")
            return self.ledger.await_deposit(
                payment.id, key, secret, delivery, loaded=payment, reason=_DEPOSIT_ERROR
            )
        if status in ("CANCELED", "PARTIAL_CANCELED"):
            return self._apply_cancels(payment, answer, delivery)
        if status == "ABORTED":
            failure = answer.get("failure") or {}
            code = str(failure.get("code") or "ABORTED")
            message = str(failure.get("message") or "payment aborted")
            return self.ledger.fail(payment.id, code, message, delivery=delivery, loaded=payment)
        if status == "EXPIRED":
            return self.ledger.cancel(payment.id, "expired", delivery=delivery, loaded=payment)
        return CommandResult(payment.id, payment.status, "unchanged")  # READY, IN_PROGRESS

    def _apply_cancels(
        self, payment: Payment, answer: dict[str, Any], delivery: Delivery | None
    ) -> CommandResult:
        unpaid = (Status.PENDING, Status.FAILED, Status.CANCELLED)
        never_paid = not answer.get("approvedAt")  # else approved, then refunded: its webhook
        # of DONE may simply have been lost, and the money did move twice
        if answer.get("status") == "CANCELED" and payment.status in unpaid and never_paid:
            return self.ledger.cancel(
                payment.id, "cancelled at Toss", delivery=delivery, loaded=payment
            )
        # Each Toss cancel carries its own transactionKey; all new ones go in one save, so a
        # redelivery (or a crash half-way) can never leave some of them applied twice.
        cancels = answer.get("cancels") or []  # null until the first cancel
        refunds = [_refund_report(c) for c in cancels if c.get("cancelStatus") in (None, "DONE")]
        for cancel in cancels:
            if cancel.get("cancelStatus") not in (None, "DONE"):
                # An overseas easy-pay cancel pends; its CANCEL_STATUS_CHANGED may name only
                # this transactionKey, so remember whose it is.
                refund_id, amount = str(cancel.get("transactionKey")), int(cancel["cancelAmount"])
                note_pending_refund(self.ledger, self.name, refund_id, payment.id, amount)
        approval = Approval(
            str(answer.get("paymentKey")),
            str(answer.get("method") or "unknown"),
            _parse_time(answer.get("approvedAt")),
        )
        return self.ledger.record_refunds(payment.id, refunds, approval, delivery, loaded=payment)

    # --- refunds and reconciliation -------------------------------------------------

    def refund(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        """Cancel at Toss (`POST /v1/payments/{paymentKey}/cancel`, idempotent by `key`) and
        record each cancel by its transactionKey."""
        assert payment.provider_payment_id is not None  # refundable payments have one
        try:
            answer = self.client.cancel(payment.provider_payment_id, reason, amount, key)
        except TossDeclined as declined:
            raise ProviderRefusedError(declined.message, declined.code, "toss") from declined
        cancels = answer.get("cancels") or []
        if not cancels:
            raise ProviderUnavailableError("Toss answered a cancel without cancels[]")
        ours = cancels[-1]  # Toss appends the new cancel; a replay answers the same body
        done = ours.get("cancelStatus") in (None, "DONE")  # foreign easy-pay cancels pend
        result = self.apply(payment, answer, delivery=None)
        refund_id, refunded = str(ours.get("transactionKey")), int(ours.get("cancelAmount", 0))
        status = "succeeded" if done else "pending"
        return refund_outcome(self.ledger, result, refund_id, refunded, status)

    def reread(self, payment: Payment) -> CommandResult:
        """Apply what Toss says the payment is now, keyed like a webhook of that state, so a
        webhook of the same change arriving later is a duplicate."""
        try:
            if payment.provider_payment_id:
                answer = self.client.get_payment(payment.provider_payment_id)
            else:
                answer = self.client.get_payment_by_order(payment.order_id)
        except TossDeclined as declined:
            if declined.status == 404:  # never confirmed at Toss: nothing to apply
                return CommandResult(payment.id, payment.status, "unchanged")
            raise LedgerError(declined.message, declined.code) from declined
        return self.apply(payment, answer, answer_delivery(answer, "PAYMENT_STATUS_CHANGED"))

    def settlements(self, start: date, end: date) -> list[SettlementLine] | None:
        """Toss's settlement lines sold from `start` to `end` (its default dateType,
        soldDate), every page. A refused query is the admin's to fix, not a retry's."""
        lines: list[SettlementLine] = []
        page = 1
        while True:
            try:
                found = self.client.settlements(start, end, page, SETTLEMENT_PAGE)
            except TossDeclined as declined:
                raise LedgerError(declined.message, declined.code) from declined
            lines.extend(_settlement_line(item) for item in found)
            if len(found) < SETTLEMENT_PAGE:
                return lines
            page += 1

    # --- webhooks ------------------------------------------------------------------

    def accept(self, request: WebhookRequest) -> Accepted:
        """The body's shape; a status change for an order the ledger knows (else 404); a
        deposit callback with the secret its confirm answer carried (else 400). Keyed by
        Toss's transmission id (the same on every retry), else by the body's hash."""
        with DeliveryLog(Provider.TOSS.value) as log_line:
            message = parse_json_object(request.body)
            if "eventType" in message:
                event_type = str(message["eventType"])
                if event_type in STATUS_EVENTS:
                    self._payment_key_of(event_type, message.get("data"))  # its shape
                    self._known_order(message["data"])
            else:  # DEPOSIT_CALLBACK is the one flat body
                event_type = DEPOSIT_CALLBACK
                self._verified_deposit(message)
            key = header(request, TRANSMISSION_ID) or hashlib.sha256(request.body).hexdigest()
            log_line.identify(key, event_type)
            log_line.finish(WebhookOutcome("accepted"))
            return Accepted(key, event_type)

    def apply_verified(self, body: bytes) -> WebhookOutcome:
        """Apply one accepted delivery once: re-read the payment from Toss (the truth)."""
        with DeliveryLog(Provider.TOSS.value, self.ledger) as log_line:
            message = parse_json_object(body)
            if "eventType" in message:
                event_type = str(message["eventType"])
                log_line.identify(None, event_type)
                if event_type not in STATUS_EVENTS:
                    return log_line.finish(ignored("unhandled_type"))
                payment_key = self._payment_key_of(event_type, message.get("data"))
                if payment_key is None:
                    return log_line.finish(ignored("no_payment_key"))
            else:
                event_type = DEPOSIT_CALLBACK
                log_line.identify(_text(message.get("transactionKey")), event_type)
                payment_key = self._verified_deposit(message)
            answer = self._read(payment_key)
            delivery = answer_delivery(answer, event_type)
            log_line.identify(delivery.event_key, event_type)
            payment = self.ledger.find_payment(Provider.TOSS, str(answer.get("orderId")))
            result = self.apply(payment, answer, delivery)
            reaches = _REACHES.get(str(answer.get("status")), frozenset())
            return log_line.finish(outcome_of(result, reaches))

    def prefetched(self, bodies: Sequence[bytes]) -> AbstractContextManager[None]:
        """An inbox round's re-reads, made together on entry (api/providers/toss_prefetch.py)."""
        return self._prefetch.round(bodies)

    def _known_order(self, data: dict[str, Any]) -> None:
        """A status change naming an order the ledger does not have is refused (404), so
        that Toss shows the failure; one naming none is left to the re-read."""
        order_id = _text(data.get("orderId"))
        if order_id is not None:
            self.ledger.find_payment(Provider.TOSS, order_id)  # NotFoundError: 404

    def _payment_key_of(self, event_type: str, data: Any) -> str | None:
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_body", "a Toss webhook carries a `data` object")
        payment_key = _text(data.get("paymentKey"))
        if payment_key is not None or event_type != "CANCEL_STATUS_CHANGED":
            return payment_key
        # The documented Cancel object names its transactionKey, maybe not its payment: the
        # pending cancel it follows up was noted under that key when Toss first reported it.
        refund_id = _text(data.get("transactionKey"))
        payment_id = refund_id and payment_of_pending_refund(self.ledger, self.name, refund_id)
        if not payment_id:
            return None
        return self.ledger.get_payment(payment_id).provider_payment_id

    def _verified_deposit(self, message: dict[str, Any]) -> str:
        """The paymentKey of a DEPOSIT_CALLBACK whose secret is the one the confirm answer
        carried (https://docs.tosspayments.com/guides/v2/webhook: the only authentication)."""
        order_id, secret = _text(message.get("orderId")), _text(message.get("secret"))
        if order_id is None or secret is None:
            raise ApiError(400, "invalid_body", "a deposit callback carries orderId and secret")
        try:
            payment = self.ledger.find_payment(Provider.TOSS, order_id)
        except NotFoundError:
            # Answered as a wrong secret: a 404 would tell an outsider which orders exist.
            raise ApiError(400, "invalid_secret", _WRONG_SECRET) from None
        expected = payment.deposit_secret
        if not expected or not hmac.compare_digest(_utf8(secret), _utf8(expected)):
            raise ApiError(400, "invalid_secret", _WRONG_SECRET)
        if not payment.provider_payment_id:
            raise ApiError(400, "invalid_secret", "no virtual account was issued for this order")
        return payment.provider_payment_id

    def _read(self, payment_key: str) -> dict[str, Any]:
        try:
            answer = self._prefetch.take(payment_key)
            return answer if answer is not None else self.client.get_payment(payment_key)
        except TossDeclined as declined:
            if declined.status == 404:
                raise NotFoundError(
                    f"Toss knows no payment {payment_key}", "unknown_payment"
                ) from declined
            raise LedgerError(declined.message, declined.code) from declined


def _settlement_line(item: dict[str, Any]) -> SettlementLine:
    """A Settlement object: the fee Toss kept is what it did not pay out (its `fees`, the
    interest-free instalment fee and their VAT, all in `amount - payOutAmount`)."""
    amount = int(item.get("amount") or 0)
    return SettlementLine(
        provider_payment_id=str(item.get("paymentKey")),
        order_id=_text(item.get("orderId")),
        amount=amount,
        fee=amount - int(item.get("payOutAmount") or 0),
        currency=str(item.get("currency") or "KRW").upper(),
        settled_on=date.fromisoformat(str(item.get("soldDate"))),
        line_id=str(item.get("transactionKey") or item.get("paymentKey")),
    )


def _refund_report(cancel: dict[str, Any]) -> RefundReport:
    return RefundReport(
        refund_id=str(cancel.get("transactionKey")),
        amount=int(cancel.get("cancelAmount", 0)),
        reason=str(cancel.get("cancelReason") or ""),
        refunded_at=_parse_time(cancel.get("canceledAt")),
    )


def answer_delivery(answer: dict[str, Any], event_type: str) -> Delivery:
    return Delivery(Provider.TOSS.value, delivery_key(answer), event_type)


def delivery_key(answer: dict[str, Any]) -> str:
    """The identity of a Toss payment state: a redelivery, or the PAYMENT_STATUS_CHANGED and
    DEPOSIT_CALLBACK twins of one change, map to the same key. lastTransactionKey moves with
    every approval and cancel; approvedAt stands in where there is none."""
    marker = answer.get("lastTransactionKey") or answer.get("approvedAt") or "-"
    return f"{answer.get('paymentKey')}:{answer.get('status')}:{marker}"


# Toss's id of one webhook transmission, the same on each of its retries.
TRANSMISSION_ID = "tosspayments-webhook-transmission-id"
_WRONG_SECRET = "the deposit callback secret does not match"
_DEPOSIT_ERROR = "Toss reported a deposit error: the virtual account waits for a deposit again"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a JSON body may hold a lone surrogate


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
