"""The admin payments table: one row per payment, filterable, newest first.

`amount` is what the provider captured; `ordered_amount` the order's, differing only with an
amount discrepancy (`discrepancy_reason` then set). A table created before a column existed
is dropped when a process starts (`drop_if_older`), and its runner replays the history into
the new one: no manual `ledger rebuild` is needed after an upgrade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.payment import Payment
from ledger.status import chargeback, paid_status
from projections.base import PostgresView, SQLiteView, View
from projections.payment_filters import ALL_PAYMENTS, PaymentFilter, where
from projections.rows import KeyedTable, Row
from store.ddl import schema_creation_lock

COLUMNS = (
    "payment_id", "order_id", "booking_id", "customer_id", "customer_name", "trainer_id",
    "booking_date", "amount", "refunded_amount", "currency", "status", "provider",
    "provider_payment_id", "created_at", "completed_at", "failure_code", "failure_message",
    "updated_at", "created_position", "last_position",
    "ordered_amount", "chargeback_amount", "discrepancy_reason",
)  # fmt: skip
# A column the latest DDL added: a table without it is older and is built again.
NEWEST_COLUMN = "discrepancy_reason"
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "pending": ("pending",),
    "completed": ("completed",),
    "failed": ("failed",),
    "cancelled": ("cancelled",),
    "partially_refunded": ("partially_refunded",),
    "refunded": ("refunded",),
    "failed_or_cancelled": ("failed", "cancelled"),
    "disputed": ("disputed",),
}


class PaymentsTableView(View):
    table_names = ("payments",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS payments ("
        " payment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, booking_id TEXT NOT NULL,"
        " customer_id TEXT NOT NULL, customer_name TEXT NOT NULL, trainer_id TEXT NOT NULL,"
        " booking_date TEXT NOT NULL, amount BIGINT NOT NULL, refunded_amount BIGINT NOT NULL,"
        " currency TEXT NOT NULL, status TEXT NOT NULL, provider TEXT NOT NULL,"
        " provider_payment_id TEXT, created_at TEXT NOT NULL, completed_at TEXT,"
        " failure_code TEXT, failure_message TEXT, updated_at TEXT NOT NULL,"
        " created_position BIGINT NOT NULL UNIQUE, last_position BIGINT NOT NULL,"
        " ordered_amount BIGINT NOT NULL, chargeback_amount BIGINT NOT NULL,"
        " discrepancy_reason TEXT)",
        "CREATE INDEX IF NOT EXISTS payments_status ON payments (status, created_position)",
        "CREATE INDEX IF NOT EXISTS payments_provider ON payments (provider, created_position)",
        "CREATE INDEX IF NOT EXISTS payments_trainer ON payments (trainer_id, created_position)",
        "CREATE INDEX IF NOT EXISTS payments_booking ON payments (booking_id)",
        # The search (`q`) looks these up exactly, beside the primary key and booking_id.
        "CREATE INDEX IF NOT EXISTS payments_order ON payments (order_id)",
        "CREATE INDEX IF NOT EXISTS payments_provider_payment ON payments (provider_payment_id)",
    )

    def page(
        self,
        filters: PaymentFilter = ALL_PAYMENTS,
        *,
        before_position: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first; `before_position` is the cursor (exclusive)."""
        clause, params = where(filters, before_position)
        rows = self.query(
            f"SELECT {', '.join(COLUMNS)} FROM payments {clause} "
            "ORDER BY created_position DESC LIMIT :limit",
            {**params, "limit": limit},
        )
        return [with_discrepancy(row) for row in rows]

    def for_booking(self, booking_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            f"SELECT {', '.join(COLUMNS)} FROM payments WHERE booking_id = :booking_id "
            "ORDER BY created_position",
            {"booking_id": booking_id},
        )
        return [with_discrepancy(row) for row in rows]

    def pending_before(
        self, created_before_iso: str, limit: int, after_position: int = 0
    ) -> list[dict[str, Any]]:
        """Pending payments created before that moment (an ISO-8601 UTC text, compared as
        the `created_at` texts are written), oldest first; `after_position` pages on."""
        return self.query(
            f"SELECT {', '.join(COLUMNS)} FROM payments WHERE status = 'pending'"
            " AND created_at < :before AND created_position > :after"
            " ORDER BY created_position LIMIT :limit",
            {"before": created_before_iso, "after": after_position, "limit": limit},
        )

    def completed_around(
        self, provider: str, since_iso: str, until_iso: str
    ) -> list[dict[str, Any]]:
        """The provider's payments with a completion whose `completed_at` text falls in
        [since, until): written with the provider's offset, so a caller widens the range by
        a day each side and compares the parsed moments itself."""
        return self.query(
            f"SELECT {', '.join(COLUMNS)} FROM payments WHERE provider = :provider"
            " AND completed_at IS NOT NULL AND completed_at >= :since AND completed_at < :until"
            " ORDER BY created_position",
            {"provider": provider, "since": since_iso, "until": until_iso},
        )

    def dump(self) -> list[dict[str, Any]]:
        return self.query(f"SELECT {', '.join(COLUMNS)} FROM payments ORDER BY payment_id")

    def create_table(self) -> None:
        drop_if_older(self, "payments", NEWEST_COLUMN)
        super().create_table()  # type: ignore[safe-super]  # the backend's, next in the MRO


