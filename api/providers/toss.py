"""Toss Payments adapter: the HTTP client and the mapping of its answers onto ledger commands.

API reference: https://docs.tosspayments.com/reference (confirm, look-up, cancel).
Webhooks: https://docs.tosspayments.com/reference/using-api/webhook-events. They are not
signed, so a status change is only a hint to re-read the payment from the API; a
DEPOSIT_CALLBACK is authenticated by the `secret` the confirm answer carried.
"""

from __future__ import annotations

import base64
import hmac
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from api.errors import ApiError
from api.providers.webhooks import (
    DeliveryLog,
    WebhookOutcome,
    ignored,
    outcome_of,
    parse_json_object,
)
from ledger.application import Approval, CommandResult, Delivery, PaymentLedger, RefundReport
from ledger.errors import (
    AmountMismatchError,
    ConflictError,
    LedgerError,
    NotFoundError,
    ProviderError,
    ProviderUnavailableError,
)
from ledger.payment import Payment, Provider, Status

log = logging.getLogger("ledger.toss")

STATUS_EVENTS = frozenset({"PAYMENT_STATUS_CHANGED", "CANCEL_STATUS_CHANGED"})
DEPOSIT_CALLBACK = "DEPOSIT_CALLBACK"
# The ledger statuses each Toss status leads to, to tell an applied report from a rejected one.
_REACHES: dict[str, frozenset[str]] = {
    "DONE": frozenset({"completed"}),
    "WAITING_FOR_DEPOSIT": frozenset({"pending"}),
    "CANCELED": frozenset({"cancelled", "refunded"}),
    "PARTIAL_CANCELED": frozenset({"partially_refunded"}),
    "ABORTED": frozenset({"failed"}),
    "EXPIRED": frozenset({"cancelled"}),
}


