"""Daily revenue buckets: what the admin statistics read, in O(days) and never O(payments).

A bucket is (day, currency, provider, status) with the number of payments in it and their
net revenue (amount - refunded, for paid statuses only). Each payment sits in exactly one
bucket: the business day (in LEDGER_TIMEZONE) of its completion once paid, otherwise of
its creation. A status change moves it: out of the old bucket, into the new one.

The per-payment table `revenue_payments` remembers where each payment sits; every move is
plain SQL over it, so it is correct inside a rebuild's batch transaction too (a read
before the write would not see the batch's uncommitted rows). Changing LEDGER_TIMEZONE
needs `ledger rebuild --projection revenue`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.payment import Payment
from projections.base import PostgresView, SQLiteView, Statement, View

PROVIDERS = ("toss", "stripe")
PAID_STATUSES = ("completed", "partially_refunded", "refunded")
# Net revenue of the payment row `p`: money kept, only once the provider took it.
_NET = (
    "CASE WHEN p.status IN ('completed', 'partially_refunded', 'refunded') "
    "THEN p.amount - p.refunded ELSE 0 END"
)
_IS_ITS_BUCKET = (
    "EXISTS (SELECT 1 FROM revenue_payments p WHERE p.payment_id = :payment_id "
    "AND p.day = revenue_daily.day AND p.currency = revenue_daily.currency "
    "AND p.provider = revenue_daily.provider AND p.status = revenue_daily.status)"
)
_LEAVE_BUCKET = (
    "UPDATE revenue_daily SET count = count - 1, net_revenue = net_revenue - "
    f"(SELECT {_NET} FROM revenue_payments p WHERE p.payment_id = :payment_id) "
    f"WHERE {_IS_ITS_BUCKET}"
)
_DROP_EMPTY_BUCKET = f"DELETE FROM revenue_daily WHERE count = 0 AND {_IS_ITS_BUCKET}"
_ENTER_BUCKET = (
    "INSERT INTO revenue_daily (day, currency, provider, status, count, net_revenue) "
    f"SELECT p.day, p.currency, p.provider, p.status, 1, {_NET} "
    "FROM revenue_payments p WHERE p.payment_id = :payment_id "
    "ON CONFLICT (day, currency, provider, status) DO UPDATE SET "
    "count = revenue_daily.count + excluded.count, "
    "net_revenue = revenue_daily.net_revenue + excluded.net_revenue"
)
_STATS = (
    "SELECT currency, provider, status, "
    "CASE WHEN day = :today THEN 1 ELSE 0 END AS is_today, "
    "CASE WHEN day >= :month_start AND day < :next_month THEN 1 ELSE 0 END AS in_month, "
    "CAST(SUM(count) AS BIGINT) AS payments, CAST(SUM(net_revenue) AS BIGINT) AS net "
    "FROM revenue_daily GROUP BY 1, 2, 3, 4, 5"
)


class RevenueView(View):
    """Buckets and the per-payment table; `zone` is set by ReadModels from settings."""

    zone: ZoneInfo
    table_names = ("revenue_daily", "revenue_payments")
    ddl = (
        "CREATE TABLE IF NOT EXISTS revenue_daily ("
        " day TEXT NOT NULL, currency TEXT NOT NULL, provider TEXT NOT NULL,"
        " status TEXT NOT NULL, count BIGINT NOT NULL, net_revenue BIGINT NOT NULL,"
        " PRIMARY KEY (day, currency, provider, status))",
        "CREATE TABLE IF NOT EXISTS revenue_payments ("
        " payment_id TEXT PRIMARY KEY, day TEXT NOT NULL, currency TEXT NOT NULL,"
        " provider TEXT NOT NULL, status TEXT NOT NULL, amount BIGINT NOT NULL,"
        " refunded BIGINT NOT NULL)",
    )

    def business_day(self, moment: datetime) -> str:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).date().isoformat()

    def stats(self, now: datetime) -> dict[str, Any]:
        """The admin statistics at `now`; reads buckets only (O(days))."""
        today = date.fromisoformat(self.business_day(now))
        month_start = today.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        rows = self.query(
            _STATS,
            {
                "today": today.isoformat(),
                "month_start": month_start.isoformat(),
                "next_month": next_month.isoformat(),
            },
        )
        return fold_stats(rows)

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "revenue_daily": self.query(
                "SELECT * FROM revenue_daily ORDER BY day, currency, provider, status"
            ),
            "revenue_payments": self.query("SELECT * FROM revenue_payments ORDER BY payment_id"),
        }


def fold_stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Bucket groups → the contract's shape. Currencies with no net revenue are omitted."""
    totals: dict[str, dict[str, int]] = {"total": {}, "today": {}, "month": {}}
    counts = dict.fromkeys(("pending", "failed", "cancelled", *PAID_STATUSES), 0)
    by_provider: dict[str, dict[str, Any]] = {p: {"count": 0, "revenue": {}} for p in PROVIDERS}
    for row in rows:
        status, currency, net = row["status"], row["currency"], row["net"]
        counts[status] = counts.get(status, 0) + row["payments"]
        scopes = ["total"] + ["today"] * bool(row["is_today"]) + ["month"] * bool(row["in_month"])
        for scope in scopes:
            _add(totals[scope], currency, net)
        provider = by_provider.setdefault(row["provider"], {"count": 0, "revenue": {}})
        if status in PAID_STATUSES:
            provider["count"] += row["payments"]
            _add(provider["revenue"], currency, net)
    return {
        "total_revenue": totals["total"],
        "today_revenue": totals["today"],
        "month_revenue": totals["month"],
        "completed_count": counts["completed"],
        "pending_count": counts["pending"],
        "failed_count": counts["failed"],
        "cancelled_count": counts["cancelled"],
        "refunded_count": counts["refunded"] + counts["partially_refunded"],
        "by_provider": by_provider,
    }


