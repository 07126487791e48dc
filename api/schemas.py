"""Request and response bodies of the contract (pydantic), kept apart from the routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

Identifier = Annotated[str, Field(min_length=1, max_length=200)]
# Strict: 15000.0 or "15000" is a client bug, never silently an amount.
MinorUnits = Annotated[StrictInt, Field(gt=0, le=10**15)]


class NewPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-=.]+$")]
    booking_id: Identifier
    customer_id: Identifier
    customer_name: Identifier
    trainer_id: Identifier
    booking_date: dt.date
    amount: MinorUnits
    currency: Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
    provider: Literal["toss", "stripe"]

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

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


class PaymentRow(BaseModel):
    payment_id: UUID
    order_id: str
    booking_id: str
    customer_name: str
    trainer_id: str
    booking_date: str
    amount: int
    refunded_amount: int
    currency: str
    status: str
    provider: str
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


class TrainerInbox(BaseModel):
    items: list[NotificationItem]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for older notifications (extension)"
    )
