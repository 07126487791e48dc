"""A trainer's statement for one period and currency, once it is closed (CONTRACT.md,
"Money owed"): the figures it closed with, then the payout that paid it.

An open statement is only a read model (projections/statements.py): it fills as payments
arrive. Closing creates this aggregate, so two admins closing at once collide on its first
version and one outcome stands; paying it is its second event, at most one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from ledger.errors import ConflictError
from ledger.ids import stable_id

Period = Literal["monthly", "weekly"]


def business_day(moment: datetime, zone: ZoneInfo) -> date:
    """The day `moment` falls on in the business time zone (LEDGER_TIMEZONE); a naive
    moment is UTC, as the event store's timestamps are."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(zone).date()


def statement_id(trainer_id: str, currency: str, period_start: date | str) -> UUID:
    """The stable id of the trainer's statement for that currency and period."""
    start = period_start if isinstance(period_start, str) else period_start.isoformat()
    return stable_id(f"statement:{trainer_id}|{currency}|{start}")


def period_of(day: date, period: Period) -> tuple[date, date]:
    """(first day, last day) of the settlement period holding `day`: a calendar month, or a
    week from Monday to Sunday."""
    if period == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    start = day.replace(day=1)
    return start, (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def next_period(period_start: date, period: Period) -> tuple[date, date]:
    """The period after the one starting on `period_start`."""
    return period_of(period_of(period_start, period)[1] + timedelta(days=1), period)


class Statement(Aggregate):
    """A closed statement (Closed creates it), then paid (PaidOut)."""

    class Closed(Aggregate.Created):
        trainer_id: str
        currency: str
        period_start: str
        period_end: str
        gross_sales: int
        refunds: int
        commission: int
        vat: int
        carried_in: int
        withholding: int
        payout_amount: int
        as_of_position: int  # the statements view's position the figures were read at
        closed_at: datetime

    class PaidOut(Aggregate.Event):
        reference: str
        paid_at: datetime

    @staticmethod
    def create_id(trainer_id: str, currency: str, period_start: str, **_: Any) -> UUID:
        return statement_id(trainer_id, currency, period_start)

    @event(Closed)
    def __init__(
        self,
        *,
        trainer_id: str,
        currency: str,
        period_start: str,
        period_end: str,
        gross_sales: int,
        refunds: int,
        commission: int,
        vat: int,
        carried_in: int,
        withholding: int,
        payout_amount: int,
        as_of_position: int,
        closed_at: datetime,
    ) -> None:
        self.trainer_id, self.currency = trainer_id, currency
        self.period_start, self.period_end = period_start, period_end
        self.payout_amount = payout_amount
        self.reference: str | None = None

    def pay(self, reference: str, paid_at: datetime) -> bool:
        """Record the payout; the same reference again appends nothing (False), another is
        a conflict."""
        if self.reference is not None:
            if self.reference == reference:
                return False
            raise ConflictError(
                f"statement {self.id} was paid with reference {self.reference!r}", "already_paid"
            )
        self._paid_out(reference=reference, paid_at=paid_at)
        return True

    @event(PaidOut)
    def _paid_out(self, reference: str, paid_at: datetime) -> None:
        self.reference = reference
