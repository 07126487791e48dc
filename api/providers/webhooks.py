"""What both providers' webhook adapters share: the outcome of a delivery and its log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from types import TracebackType
from typing import Any
from uuid import UUID

from api.errors import ApiError
from ledger.application import CommandResult, PaymentLedger
from ledger.errors import LedgerError
from ledger.unit_of_work import NotBatchableError

log = logging.getLogger("ledger.webhooks")


@dataclass(frozen=True)
class WebhookOutcome:
    """What became of one delivery.

    `outcome`: applied (events appended) · rejected (recorded as a transition the state
    machine forbids: no money or status change) · duplicate (this delivery was applied
    before) · unchanged (the ledger already says so) · ignored (not for us) · parked (for an
    order the ledger does not know yet; applied when it is initiated).
    """

    outcome: str
    payment_id: UUID | None = None
    status: str | None = None
    position: int | None = None
    reason: str | None = None


def ignored(reason: str) -> WebhookOutcome:
    return WebhookOutcome("ignored", reason=reason)


def outcome_of(result: CommandResult, reached: Collection[str]) -> WebhookOutcome:
    """Name a ledger result; `reached` are the statuses the provider's report leads to, so an
    append that left the payment elsewhere was a rejected transition."""
    outcome, reason = result.outcome, None
    if result.appended and result.status not in reached:
        outcome, reason = "rejected", f"a {result.status} payment cannot become {'/'.join(reached)}"
    elif result.appended:
        outcome = "applied"
    return WebhookOutcome(outcome, result.payment_id, result.status, result.position, reason)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:  # also invalid UTF-8
        raise ApiError(400, "malformed_json", "the body is not valid JSON") from None
    except RecursionError:  # thousands of nested arrays: valid JSON, but no provider's
        raise ApiError(400, "malformed_json", "the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return value


class DeliveryLog:
    """Writes exactly one structured line per delivery, whether it was handled or refused.

    with DeliveryLog("stripe") as delivery:
        delivery.identify(event_id, event_type)
        return delivery.finish(outcome)
    """

    def __init__(self, provider: str, ledger: PaymentLedger | None = None) -> None:
        self.provider = provider
        self.ledger = ledger  # applying: inside a batch, the line waits for its save
        self.event_id: str | None = None
        self.event_type: str | None = None
        self.outcome: WebhookOutcome | None = None

    def identify(self, event_id: str | None, event_type: str | None) -> None:
        self.event_id, self.event_type = event_id, event_type

    def finish(self, outcome: WebhookOutcome) -> WebhookOutcome:
        self.outcome = outcome
        return outcome

    def __enter__(self) -> DeliveryLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, NotBatchableError):
            return  # applied again on its own, and written then
        outcome = self.outcome or WebhookOutcome("refused", reason=_refusal(exc))
        if outcome.outcome == "ignored" and outcome.reason == "unknown_order":
            level = logging.WARNING  # money we cannot place: someone should look
        elif outcome.outcome in ("refused", "rejected", "parked"):  # parked: money not placed yet
            level = logging.WARNING
        else:
            level = logging.INFO
        if outcome.outcome == "applied" and outcome.position is None and self.ledger:
            deferred = lambda position: self._write(level, replace(outcome, position=position))  # noqa: E731
            if self.ledger.when_saved(deferred):
                return
        self._write(level, outcome)

    def _write(self, level: int, outcome: WebhookOutcome) -> None:
        fields: dict[str, Any] = {
            "provider": self.provider,
            "event_id": self.event_id,
            "type": self.event_type,
            **{k: v for k, v in asdict(outcome).items() if v is not None},
        }
        text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        log.log(level, "webhook %s", text, extra={"webhook": fields})


def _refusal(exc: BaseException | None) -> str:
    if isinstance(exc, ApiError | LedgerError):
        return f"{exc.code}: {exc.message}"
    return f"error: {type(exc).__name__}" if exc else "no outcome"
