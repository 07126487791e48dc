"""Admin reads: statistics, the payments table and booking detail (admin or auditor token)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BeforeValidator

from api.auth import AdminReader
from api.deps import ReadModelsDep, ServicesDep
from api.errors import ApiError
from api.notification_schemas import booking_messages
from api.schemas import AdminStats, BookingDetail, Identifier, PaymentPage, PlainText
from projections.payment_filters import PaymentFilter, created_bounds
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


ISO_DAY = re.compile("[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    # pydantic's date also takes "1711929600" or "2026-04-01T00:00:00": not a day as typed.
    if isinstance(value, str) and not ISO_DAY.fullmatch(value):
        raise ValueError("must be a day as YYYY-MM-DD")
    return value


BusinessDay = Annotated[date, BeforeValidator(_iso_day)]
ProviderQuery = Annotated[
    Identifier | None, Query(description="A registered provider: `toss`, `stripe`")
]
DiscrepancyQuery = Annotated[
    bool | None, Query(description="Only payments with (true) or without an amount discrepancy")
]
SearchQuery = Annotated[
    PlainText | None,
    Query(
        max_length=200,
        description="(extension) A payment whose `order_id`, `booking_id`, `payment_id` or"
        " `provider_payment_id` equals this, or whose `customer_name` contains it (any case;"
        " `%` and `_` are literal). Empty: no search",
    ),
]
FromQuery = Annotated[
    BusinessDay | None,
    Query(
        alias="from",
        description="(extension) Created on or after this business day (YYYY-MM-DD in"
        " LEDGER_TIMEZONE); after `to`: 400 invalid_range",
    ),
]
ToQuery = Annotated[
    BusinessDay | None,
    Query(
        alias="to",
        description="(extension) Created on or before this business day (YYYY-MM-DD in"
        " LEDGER_TIMEZONE)",
    ),
]


def payment_filters(
    services: ServicesDep,
    status: StatusFilter | None = None,
    provider: ProviderQuery = None,
    trainer_id: Annotated[Identifier | None, Query()] = None,
    discrepancy: DiscrepancyQuery = None,
    q: SearchQuery = None,
    first_day: FromQuery = None,
    last_day: ToQuery = None,
) -> PaymentFilter:
    """The filters of the payments table, shared by its JSON pages and its CSV export."""
    if provider is not None:
        services.providers.get(provider)  # 422 unknown_provider: a typo is not "no payments"
    created_from, created_before = _created_range(first_day, last_day, services.settings.zone)
    return PaymentFilter(
        statuses=STATUS_FILTERS[status] if status else (),
        provider=provider,
        trainer_id=trainer_id,
        discrepancy=discrepancy,
        q=q or None,
        created_from=created_from,
        created_before=created_before,
    )


def _created_range(
    first_day: date | None, last_day: date | None, zone: tzinfo
) -> tuple[str | None, str | None]:
    if first_day is not None and last_day is not None and first_day > last_day:
        raise ApiError(400, "invalid_range", f"from {first_day} is after to {last_day}")
    return created_bounds(first_day, last_day, zone)


PaymentFilters = Annotated[PaymentFilter, Depends(payment_filters)]


@router.get("/payments", response_model=PaymentPage)
def list_payments(
    _: AdminReader,
    filters: PaymentFilters,
    read_models: ReadModelsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    rows = read_models.payments_table.page(
        filters,
        before_position=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,  # one more tells whether a next page exists
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