class TossDeclined(Exception):
    """Toss answered 4xx with its `{code, message}` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class TossClient:
    def __init__(self, base_url: str, secret_key: str | None, timeout: float) -> None:
        token = base64.b64encode(f"{secret_key or ''}:".encode()).decode()
        self._configured = bool(secret_key)
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Basic {token}"},
        )

    def close(self) -> None:
        self._http.close()

    def confirm(self, payment_key: str, order_id: str, amount: int) -> dict[str, Any]:
        body = {"paymentKey": payment_key, "orderId": order_id, "amount": amount}
        # Same key for a retried confirm: Toss answers the first result instead of charging twice.
        headers = {"Idempotency-Key": f"confirm-{payment_key}"}
        return self._call("POST", "/v1/payments/confirm", json=body, headers=headers)

    def get_payment(self, payment_key: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/payments/{_segment(payment_key)}")

    def cancel(
        self, payment_key: str, reason: str, amount: int | None, idempotency_key: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"cancelReason": reason}
        if amount is not None:
            body["cancelAmount"] = amount
        return self._call(
            "POST",
            f"/v1/payments/{_segment(payment_key)}/cancel",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if not self._configured:
            raise ProviderUnavailableError(
                "TOSS_SECRET_KEY is not configured", "provider_not_configured"
            )
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("toss %s %s unreachable: %r", method, path, exc)
            raise ProviderUnavailableError(f"Toss did not answer: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 401:
            # 5xx: retry later; 401: our credentials, not the customer's fault.
            log.warning(
                "toss %s %s answered %s: %s",
                method,
                path,
                response.status_code,
                response.text[:200],
            )
            raise ProviderUnavailableError(f"Toss answered {response.status_code}")
        try:
            data: dict[str, Any] = response.json()
        except ValueError as exc:
            raise ProviderUnavailableError("Toss answered a body that is not JSON") from exc
        if response.status_code >= 400:
            raise TossDeclined(
                response.status_code, str(data.get("code")), str(data.get("message"))
            )
        return data


def _segment(payment_key: str) -> str:
    # A webhook body names the key: "../" or "?" in it must not steer the call elsewhere.
    return quote(payment_key, safe="", errors="surrogatepass")


def _parse_time(value: str | None) -> datetime:
    return datetime.fromisoformat(value) if value else datetime.now(UTC)


class TossPayments:
    """Confirms Toss checkouts and applies what the Toss API says a payment is."""

    def __init__(self, ledger: PaymentLedger, client: TossClient) -> None:
        self.ledger = ledger
        self.client = client

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
            secret = str(answer.get("secret") or "")
            return self.ledger.await_deposit(payment.id, key, secret)
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
        if answer.get("status") == "CANCELED" and payment.status in unpaid:
            return self.ledger.cancel(
                payment.id, "cancelled at Toss", delivery=delivery, loaded=payment
            )
        # Each Toss cancel carries its own transactionKey; all new ones go in one save, so a
        # redelivery (or a crash half-way) can never leave some of them applied twice.
        refunds = [
            RefundReport(
                refund_id=str(cancel.get("transactionKey")),
                amount=int(cancel.get("cancelAmount", 0)),
                reason=str(cancel.get("cancelReason") or ""),
                refunded_at=_parse_time(cancel.get("canceledAt")),
            )
            for cancel in answer.get("cancels") or []  # null until the first cancel
            if cancel.get("cancelStatus") in (None, "DONE")  # foreign easy-pay cancels pend
        ]
        approval = Approval(
            str(answer.get("paymentKey")),
            str(answer.get("method") or "unknown"),
            _parse_time(answer.get("approvedAt")),
        )
        return self.ledger.record_refunds(payment.id, refunds, approval, delivery, loaded=payment)

    # --- webhooks ------------------------------------------------------------------

    def handle_webhook(self, body: bytes) -> WebhookOutcome:
        """Apply one delivery once: re-read the payment from Toss and apply what it says."""
        with DeliveryLog(Provider.TOSS.value) as log_line:
            message = parse_json_object(body)
            if "eventType" in message:
                event_type = str(message["eventType"])
                log_line.identify(None, event_type)
                if event_type not in STATUS_EVENTS:
                    return log_line.finish(ignored("unhandled_type"))
                payment_key = self._payment_key_of(message.get("data"))
                if payment_key is None:
                    return log_line.finish(ignored("no_payment_key"))
            else:  # DEPOSIT_CALLBACK is the one flat body
                event_type = DEPOSIT_CALLBACK
                log_line.identify(_text(message.get("transactionKey")), event_type)
                payment_key = self._verified_deposit(message)
            answer = self._read(payment_key)
            delivery = Delivery(Provider.TOSS.value, delivery_key(answer), event_type)
            log_line.identify(delivery.event_key, event_type)
            payment = self.ledger.find_payment(Provider.TOSS, str(answer.get("orderId")))
            result = self.apply(payment, answer, delivery)
            reaches = _REACHES.get(str(answer.get("status")), frozenset())
            return log_line.finish(outcome_of(result, reaches))

    @staticmethod
    def _payment_key_of(data: Any) -> str | None:
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_body", "a Toss webhook carries a `data` object")
        # A Payment object (PAYMENT_STATUS_CHANGED) names its paymentKey; the documented
        # Cancel object of CANCEL_STATUS_CHANGED may not, and then there is nothing to re-read.
        return _text(data.get("paymentKey"))

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
            return self.client.get_payment(payment_key)
        except TossDeclined as declined:
            if declined.status == 404:
                raise NotFoundError(
                    f"Toss knows no payment {payment_key}", "unknown_payment"
                ) from declined
            raise LedgerError(declined.message, declined.code) from declined


def delivery_key(answer: dict[str, Any]) -> str:
    """The identity of a Toss payment state: a redelivery, or the PAYMENT_STATUS_CHANGED and
    DEPOSIT_CALLBACK twins of one change, map to the same key. lastTransactionKey moves with
    every approval and cancel; approvedAt stands in where there is none."""
    marker = answer.get("lastTransactionKey") or answer.get("approvedAt") or "-"
    return f"{answer.get('paymentKey')}:{answer.get('status')}:{marker}"


_WRONG_SECRET = "the deposit callback secret does not match"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a JSON body may hold a lone surrogate


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
