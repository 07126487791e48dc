"""The admin payments table: one row per payment, filterable, newest first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.payment import Payment, status_after_refunds
from projections.base import PostgresView, SQLiteView, View
from projections.rows import KeyedTable, Row

COLUMNS = (
    "payment_id", "order_id", "booking_id", "customer_id", "customer_name", "trainer_id",
    "booking_date", "amount", "refunded_amount", "currency", "status", "provider",
    "provider_payment_id", "created_at", "completed_at", "failure_code", "failure_message",
    "updated_at", "created_position", "last_position",
)  # fmt: skip
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "pending": ("pending",),
    "completed": ("completed",),
    "failed": ("failed",),
    "cancelled": ("cancelled",),
    "partially_refunded": ("partially_refunded",),
    "refunded": ("refunded",),
    "failed_or_cancelled": ("failed", "cancelled"),
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
        " created_position BIGINT NOT NULL UNIQUE, last_position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS payments_status ON payments (status, created_position)",
        "CREATE INDEX IF NOT EXISTS payments_provider ON payments (provider, created_position)",
        "CREATE INDEX IF NOT EXISTS payments_trainer ON payments (trainer_id, created_position)",
        "CREATE INDEX IF NOT EXISTS payments_booking ON payments (booking_id)",
    )

    def page(
        self,
        *,
        statuses: Sequence[str] = (),
        provider: str | None = None,
        trainer_id: str | None = None,
        before_position: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first; `before_position` is the cursor (exclusive)."""
        clauses, params = [], {"limit": limit}
        if statuses:
            names = [f"status_{i}" for i in range(len(statuses))]
            clauses.append(f"status IN ({', '.join(':' + n for n in names)})")
            params.update(zip(names, statuses, strict=True))  # type: ignore[arg-type]
        if provider:
            clauses.append("provider = :provider")
            params["provider"] = provider  # type: ignore[assignment]
        if trainer_id:
            clauses.append("trainer_id = :trainer_id")
            params["trainer_id"] = trainer_id  # type: ignore[assignment]
        if before_position is not None:
            clauses.append("created_position < :before")
            params["before"] = before_position
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.query(
            f"SELECT {', '.join(COLUMNS)} FROM payments {where} "
            "ORDER BY created_position DESC LIMIT :limit",
            params,
        )

    def for_booking(self, booking_id: str) -> list[dict[str, Any]]:
        return self.query(
            f"SELECT {', '.join(COLUMNS)} FROM payments WHERE booking_id = :booking_id "
            "ORDER BY created_position",
            {"booking_id": booking_id},
        )

    def dump(self) -> list[dict[str, Any]]:
        return self.query(f"SELECT {', '.join(COLUMNS)} FROM payments ORDER BY payment_id")


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
            status = status_after_refunds(refunded, row["amount"]).value
            return {"refunded_amount": refunded, "status": status}

        self._update(domain_event, tracking, refund)

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
