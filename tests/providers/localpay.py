"""A third payment provider that exists only in the tests: proof that a provider is one module
(this one) plus its registration (`create_app(extra_providers=[from_settings])`).

LocalPay signs each webhook body with HMAC-SHA256 in `LocalPay-Signature`, takes JPY only,
and refunds by recording them (it has no API to call).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, date, datetime

from api.errors import ApiError
from api.providers.base import (
    Accepted,
    RefundResult,
    SettlementLine,
    WebhookRequest,
    header,
    refund_outcome,
)
from api.providers.webhooks import DeliveryLog, WebhookOutcome, ignored, outcome_of
from ledger.application import CommandResult, Delivery, PaymentLedger, PaymentOrder
from ledger.payment import Payment
from ledger.settings import Settings

NAME = "localpay"
SECRET = b"localpay-test-secret"


def sign(body: bytes) -> str:
    return hmac.new(SECRET, body, hashlib.sha256).hexdigest()


def from_settings(ledger: PaymentLedger, settings: Settings) -> LocalPay:
    return LocalPay(ledger)


class LocalPay:
    name = NAME
    checks_offline = False

    def __init__(self, ledger: PaymentLedger) -> None:
        self.ledger = ledger

    def check_order(self, order: PaymentOrder) -> None:
        if order.currency != "JPY":
            raise ApiError(422, "validation_error", "LocalPay takes JPY only")

    def accept(self, request: WebhookRequest) -> Accepted:
        expected = sign(request.body)
        if not hmac.compare_digest(header(request, "LocalPay-Signature") or "", expected):
            raise ApiError(400, "invalid_signature", "LocalPay-Signature does not match")
        event = json.loads(request.body)
        return Accepted(str(event["id"]), str(event["type"]))

    def apply_verified(self, body: bytes) -> WebhookOutcome:
        with DeliveryLog(self.name, self.ledger) as log_line:
            return log_line.finish(self._apply(body, log_line))

    def _apply(self, body: bytes, log_line: DeliveryLog) -> WebhookOutcome:
        event = json.loads(body)
        log_line.identify(event["id"], event["type"])
        if event["type"] != "payment.paid":
            return ignored("unhandled_type")
        payment = self.ledger.find_payment(self.name, event["order_id"])
        delivery = Delivery(self.name, event["id"], event["type"])
        at = datetime.now(UTC)
        result = self.ledger.complete(
            payment.id, event["charge_id"], "konbini", at, delivery, loaded=payment
        )
        return outcome_of(result, {"completed"})

    def refund(self, payment: Payment, amount: int | None, reason: str, key: str) -> RefundResult:
        refunded = amount if amount is not None else payment.refundable_amount
        result = self.ledger.refund(payment.id, f"lp-{key}", refunded, reason)
        return refund_outcome(self.ledger, result, f"lp-{key}", refunded, "succeeded")

    def reread(self, payment: Payment) -> CommandResult:
        return CommandResult(payment.id, payment.status, "unchanged")

    def settlements(self, start: date, end: date) -> list[SettlementLine] | None:
        return None

    def close(self) -> None:
        pass
