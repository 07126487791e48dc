"""The latest reconciliation report, as `GET /api/admin/reconciliation` shows it.

One row, replaced by every run's `ReconciliationRun.Checked`: the latest recorded run
(by event position) is the one shown, whichever process ran it.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.reconciliation import ReconciliationRun
from projections.base import PostgresView, SQLiteView, View
from projections.rows import KeyedTable

COLUMNS = (
    "slot", "run_id", "checked_at", "older_than_seconds", "pending_checked", "resolved",
    "still_pending", "mismatches", "position",
)  # fmt: skip
LATEST = KeyedTable("reconciliation_latest", "slot", COLUMNS)
_SLOT = "latest"


class ReconciliationView(View):
    table_names = ("reconciliation_latest",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS reconciliation_latest ("
        " slot TEXT PRIMARY KEY, run_id TEXT NOT NULL, checked_at TEXT NOT NULL,"
        " older_than_seconds DOUBLE PRECISION NOT NULL, pending_checked BIGINT NOT NULL,"
        " resolved BIGINT NOT NULL, still_pending BIGINT NOT NULL, mismatches TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
    )

    def latest(self) -> dict[str, Any] | None:
        """`{run_id, checked_at, older_than_seconds, pending_checked, resolved,
        still_pending, mismatches, position}` of the latest run, None before any."""
        rows = self.query(
            f"SELECT {', '.join(COLUMNS)} FROM reconciliation_latest WHERE slot = :slot",
            {"slot": _SLOT},
        )
        if not rows:
            return None
        report = {k: v for k, v in rows[0].items() if k != "slot"}
        report["mismatches"] = json.loads(report["mismatches"])
        return report


class SQLiteReconciliationView(ReconciliationView, SQLiteView):
    view_name = "reconciliation"


class PostgresReconciliationView(ReconciliationView, PostgresView):
    pass


class ReconciliationProjection(Projection[ReconciliationView]):
    name = "reconciliation"
    views: ClassVar[dict[str, type[ReconciliationView]]] = {
        "sqlite": SQLiteReconciliationView,
        "postgres": PostgresReconciliationView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    @process_event.register
    def _(self, domain_event: ReconciliationRun.Checked, tracking: Tracking) -> None:
        row = {
            "slot": _SLOT,
            "run_id": str(domain_event.originator_id),
            "checked_at": domain_event.checked_at.isoformat(),
            "older_than_seconds": float(domain_event.older_than_seconds),
            "pending_checked": domain_event.pending_checked,
            "resolved": domain_event.resolved,
            "still_pending": domain_event.still_pending,
            # ASCII JSON: any text a provider's message holds survives both stores.
            "mismatches": json.dumps(domain_event.mismatches, sort_keys=True),
            "position": tracking.notification_id,
        }
        with self.view.change(tracking) as batch:
            batch.rows.put(LATEST, row)
