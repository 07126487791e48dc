"""Answers of the analytics routes (contract: Analytics)."""

from __future__ import annotations

from pydantic import BaseModel, Field

Revenue = dict[str, int]


class RevenuePeriod(BaseModel):
    period_start: str = Field(description="First business day of the period (YYYY-MM-DD)")
    currency: str
    revenue: int = Field(description="Net of refunds and chargebacks, in minor units")
    count: int = Field(description="Paid payments completed in the period")
    refunded: int = Field(description="Refunded or charged back of those payments")


class RevenueSeries(BaseModel):
    interval: str
    timezone: str = Field(description="LEDGER_TIMEZONE: the zone of the business days")
    period_from: str = Field(alias="from", description="First business day counted")
    period_to: str = Field(alias="to", description="Last business day counted")
    series: list[RevenuePeriod] = Field(
        description="Every period of the range for every currency, oldest first; zeros where"
        " nothing was paid"
    )


class MethodShare(BaseModel):
    provider: str
    method: str = Field(description="Toss's `method`; Stripe's payment method type")
    count: int
    revenue: Revenue


class MethodShares(BaseModel):
    period_from: str = Field(alias="from")
    period_to: str = Field(alias="to")
    items: list[MethodShare] = Field(description="Most used first")


class HourCell(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    hour: int = Field(ge=0, le=23, description="Hour of the business day")
    count: int
    revenue: Revenue


class HourCells(BaseModel):
    timezone: str
    period_from: str = Field(alias="from")
    period_to: str = Field(alias="to")
    cells: list[HourCell] = Field(description="All 168 weekday x hour cells")


class FailureCount(BaseModel):
    code: str
    count: int


class Outcomes(BaseModel):
    period_from: str = Field(alias="from")
    period_to: str = Field(alias="to")
    attempts: int = Field(description="Payments that reached an outcome: paid, failed, cancelled")
    completed: int = Field(description="Of those, paid (refunds and disputes included)")
    failed: int
    cancelled: int
    success_rate: float | None = Field(description="completed / attempts; null with no attempts")
    failures: list[FailureCount] = Field(description="The commonest failure codes, at most 10")
