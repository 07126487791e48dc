"""Request and response bodies of the contract (pydantic), kept apart from the routes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
)

from api.contact_schemas import Email, Locale, Phone
from api.notification_schemas import MessageDetail
from ledger.money import is_payable_currency

# C0 and C1 controls (NUL, escape, line breaks ...) and unpaired surrogates: no name, id or
# reason a person types holds them, and several stores and terminals cannot show them.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _plain(value: str) -> str:
    found = _UNPRINTABLE.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain control characters or unpaired surrogates (U+{ord(found[0]):04X})"
        )
    return value


def _path_safe(value: str) -> str:
    # Ids appear in URLs (/api/admin/bookings/{id}): one holding "/" or being a dot segment
    # could be stored but never read back.
    if "/" in value or value in (".", ".."):
        raise ValueError("must not contain '/' nor be '.' or '..'")
    return value


PlainText = Annotated[str, AfterValidator(_plain)]
Identifier = Annotated[PlainText, Field(min_length=1, max_length=200)]
# An id that is also a path segment of some route.
PathId = Annotated[Identifier, AfterValidator(_path_safe)]
# Strict: 15000.0 or "15000" is a client bug, never silently an amount.
MinorUnits = Annotated[StrictInt, Field(gt=0, le=10**15)]


class NewPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-=.]+$")]
    booking_id: PathId
    customer_id: PathId
    customer_name: Identifier
    trainer_id: PathId
    booking_date: dt.date
    amount: MinorUnits
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
    provider: Annotated[
        Identifier,
        Field(description="a registered provider: `toss` or `stripe`", examples=["toss"]),
    ]
    # Kept in the contacts store for `customer_id`, never in the payment's events, and not
    # part of the order: the same order with other (or no) contact fields is the same order.
    customer_email: Email | None = None
    customer_phone: Phone | None = None
    customer_locale: Locale | None = Field(None, description="the customer's messages' language")

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        code = value.upper()
        if not is_payable_currency(code):
            raise ValueError(f"{code} is not an ISO 4217 currency code")
        return code

    @field_validator("booking_date", mode="before")
    @classmethod
    def _iso_date_only(cls, value: object) -> object:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError("booking_date must be YYYY-MM-DD")
        return value


class PaymentCreated(BaseModel):
    payment_id: UUID
    order_id: str
    status: str
    position: int | None = Field(None, description="Event-store position of the write, if any")


class TossConfirm(BaseModel):
    paymentKey: Identifier
    orderId: Identifier
    amount: MinorUnits


class StripeConfirm(BaseModel):
    session_id: Identifier


class PaymentStatus(BaseModel):
    payment_id: UUID
    status: str
    position: int | None = None


class Health(BaseModel):
    status: Literal["ok"]


# Currency → net minor units; a currency without net revenue is left out.
Revenue = dict[str, int]


class ProviderStats(BaseModel):
    count: int = Field(
        description="Paid payments: completed, partially_refunded, refunded or disputed"
    )
    revenue: Revenue


class AdminStats(BaseModel):
    total_revenue: Revenue = Field(description="Net of refunds and chargebacks, all time")
    today_revenue: Revenue = Field(description="Net of refunds, completed today (LEDGER_TIMEZONE)")
    month_revenue: Revenue = Field(description="Net of refunds, completed this calendar month")
    completed_count: int
    pending_count: int
    failed_count: int
    cancelled_count: int
    refunded_count: int = Field(description="refunded + partially_refunded payments")
    disputed_count: int = Field(description="Payments with a dispute (chargeback) open")
    by_provider: dict[str, ProviderStats] = Field(description="Every registered provider")


class AmountDiscrepancy(BaseModel):
    expected_amount: int = Field(description="The order's amount")
    captured_amount: int = Field(description="What the provider captured (= `amount`)")
    reason: str


class PaymentRow(BaseModel):
    payment_id: UUID
    order_id: str
    booking_id: str
    customer_name: str
    trainer_id: str
    booking_date: str
    amount: int = Field(description="Captured by the provider: revenue and refunds use it")
    ordered_amount: int = Field(description="The order's amount")
    refunded_amount: int
    chargeback_amount: int = Field(description="Taken back by lost disputes")
    amount_discrepancy: AmountDiscrepancy | None
    currency: str
    status: str
    provider: str
    provider_payment_id: str | None = Field(
        description="The provider's id of the payment (Toss paymentKey, Stripe payment intent)"
    )
    created_at: str
    completed_at: str | None
    failure_code: str | None
    failure_message: str | None


class PaymentPage(BaseModel):
    items: list[PaymentRow]
    next_cursor: str | None


class NotificationItem(BaseModel):
    notification_id: UUID
    title: str
    message: str
    sent_at: str
    read: bool


class BookingDetail(BaseModel):
    booking_id: str
    payments: list[PaymentRow]
    trainer_notifications: list[NotificationItem]
    messages: list[MessageDetail] = Field(
        description="What the booking's changes told people, each with its deliveries"
    )


class TrainerInbox(BaseModel):
    items: list[NotificationItem]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for older notifications (extension)"
    )


class AuditEvent(BaseModel):
    """One stored event as auditors see it; `hash` covers every field but the two hashes
    (see README, "Audit")."""

    position: int = Field(description="Event-store position: commit order, stable")
    event_id: str = Field(description="uuid5 of (aggregate_id, version)")
    type: str = Field(description="The stored topic, e.g. ledger.payment:Payment.Completed")
    aggregate_id: str
    version: int
    timestamp: str | None
    data: Any = Field(description="The stored event state, as stored (JSON)")
    hash: str | None = Field(description="SHA-256 link; null until the chain reaches it")
    prev_hash: str | None


class AuditEventPage(BaseModel):
    items: list[AuditEvent]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end")


class PaymentHistory(BaseModel):
    events: list[AuditEvent]
    state: dict[str, Any] | None = Field(
        description="The payment as of `as_of`; null when it did not exist yet"
    )


class ChainVerification(BaseModel):
    ok: bool
    events_checked: int
    head_hash: str = Field(description="Hash of the last intact link (64 zeros when none)")
    first_bad_position: int | None
    head_position: int | None = Field(
        None, description="Position of the last intact link (extension)"
    )


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: MinorUnits | None = Field(None, description="Minor units; default: all that is left")
    reason: Annotated[PlainText, Field(min_length=1, max_length=200)]


class RefundCreated(BaseModel):
    refund_id: str = Field(description="The provider's id: Stripe's re_..., Toss's transactionKey")
    amount: int
    refund_status: str = Field(
        description="The provider's status of the refund: succeeded (201) or pending (202)"
    )
    status: str = Field(description="The payment's status after the refund")
    position: int | None = Field(None, description="Of the event recording it; null if earlier")
