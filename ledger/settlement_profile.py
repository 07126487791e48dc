"""A trainer's settlement profile: the commission rate and tax type its payments settle at.

A change applies to payments completed from then on (CONTRACT.md, "Money owed"): the
journal reads the profile in force at each completion's position, so history is never
rewritten. Setting the values a profile already has appends nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.errors import LedgerError
from ledger.ids import stable_id
from ledger.settlement import BPS, TaxType

TAX_TYPES: tuple[TaxType, ...] = ("individual", "business")


def check_terms(commission_bps: int, tax_type: str) -> None:
    """Refuse a rate outside 0..10000 bps or an unknown tax type (the API's 422 comes first;
    this keeps the aggregate right for any other caller)."""
    if isinstance(commission_bps, bool) or not 0 <= commission_bps <= BPS:
        raise LedgerError(f"commission_bps must be 0..{BPS}, not {commission_bps}")
    if tax_type not in TAX_TYPES:
        raise LedgerError(f"tax_type must be one of {TAX_TYPES}, not {tax_type!r}")


class SettlementProfile(Aggregate):
    """One per trainer, by a deterministic id: the first set creates it, later sets change it."""

    class Set(Aggregate.Created):
        trainer_id: str
        commission_bps: int
        tax_type: str
        effective_at: datetime

    class Changed(Aggregate.Event):
        commission_bps: int
        tax_type: str
        effective_at: datetime

    @staticmethod
    def create_id(trainer_id: str, **_: Any) -> UUID:
        return stable_id(f"settlement-profile:{trainer_id}")

    @classmethod
    def start(
        cls, trainer_id: str, commission_bps: int, tax_type: str, effective_at: datetime
    ) -> SettlementProfile:
        check_terms(commission_bps, tax_type)
        return cls(
            trainer_id=trainer_id,
            commission_bps=commission_bps,
            tax_type=tax_type,
            effective_at=effective_at,
        )

    @event(Set)
    def __init__(
        self, *, trainer_id: str, commission_bps: int, tax_type: str, effective_at: datetime
    ) -> None:
        self.trainer_id = trainer_id
        self.commission_bps = commission_bps
        self.tax_type = tax_type
        self.effective_at = effective_at

    def change(self, commission_bps: int, tax_type: str, effective_at: datetime) -> bool:
        """Change the terms; returns whether an event was triggered (not for the same terms)."""
        check_terms(commission_bps, tax_type)
        if (commission_bps, tax_type) == (self.commission_bps, self.tax_type):
            return False
        self._changed(commission_bps=commission_bps, tax_type=tax_type, effective_at=effective_at)
        return True

    @event(Changed)
    def _changed(self, commission_bps: int, tax_type: str, effective_at: datetime) -> None:
        self.commission_bps = commission_bps
        self.tax_type = tax_type
        self.effective_at = effective_at

    def state(self) -> dict[str, Any]:
        return {
            "trainer_id": self.trainer_id,
            "commission_bps": self.commission_bps,
            "tax_type": self.tax_type,
            "effective_at": self.effective_at.isoformat(),
        }
