"""Admin reads: statistics, the payments table and booking detail (admin or auditor token)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from api.auth import AdminReader
from api.deps import ReadModelsDep, ServicesDep
from api.errors import ApiError
from api.notification_schemas import booking_messages
from api.schemas import AdminStats, BookingDetail, Identifier, PaymentPage
from projections.payments_table import STATUS_FILTERS

router = APIRouter(prefix="/api/admin", tags=["admin"])

StatusFilter = Literal[
    "pending", "completed", "failed", "cancelled", "partially_refunded", "refunded",
    "failed_or_cancelled", "disputed",
]  # fmt: skip


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "p" or not value.isdigit():
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from None


def current_time() -> datetime:
    """The clock that "today" and "this month" are read from; tests override this
    dependency (`app.dependency_overrides`) to pin the day."""
    return datetime.now(UTC)


@router.get("/stats", response_model=AdminStats)
def stats(
    _: AdminReader,
    read_models: ReadModelsDep,
    now: Annotated[datetime, Depends(current_time)],
) -> dict[str, Any]:
    """Revenue (net of refunds and chargebacks, per currency) and counts, from the daily
    buckets."""
    result: dict[str, Any] = read_models.revenue.stats(now)
    return result


@router.get("/payments", response_model=PaymentPage)
def list_payments(
    _: AdminReader,
    read_models: ReadModelsDep,
    services: ServicesDep,
    status: StatusFilter | None = None,
    provider: Annotated[
        Identifier | None, Query(description="A registered provider: `toss`, `stripe`")
    ] = None,
    trainer_id: Annotated[Identifier | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    discrepancy: Annotated[
        bool | None, Query(description="Only payments with (true) or without an amount discrepancy")
    ] = None,
) -> dict[str, Any]:
    if provider is not None:
        services.providers.get(provider)  # 422 unknown_provider: a typo is not "no payments"
    rows = read_models.payments_table.page(
        statuses=STATUS_FILTERS[status] if status else (),
        provider=provider,
        trainer_id=trainer_id,
        before_position=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,  # one more tells whether a next page exists
        discrepancy=discrepancy,
    )
    next_cursor = encode_cursor(rows[limit - 1]["created_position"]) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


@router.get("/bookings/{booking_id}", response_model=BookingDetail)
def booking_detail(
    booking_id: Identifier, _: AdminReader, read_models: ReadModelsDep, services: ServicesDep
) -> dict[str, Any]:
    payments = read_models.payments_table.for_booking(booking_id)
    if not payments:
        raise ApiError(404, "unknown_booking", f"no payments for booking {booking_id}")
    notifications = (
        read_models.notifications.for_booking(booking_id)
        if "notifications" in read_models.views
        else []
    )
    messages = booking_messages(services.outbox, booking_id)
    return {"booking_id": booking_id, "payments": payments, "trainer_notifications": notifications,
            "messages": messages}  # fmt: skip