def with_discrepancy(row: dict[str, Any]) -> dict[str, Any]:
    """The row as admins read it: `amount_discrepancy` spelled out, or None."""
    reason = row["discrepancy_reason"]
    expected = {"expected_amount": row["ordered_amount"], "captured_amount": row["amount"]}
    return {**row, "amount_discrepancy": None if reason is None else {**expected, "reason": reason}}


def drop_if_older(view: View, table: str, newest_column: str) -> None:
    """Drop the view (rows and position) when `table` exists without `newest_column`: its
    runner then replays the whole history into the table the current DDL creates. On
    PostgreSQL under the schema's DDL lock, so that of processes starting together one
    drops and none drops a table another has begun to fill."""
    if isinstance(view, PostgresView):
        with schema_creation_lock(view.datastore):
            columns = view.query(_PG_COLUMNS, {"table": table})
            if columns and newest_column not in {c["name"] for c in columns}:
                view.drop()
        return
    columns = view.query("SELECT name FROM pragma_table_info(:table)", {"table": table})
    if columns and newest_column not in {c["name"] for c in columns}:
        view.drop()


_PG_COLUMNS = (
    "SELECT column_name AS name FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = :table"
)


class SQLitePaymentsTableView(PaymentsTableView, SQLiteView):
    view_name = "payments_table"


class PostgresPaymentsTableView(PaymentsTableView, PostgresView):
    pass


PAYMENTS = KeyedTable("payments", "payment_id", COLUMNS)


