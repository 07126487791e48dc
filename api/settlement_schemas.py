"""Request and response bodies of settlement (CONTRACT.md, "Money owed")."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from api.schemas import Identifier


def _iso_day(value: object) -> object:
    """Only a `YYYY-MM-DD` string is a day (not a number, not a timestamp)."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("a day is YYYY-MM-DD")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
Bps = Annotated[StrictInt, Field(ge=0, le=10_000, description="basis points: 1500 is 15 %")]


class ProfileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commission_bps: Bps | None = Field(
        None, description="omitted: LEDGER_COMMISSION_BPS (default 1500)"
    )
    tax_type: Literal["individual", "business"]


class SettlementProfileOut(BaseModel):
    trainer_id: str
    commission_bps: int
    tax_type: Literal["individual", "business"]
    effective_at: str
    position: int = Field(description="reads with `?min_position=` this include the profile")


class Posting(BaseModel):
    account: str
    currency: str
    amount: int = Field(description="debits positive, credits negative")


class JournalEntry(BaseModel):
    entry_id: str
    position: int
    at: str
    kind: str
    payment_id: str | None
    statement_id: str | None
    postings: list[Posting]


class JournalPage(BaseModel):
    items: list[JournalEntry]
    next_after: int | None = Field(description="`after` of the next page; null on the last")


class Balances(BaseModel):
    accounts: dict[str, dict[str, int]] = Field(
        description="account → currency → balance (debits positive); sums to zero per currency"
    )


# --- statements -------------------------------------------------------------------------

StatementStatus = Literal["open", "closed", "paid"]


class StatementLine(BaseModel):
    payment_id: str
    order_id: str
    kind: Literal["sale", "refund", "chargeback"]
    amount: int = Field(description="negative for a reversal (a failed refund, a sale taken back)")
    commission: int
    vat: int
    at: str


class StatementSummary(BaseModel):
    statement_id: str
    trainer_id: str
    currency: str
    period_start: str
    period_end: str
    status: StatementStatus
    gross_sales: int
    refunds: int = Field(description="refunds and chargebacks")
    commission: int = Field(description="net of the refunds' reversals")
    vat: int
    carried_in: int = Field(description="a negative result of the previous statement")
    withholding: int
    payout_amount: int
    paid_reference: str | None


class StatementOut(StatementSummary):
    lines: list[StatementLine]


class StatementPage(BaseModel):
    items: list[StatementSummary]
    next_cursor: str | None


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period_end: IsoDay = Field(description="YYYY-MM-DD, before today")


class CloseOut(BaseModel):
    closed: list[str]
    position: int = Field(description="reads with `?min_position=` this include the closes")


class PayoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Identifier = Field(description="the bank transfer's reference")


class TrainerBalance(BaseModel):
    unsettled: int = Field(description="in open statements, before tax")
    payable: int = Field(description="closed, not yet paid")
    paid_out: int