def _add(totals: dict[str, int], currency: str, amount: int) -> None:
    if amount:
        totals[currency] = totals.get(currency, 0) + amount


class SQLiteRevenueView(RevenueView, SQLiteView):
    view_name = "revenue"


class PostgresRevenueView(RevenueView, PostgresView):
    pass


class RevenueProjection(Projection[RevenueView]):
    name = "revenue"
    views: ClassVar[dict[str, type[RevenueView]]] = {
        "sqlite": SQLiteRevenueView,
        "postgres": PostgresRevenueView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    @process_event.register
    def _(self, domain_event: Payment.Initiated, tracking: Tracking) -> None:
        row = {
            "payment_id": str(domain_event.originator_id),
            "day": self.view.business_day(domain_event.timestamp),
            "currency": domain_event.currency,
            "provider": domain_event.provider,
            "status": "pending",
            "amount": domain_event.amount,
            "refunded": 0,
        }
        insert = (
            f"INSERT INTO revenue_payments ({', '.join(row)}) "
            f"VALUES ({', '.join(':' + k for k in row)})"
        )
        self.view.write(tracking, [(insert, row), (_ENTER_BUCKET, row)])

    @process_event.register
    def _(self, domain_event: Payment.Completed, tracking: Tracking) -> None:
        day = self.view.business_day(domain_event.approved_at)
        self._move(domain_event, tracking, "status = 'completed', day = :day", day=day)

    @process_event.register
    def _(self, domain_event: Payment.Failed, tracking: Tracking) -> None:
        self._move(domain_event, tracking, "status = 'failed'")

    @process_event.register
    def _(self, domain_event: Payment.Cancelled, tracking: Tracking) -> None:
        self._move(domain_event, tracking, "status = 'cancelled'")

    @process_event.register
    def _(self, domain_event: Payment.Refunded, tracking: Tracking) -> None:
        self._move(
            domain_event,
            tracking,
            "refunded = refunded + :refund, status = CASE WHEN "
            "refunded + :refund >= amount THEN 'refunded' ELSE 'partially_refunded' END",
            refund=domain_event.amount,
        )

    def _move(self, domain_event: Any, tracking: Tracking, assignments: str, **params: Any) -> None:
        """Take the payment out of its bucket, change it, put it into its (new) bucket."""
        params["payment_id"] = str(domain_event.originator_id)
        statements: list[Statement] = [
            (_LEAVE_BUCKET, params),
            (_DROP_EMPTY_BUCKET, params),
            (f"UPDATE revenue_payments SET {assignments} WHERE payment_id = :payment_id", params),
            (_ENTER_BUCKET, params),
        ]
        self.view.write(tracking, statements)
