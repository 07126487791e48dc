"""Provider fees (`ledger reconcile-fees`): import the providers' settlement reports.

Each line's fee is recorded once as a `ProviderFee.Recorded` event (keyed by the report's
line id), which the journal posts as `provider_fees` +fee, `provider:{p}` -fee. The report
also says where the provider and the ledger disagree: lines for a payment the ledger does
not have (`unknown_to_ledger`), and payments the ledger completed on those business days
that the provider's report does not list (`missing_at_provider`, read from the payments
table, so it is as fresh as that view).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from api.providers.base import PaymentProvider, SettlementLine
from api.providers.registry import ProviderRegistry
from ledger.application import PaymentLedger
from ledger.payment import Payment
from ledger.provider_fee import record_fee
from ledger.statement import business_day
from projections.payments_table import PaymentsTableView


@dataclass
class ProviderFees:
    """One provider's part of the report."""

    lines: int = 0
    fees_posted: dict[str, int] = field(default_factory=dict)
    already_posted: int = 0
    unknown_to_ledger: list[dict[str, Any]] = field(default_factory=list)
    missing_at_provider: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "fees_posted": self.fees_posted,
            "already_posted": self.already_posted,
            "unknown_to_ledger": self.unknown_to_ledger,
            "missing_at_provider": self.missing_at_provider,
        }


class FeeReconciler:
    def __init__(
        self,
        ledger: PaymentLedger,
        providers: ProviderRegistry,
        payments: PaymentsTableView,
        zone: ZoneInfo,
    ) -> None:
        self.ledger, self.providers, self.payments, self.zone = ledger, providers, payments, zone

    def run(self, start: date, end: date) -> dict[str, Any]:
        """Read every provider's report first (an unreachable one raises before anything is
        posted), then record each line's fee once; the JSON report."""
        reports = {p.name: p.settlements(start, end) for p in self.providers}
        out: dict[str, Any] = {}
        for name, lines in reports.items():
            if lines is None:
                out[name] = "not_supported"
            else:
                out[name] = self._import(self.providers.get(name), lines, start, end).as_dict()
        return {"from": start.isoformat(), "to": end.isoformat(), "providers": out}

    def _import(
        self, provider: PaymentProvider, lines: list[SettlementLine], start: date, end: date
    ) -> ProviderFees:
        tally = ProviderFees(lines=len(lines))
        listed: set[str] = set()
        for line in lines:
            payment_id = self._payment_of(provider.name, line)
            listed.add(line.provider_payment_id)
            if line.order_id:
                listed.add(line.order_id)
            if payment_id is None:
                tally.unknown_to_ledger.append(_line_dict(line))
            position = record_fee(
                self.ledger,
                provider=provider.name,
                line_id=line.line_id or f"{line.provider_payment_id}:{line.settled_on}",
                payment_id=payment_id,
                order_id=line.order_id,
                fee=line.fee,
                currency=line.currency,
                settled_on=line.settled_on.isoformat(),
            )
            if position is None:
                tally.already_posted += 1
            else:
                posted = tally.fees_posted
                posted[line.currency] = posted.get(line.currency, 0) + line.fee
        for row in self._completed(provider.name, start, end):
            ids = {row["provider_payment_id"], row["order_id"]}
            if not ids & listed:
                tally.missing_at_provider.append(_payment_dict(row))
        return tally

    def _payment_of(self, provider: str, line: SettlementLine) -> UUID | None:
        if not line.order_id:
            return None
        payment_id = Payment.create_id(provider, line.order_id)
        return payment_id if payment_id in self.ledger.repository else None

    def _completed(self, provider: str, start: date, end: date) -> list[dict[str, Any]]:
        # completed_at keeps the provider's offset: select a day wider, decide on the moment.
        since = (start - timedelta(days=1)).isoformat()
        until = (end + timedelta(days=2)).isoformat()
        rows = self.payments.completed_around(provider, since, until)
        return [row for row in rows if start <= self._day(row["completed_at"]) <= end]

    def _day(self, moment: str) -> date:
        return business_day(datetime.fromisoformat(moment), self.zone)


def _line_dict(line: SettlementLine) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "provider_payment_id": line.provider_payment_id,
        "order_id": line.order_id,
        "amount": line.amount,
        "fee": line.fee,
        "currency": line.currency,
        "settled_on": line.settled_on.isoformat(),
    }


def _payment_dict(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("payment_id", "order_id", "provider_payment_id", "amount", "currency", "completed_at")
    return {key: row[key] for key in keys}
