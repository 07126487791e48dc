"""What commands take and give back: orders, provider reports, outcomes (plain values)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True)
class PaymentOrder:
    """What checkout knows when a customer starts paying for a booking."""

    order_id: str
    booking_id: str
    customer_id: str
    customer_name: str
    trainer_id: str
    booking_date: str
    amount: int
    currency: str
    provider: str


@dataclass(frozen=True)
class Delivery:
    """A provider's report, identified by the provider's own event identity."""

    provider: str
    event_key: str
    event_type: str


@dataclass(frozen=True)
class Approval:
    """The provider's word that it took the money: implied by any refund it reports."""

    provider_payment_id: str
    method: str
    approved_at: datetime
    captured_amount: int | None = None  # what the charge took, if the report says


@dataclass(frozen=True)
class RefundReport:
    """One refund as the provider reports it (e.g. one entry of Toss's `cancels[]`)."""

    refund_id: str
    amount: int
    reason: str
    refunded_at: datetime


@dataclass(frozen=True)
class CommandResult:
    payment_id: UUID
    status: str
    # 'created' / 'applied': events were appended; 'unchanged': nothing to do;
    # 'duplicate': this delivery was applied before.
    outcome: str
    position: int | None = None

    @property
    def appended(self) -> bool:
        return self.outcome in ("created", "applied")
