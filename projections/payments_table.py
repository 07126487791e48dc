"""The admin payments table: one row per payment, filterable, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.payment import Payment
from projections.base import PostgresView, SQLiteView, View

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


_UPDATE_HEAD = "UPDATE payments SET last_position = :position, updated_at = :at, "


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
        sql = f"INSERT INTO payments ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"
        self.view.write(tracking, [(sql, row)])

    @process_event.register
    def _(self, domain_event: Payment.Completed, tracking: Tracking) -> None:
        self._update(
            domain_event,
            tracking,
            "status = 'completed', completed_at = :completed_at, provider_payment_id = :ppid",
            completed_at=domain_event.approved_at.isoformat(),
            ppid=domain_event.provider_payment_id,
        )

    @process_event.register
    def _(self, domain_event: Payment.Failed, tracking: Tracking) -> None:
        self._update(
            domain_event,
            tracking,
            "status = 'failed', failure_code = :code, failure_message = :message",
            code=domain_event.code,
            message=domain_event.message,
        )

    @process_event.register
    def _(self, domain_event: Payment.Cancelled, tracking: Tracking) -> None:
        self._update(domain_event, tracking, "status = 'cancelled'")

    @process_event.register
    def _(self, domain_event: Payment.Refunded, tracking: Tracking) -> None:
        self._update(
            domain_event,
            tracking,
            "refunded_amount = refunded_amount + :refund, status = CASE WHEN "
            "refunded_amount + :refund >= amount THEN 'refunded' ELSE 'partially_refunded' END",
            refund=domain_event.amount,
        )

    def _update(
        self, domain_event: Any, tracking: Tracking, assignments: str, **params: Any
    ) -> None:
        params |= {
            "payment_id": str(domain_event.originator_id),
            "position": tracking.notification_id,
            "at": domain_event.timestamp.isoformat(),
        }
        sql = f"{_UPDATE_HEAD}{assignments} WHERE payment_id = :payment_id"
        self.view.write(tracking, [(sql, params)])