class PaymentsTableProjection(Projection[PaymentsTableView]):
    name = "payments_table"
    views: ClassVar[dict[str, type[PaymentsTableView]]] = {
        "sqlite": SQLitePaymentsTableView,
        "postgres": PostgresPaymentsTableView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    @process_event.register
    def _(self, domain_event: Payment.Initiated, tracking: Tracking) -> None:
        at = domain_event.timestamp.isoformat()
        row = {
            "payment_id": str(domain_event.originator_id),
            "order_id": domain_event.order_id,
            "booking_id": domain_event.booking_id,
            "customer_id": domain_event.customer_id,
            "customer_name": domain_event.customer_name,
            "trainer_id": domain_event.trainer_id,
            "booking_date": domain_event.booking_date,
            "amount": domain_event.amount,
            "refunded_amount": 0,
            "currency": domain_event.currency,
            "status": "pending",
            "provider": domain_event.provider,
            "provider_payment_id": None,
            "created_at": at,
            "completed_at": None,
            "failure_code": None,
            "failure_message": None,
            "updated_at": at,
            "created_position": tracking.notification_id,
            "last_position": tracking.notification_id,
            "ordered_amount": domain_event.amount,
            "chargeback_amount": 0,
            "discrepancy_reason": None,
        }
        with self.view.change(tracking) as batch:
            batch.rows.put(PAYMENTS, row)

    @process_event.register
    def _(self, domain_event: Payment.Completed, tracking: Tracking) -> None:
        self._update(
            domain_event,
            tracking,
            lambda _: {
                "status": "completed",
                "completed_at": domain_event.approved_at.isoformat(),
                "provider_payment_id": domain_event.provider_payment_id,
            },
        )

    @process_event.register
    def _(self, domain_event: Payment.Failed, tracking: Tracking) -> None:
        self._update(
            domain_event,
            tracking,
            lambda _: {
                "status": "failed",
                "failure_code": domain_event.code,
                "failure_message": domain_event.message,
            },
        )

    @process_event.register
    def _(self, domain_event: Payment.Cancelled, tracking: Tracking) -> None:
        self._update(domain_event, tracking, lambda _: {"status": "cancelled"})

    @process_event.register
    def _(self, domain_event: Payment.Refunded, tracking: Tracking) -> None:
        def refund(row: Row) -> Row:
            refunded = row["refunded_amount"] + domain_event.amount
            return {"refunded_amount": refunded, "status": _status(row, refunded)}

        self._update(domain_event, tracking, refund)

    @process_event.register
    def _(self, domain_event: Payment.AmountDiscrepancyRecorded, tracking: Tracking) -> None:
        change = {"amount": domain_event.captured_amount, "discrepancy_reason": domain_event.reason}
        self._update(domain_event, tracking, lambda _: change)

    @process_event.register
    def _(self, domain_event: Payment.CompletionReversed, tracking: Tracking) -> None:
        self._update(domain_event, tracking, lambda _: {"status": "pending", "completed_at": None})

    @process_event.register
    def _(self, domain_event: Payment.RefundFailed, tracking: Tracking) -> None:
        def undo(row: Row) -> Row:
            refunded = row["refunded_amount"] - domain_event.amount
            return {"refunded_amount": refunded, "status": _status(row, refunded)}

        self._update(domain_event, tracking, undo)

    @process_event.register
    def _(self, domain_event: Payment.DisputeOpened, tracking: Tracking) -> None:
        self._update(domain_event, tracking, lambda _: {"status": "disputed"})

    @process_event.register
    def _(self, domain_event: Payment.DisputeClosed, tracking: Tracking) -> None:
        def close(row: Row) -> Row:
            taken = row["chargeback_amount"]
            if domain_event.outcome == "lost":
                left = row["amount"] - row["refunded_amount"] - taken
                taken += chargeback(domain_event.amount, left)
            status = paid_status(row["refunded_amount"] + taken, row["amount"])
            return {"chargeback_amount": taken, "status": status.value}

        self._update(domain_event, tracking, close)

    def _update(self, domain_event: Any, tracking: Tracking, change: Callable[[Row], Row]) -> None:
        """The payment's row with `change(row)` applied, stamped with this event; an event
        of a payment the table does not hold changes nothing."""
        with self.view.change(tracking) as batch:
            row = batch.rows.get(PAYMENTS, str(domain_event.originator_id))
            if row is not None:
                row |= change(row)
                row["last_position"] = tracking.notification_id
                row["updated_at"] = domain_event.timestamp.isoformat()
                batch.rows.put(PAYMENTS, row)


def _status(row: Row, refunded: int) -> str:
    """A paid payment's status after its money changed, as the aggregate decides it: an open
    dispute stays `disputed`."""
    if row["status"] == "disputed":
        return "disputed"
    return paid_status(refunded + row["chargeback_amount"], row["amount"]).value
