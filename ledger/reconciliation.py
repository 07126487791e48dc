"""Reconciliation runs: what one re-read of the pending payments found, as an event.

The report is recorded (not only logged) so that every process, the admin API and the
audit trail see the same one, whichever process ran it. It holds no money: the payments
it resolved changed by their own events, under the providers' delivery identities.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class ReconciliationRun(Aggregate):
    """One run, a new (random) id each: runs are facts side by side, never a sequence
    that two processes would have to agree on."""

    class Checked(Aggregate.Created):
        checked_at: datetime
        older_than_seconds: float
        pending_checked: int
        resolved: int
        still_pending: int
        mismatches: list[dict[str, str]]

    @event(Checked)
    def __init__(
        self,
        *,
        checked_at: datetime,
        older_than_seconds: float,
        pending_checked: int,
        resolved: int,
        still_pending: int,
        mismatches: list[dict[str, str]],
    ) -> None:
        self.checked_at = checked_at
        self.older_than_seconds = older_than_seconds
        self.pending_checked = pending_checked
        self.resolved = resolved
        self.still_pending = still_pending
        self.mismatches = mismatches


def record_run(
    app: Application[UUID],
    *,
    checked_at: datetime,
    older_than_seconds: float,
    pending_checked: int,
    resolved: int,
    still_pending: int,
    mismatches: list[dict[str, str]],
) -> tuple[UUID, int]:
    """Save one run's report; its id and position."""
    run = ReconciliationRun(
        checked_at=checked_at,
        older_than_seconds=older_than_seconds,
        pending_checked=pending_checked,
        resolved=resolved,
        still_pending=still_pending,
        mismatches=mismatches,
    )
    return run.id, app.save(run)[-1].notification.id
