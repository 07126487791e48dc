"""Analytics for admins and auditors: revenue over time, method share, the weekday x hour
pattern and outcomes, all read from the revenue buckets (O(days in the range))."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.analytics_schemas import HourCells, MethodShares, Outcomes, RevenueSeries
from api.auth import AdminReader
from api.deps import ReadModelsDep, ServicesDep
from api.errors import ApiError
from api.routers.admin import current_time
from ledger.statement import business_day
from projections.analytics import DayRange, Interval, period_start, periods

router = APIRouter(prefix="/api/admin/analytics", tags=["analytics"])

MAX_DAYS = 3700  # about ten years: beyond, a read of hourly buckets is no longer quick
MAX_PERIODS = 1000
# Without `from`: the last 30 days, 12 weeks or 12 months up to `to`.
DEFAULT_SPAN = {"day": 30, "week": 12, "month": 12}
From = Annotated[
    date | None,
    Query(alias="from", description="First business day (default: 30 days before `to`)"),
]
To = Annotated[
    date | None, Query(alias="to", description="Last business day, included (default: today)")
]


def _today(services: ServicesDep, now: Annotated[datetime, Depends(current_time)]) -> date:
    return business_day(now, services.settings.zone)


Today = Annotated[date, Depends(_today)]


def _range(
    start: date | None, end: date | None, today: date, interval: Interval = "day"
) -> DayRange:
    end = end or today
    if start is None:
        start = _span_start(end, interval)
    if start > end:
        raise ApiError(400, "invalid_range", f"from ({start}) is after to ({end})")
    if (end - start).days >= MAX_DAYS:
        raise ApiError(400, "range_too_long", f"a range of at most {MAX_DAYS} days")
    return DayRange(start, end)


def _span_start(end: date, interval: Interval) -> date:
    """The default `from`; near year 1 the span is shorter rather than an error."""
    span = DEFAULT_SPAN[interval]
    if interval == "month":
        first = end.replace(day=1)
        months = first.year * 12 + first.month - 1 - (span - 1)
        return date(months // 12, months % 12 + 1, 1) if months >= 12 else date.min
    back = timedelta(days=span - 1) if interval == "day" else timedelta(weeks=span - 1)
    try:
        return period_start(end, interval) - back
    except OverflowError:
        return date.min


def _bounds(days: DayRange) -> dict[str, str]:
    return {"from": days.start.isoformat(), "to": days.end.isoformat()}


@router.get("/revenue", response_model=RevenueSeries, response_model_by_alias=True)
def revenue(
    _: AdminReader,
    read_models: ReadModelsDep,
    services: ServicesDep,
    today: Today,
    interval: Interval = "day",
    start: From = None,
    end: To = None,
    provider: Annotated[str | None, Query(description="Only this provider's payments")] = None,
) -> dict[str, Any]:
    """Net revenue per period and currency (a payment counts in the period of its
    completion's business day; its refunds lower that period's revenue)."""
    if provider is not None:
        services.providers.get(provider)  # 422 unknown_provider: a typo is not "no revenue"
    days = _range(start, end, today, interval)
    if sum(1 for _ in periods(days, interval)) > MAX_PERIODS:
        raise ApiError(
            400, "range_too_long", f"at most {MAX_PERIODS} periods: use a longer interval"
        )
    series = read_models.revenue.revenue_series(days, interval, provider)
    zone = services.settings.timezone
    return {"interval": interval, "timezone": zone, **_bounds(days), "series": series}


@router.get("/methods", response_model=MethodShares, response_model_by_alias=True)
def methods(
    _: AdminReader, read_models: ReadModelsDep, today: Today, start: From = None, end: To = None
) -> dict[str, Any]:
    """Paid payments per provider and payment method."""
    days = _range(start, end, today)
    return {**_bounds(days), "items": read_models.revenue.method_share(days)}


@router.get("/hours", response_model=HourCells, response_model_by_alias=True)
def hours(
    _: AdminReader,
    read_models: ReadModelsDep,
    services: ServicesDep,
    today: Today,
    start: From = None,
    end: To = None,
) -> dict[str, Any]:
    """Paid payments per weekday and hour of their completion, in LEDGER_TIMEZONE."""
    days = _range(start, end, today)
    cells = read_models.revenue.hour_cells(days)
    return {"timezone": services.settings.timezone, **_bounds(days), "cells": cells}


@router.get("/outcomes", response_model=Outcomes, response_model_by_alias=True)
def outcomes(
    _: AdminReader, read_models: ReadModelsDep, today: Today, start: From = None, end: To = None
) -> dict[str, Any]:
    """How many payments of the range were paid, failed or cancelled, and why they failed."""
    days = _range(start, end, today)
    return {**_bounds(days), **read_models.revenue.outcomes(days)}
