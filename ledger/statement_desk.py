"""StatementDesk: closing statements (with the withholding) and recording their payouts.

The figures come from the statements read model, through `StatementSource`, once it has
reached the store's head; the composition root hands it in, so ledger/ imports no view.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger.errors import ConflictError, LedgerError, NotFoundError
from ledger.message import statement_messages
from ledger.settlement import payout
from ledger.settlement_desk import MAX_ATTEMPTS, SettlementDesk
from ledger.statement import Statement


class StatementSource(Protocol):
    """What the desk reads of the statements read model."""

    def closable(self, period_end: str) -> tuple[list[dict[str, Any]], int]:
        """Open statements whose period ended by `period_end`, and the position read at."""
        ...

    def statement(self, statement_id: str) -> dict[str, Any] | None: ...


@dataclass
class Closing:
    closed: list[str] = field(default_factory=list)
    position: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


class StatementDesk:
    """Commands on statements, on the ledger's event store."""

    def __init__(
        self,
        profiles: SettlementDesk,
        source: StatementSource,
        wait: Callable[[int], None],
        withholding_bps: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.ledger = profiles.ledger
        self.profiles = profiles
        self.source = source
        self._wait = wait  # until the read model includes a position; TimeoutError if not
        self.withholding_bps = withholding_bps
        self._clock = clock

    def close(self, period_end: date, today: date) -> Closing:
        """Close every open statement whose period ended on or before `period_end` (which
        must be before `today`), earliest period first, so that a negative result is carried
        before the next statement closes. Two admins at once: each statement's Closed is
        its aggregate's first version, so one save wins and the other reads again."""
        if period_end >= today:
            raise LedgerError(f"the period ending {period_end} has not ended", "period_not_ended")
        closing = Closing(position=self._head())
        conflicts = 0
        while True:
            self._wait(self._head())
            rows, as_of = self.source.closable(period_end.isoformat())
            if not rows:
                return closing
            first = min(row["period_start"] for row in rows)
            statements = [self._closed(row, as_of) for row in rows if row["period_start"] == first]
            told = [m for s in statements for m in statement_messages(s, s.pending_events)]
            try:
                recordings = self.ledger.save(*statements, *told)
            except IntegrityError:
                conflicts += 1  # another admin closed some of them: read again
                if conflicts >= MAX_ATTEMPTS:
                    raise ConflictError("statements are being closed too fast; retry") from None
                time.sleep(random.uniform(0, 0.002 * conflicts))
                continue
            closing.closed += [str(s.id) for s in statements]
            closing.position = recordings[-1].notification.id

    def pay(self, statement_id: UUID, reference: str) -> int:
        """Record a closed statement's payout under `reference`; the same reference again
        appends nothing. Returns a position whose reads include the payout."""
        for attempt in range(MAX_ATTEMPTS):
            statement = self._find(statement_id)
            if not statement.pay(reference, self._clock()):
                return self._head()
            told = statement_messages(statement, statement.pending_events)
            try:
                return self.ledger.save(statement, *told)[-1].notification.id
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise ConflictError(f"statement {statement_id} is changing too fast; retry")

    def _find(self, statement_id: UUID) -> Statement:
        for _ in range(MAX_ATTEMPTS):
            try:
                found: object = self.ledger.repository.get(statement_id)
            except AggregateNotFoundError:
                found = None
            if isinstance(found, Statement):
                return found
            self._wait(self._head())
            row = self.source.statement(str(statement_id))
            if row is None:
                raise NotFoundError(f"no statement {statement_id}", "unknown_statement")
            if row["status"] == "open":
                raise ConflictError(f"statement {statement_id} is still open", "invalid_state")
        raise ConflictError(f"statement {statement_id} is being closed; retry")

    def _closed(self, row: dict[str, Any], as_of: int) -> Statement:
        profile = self.profiles.find_profile(row["trainer_id"])
        result = payout(
            carried_in=row["carried_in"],
            gross_sales=row["gross_sales"],
            refunds=row["refunds"],
            commission=row["commission"],
            vat=row["vat"],
            withholding_bps=self.withholding_bps,
            tax_type="business" if profile and profile.tax_type == "business" else "individual",
        )
        return Statement(
            trainer_id=row["trainer_id"],
            currency=row["currency"],
            period_start=row["period_start"],
            period_end=row["period_end"],
            gross_sales=row["gross_sales"],
            refunds=row["refunds"],
            commission=row["commission"],
            vat=row["vat"],
            carried_in=row["carried_in"],
            withholding=result.withholding,
            payout_amount=result.amount,
            as_of_position=as_of,
            closed_at=self._clock(),
        )

    def _head(self) -> int:
        return self.ledger.recorder.max_notification_id() or 0
