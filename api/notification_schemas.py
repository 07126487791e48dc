"""The shapes of the outbox's answers (api/routers/notifications.py, booking detail)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from store.outbox import Outbox

Status = Literal["pending", "sent", "failed", "dead", "skipped"]
Channel = Literal["email", "sms", "push"]


class AttemptItem(BaseModel):
    attempt: int
    at: str
    status: Status
    error: str | None


class DeliveryItem(BaseModel):
    message_id: UUID
    recipient: str = Field(description="`trainer:{id}` or `customer:{id}`")
    channel: Channel
    kind: str
    status: Status = Field(description="failed: retried at next_attempt_at; dead: given up")
    attempts: int
    last_error: str | None = Field(description="skipped: why (no_contact, not_configured…)")
    sent_at: str | None
    next_attempt_at: str | None = Field(description="failed: when it is tried again (ext.)")
    booking_id: str | None = Field(description="extension; null: not about a booking")
    decided_at: str = Field(description="When the change that caused it was saved (ext.)")


class DeliveryWithAttempts(DeliveryItem):
    attempt_log: list[AttemptItem]


class DeliveryPage(BaseModel):
    items: list[DeliveryItem]
    next_cursor: str | None


class MessageDetail(BaseModel):
    message_id: UUID
    kind: str
    recipient: str
    booking_id: str | None
    decided_at: str
    deliveries: list[DeliveryWithAttempts]


class Resent(BaseModel):
    message_id: UUID
    deliveries: int = Field(description="How many channels it is sent on again")


def delivery_item(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "recipient": f"{row['recipient_role']}:{row['recipient_id']}"}


def message_detail(outbox: Outbox, rows: list[dict[str, Any]]) -> dict[str, Any]:
    first = delivery_item(rows[0])
    deliveries = [
        {**delivery_item(row), "attempt_log": outbox.attempts(row["delivery_id"])} for row in rows
    ]
    keys = ("message_id", "kind", "recipient", "booking_id", "decided_at")
    return {**{key: first[key] for key in keys}, "deliveries": deliveries}


def booking_messages(outbox: Outbox, booking_id: str) -> list[dict[str, Any]]:
    """A booking's messages in the order decided, each with its deliveries."""
    by_message: dict[str, list[dict[str, Any]]] = {}
    for row in outbox.of_booking(booking_id):
        by_message.setdefault(row["message_id"], []).append(row)
    return [message_detail(outbox, rows) for rows in by_message.values()]
