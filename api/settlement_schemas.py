"""Request and response bodies of settlement (CONTRACT.md, "Money owed")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

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
