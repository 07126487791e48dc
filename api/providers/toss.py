"""Toss Payments adapter: the HTTP client and the mapping of its answers onto ledger commands.

API reference: https://docs.tosspayments.com/reference (confirm, look-up, cancel).
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

from ledger.application import CommandResult, Delivery, PaymentLedger
from ledger.errors import (
    AmountMismatchError,
    ConflictError,
    ProviderError,
    ProviderUnavailableError,
)
from ledger.payment import Payment, Provider, Status

log = logging.getLogger("ledger.toss")


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
        return self._call("GET", f"/v1/payments/{payment_key}")

    def cancel(
        self, payment_key: str, reason: str, amount: int | None, idempotency_key: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"cancelReason": reason}
        if amount is not None:
            body["cancelAmount"] = amount
        return self._call(
            "POST",
            f"/v1/payments/{payment_key}/cancel",
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
        if response.status_code >= 500 or response.status_code in (401, 403):
            # 5xx: retry later; 401/403: our credentials, not the customer's fault.
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
        if int(answer.get("totalAmount", payment.amount)) != payment.amount:
            raise AmountMismatchError(
                f"Toss reports {answer.get('totalAmount')}, not {payment.amount}"
            )
        status = answer.get("status")
        key = str(answer.get("paymentKey"))
        if status == "DONE":
            method = str(answer.get("method") or "unknown")
            return self.ledger.complete(
                payment.id, key, method, _parse_time(answer.get("approvedAt")), delivery
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
            return self.ledger.fail(payment.id, code, message, delivery=delivery)
        if status == "EXPIRED":
            return self.ledger.cancel(payment.id, "expired", delivery=delivery)
        return CommandResult(payment.id, payment.status, "unchanged")  # READY, IN_PROGRESS

    def _apply_cancels(
        self, payment: Payment, answer: dict[str, Any], delivery: Delivery | None
    ) -> CommandResult:
        if payment.status in (Status.PENDING, Status.FAILED):
            return self.ledger.cancel(payment.id, "cancelled at Toss", delivery=delivery)
        result = CommandResult(payment.id, payment.status, "unchanged")
        # Each Toss cancel carries its own transactionKey: apply the ones we have not seen.
        for cancel in answer.get("cancels") or []:
            outcome = self.ledger.refund(
                payment.id,
                refund_id=str(cancel.get("transactionKey")),
                amount=int(cancel.get("cancelAmount", 0)),
                reason=str(cancel.get("cancelReason") or ""),
                refunded_at=_parse_time(cancel.get("canceledAt")),
                delivery=None,
            )
            if outcome.appended:
                result = outcome
        return result
