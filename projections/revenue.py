"""Daily revenue buckets: what the admin statistics read, in O(days) and never O(payments).

A bucket is (day, currency, provider, status) with the number of payments in it and their
net revenue (amount captured - refunded - charged back, for paid statuses only: a disputed
payment's money counts until the dispute is lost). Each payment sits in exactly one
bucket: the business day (in LEDGER_TIMEZONE) of its completion once paid, otherwise of
its creation. A status change moves it: out of the old bucket, into the new one.

The per-payment table `revenue_payments` remembers where each payment sits, so a move knows
the bucket to leave, and its creation day, where a reversed completion takes it back.
Changing LEDGER_TIMEZONE needs `ledger rebuild --projection revenue`; a table of an older
DDL is built again when a process starts (see `drop_if_older`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.payment import Payment
from ledger.statement import business_day
from ledger.status import PAID_STATUSES as PAID
from ledger.status import Provider, chargeback, paid_status
from projections.base import PostgresView, SQLiteView, View
from projections.payments_table import drop_if_older
from projections.rows import CounterTable, KeyedTable, Row, Rows

PROVIDERS = tuple(p.value for p in Provider)
PAID_STATUSES = tuple(s.value for s in PAID)
PAYMENT_COLUMNS = (
    "payment_id", "day", "currency", "provider", "status", "amount", "refunded",
    "created_day", "chargeback",
)  # fmt: skip
NEWEST_COLUMN = "chargeback"  # a revenue_payments without it is of an older DDL
# Where each payment sits, and the buckets: (day, currency, provider, status) → count, net.
PAYMENTS = KeyedTable("revenue_payments", "payment_id", PAYMENT_COLUMNS)
BUCKETS = CounterTable(
    "revenue_daily", ("day", "currency", "provider", "status"), ("count", "net_revenue")
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
        " refunded BIGINT NOT NULL, created_day TEXT NOT NULL, chargeback BIGINT NOT NULL)",
    )

    def create_table(self) -> None:
        drop_if_older(self, "revenue_payments", NEWEST_COLUMN)
        super().create_table()  # type: ignore[safe-super]  # the backend's, next in the MRO

    def business_day(self, moment: datetime) -> str:
        return business_day(moment, self.zone).isoformat()

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
        "disputed_count": counts["disputed"],
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
        payment = {
            "payment_id": str(domain_event.originator_id),
            "day": self.view.business_day(domain_event.timestamp),
            "currency": domain_event.currency,
            "provider": domain_event.provider,
            "status": "pending",
            "amount": domain_event.amount,
            "refunded": 0,
            "created_day": self.view.business_day(domain_event.timestamp),
            "chargeback": 0,
        }
        with self.view.change(tracking) as batch:
            batch.rows.put(PAYMENTS, payment)
            _enter(batch.rows, payment, +1)

    @process_event.register
    def _(self, domain_event: Payment.Completed, tracking: Tracking) -> None:
        day = self.view.business_day(domain_event.approved_at)
        self._move(domain_event, tracking, lambda _: {"status": "completed", "day": day})

    @process_event.register
    def _(self, domain_event: Payment.Failed, tracking: Tracking) -> None:
        self._move(domain_event, tracking, lambda _: {"status": "failed"})

    @process_event.register
    def _(self, domain_event: Payment.Cancelled, tracking: Tracking) -> None:
        self._move(domain_event, tracking, lambda _: {"status": "cancelled"})

    @process_event.register
    def _(self, domain_event: Payment.Refunded, tracking: Tracking) -> None:
        def refund(payment: Row) -> Row:
            refunded = payment["refunded"] + domain_event.amount
            return {"refunded": refunded, "status": _status(payment, refunded)}

        self._move(domain_event, tracking, refund)

    @process_event.register
    def _(self, domain_event: Payment.AmountDiscrepancyRecorded, tracking: Tracking) -> None:
        self._move(domain_event, tracking, lambda _: {"amount": domain_event.captured_amount})

    @process_event.register
    def _(self, domain_event: Payment.CompletionReversed, tracking: Tracking) -> None:
        # Unpaid again: back to the bucket of its creation day, with no revenue.
        self._move(domain_event, tracking, lambda p: {"status": "pending", "day": p["created_day"]})

    @process_event.register
    def _(self, domain_event: Payment.RefundFailed, tracking: Tracking) -> None:
        def undo(payment: Row) -> Row:
            refunded = payment["refunded"] - domain_event.amount
            return {"refunded": refunded, "status": _status(payment, refunded)}

        self._move(domain_event, tracking, undo)

    @process_event.register
    def _(self, domain_event: Payment.DisputeOpened, tracking: Tracking) -> None:
        self._move(domain_event, tracking, lambda _: {"status": "disputed"})

    @process_event.register
    def _(self, domain_event: Payment.DisputeClosed, tracking: Tracking) -> None:
        def close(payment: Row) -> Row:
            taken = payment["chargeback"]
            if domain_event.outcome == "lost":
                left = payment["amount"] - payment["refunded"] - taken
                taken += chargeback(domain_event.amount, left)
            status = paid_status(payment["refunded"] + taken, payment["amount"])
            return {"chargeback": taken, "status": status.value}

        self._move(domain_event, tracking, close)

    def _move(self, domain_event: Any, tracking: Tracking, change: Callable[[Row], Row]) -> None:
        """Take the payment out of its bucket, change it, put it into its (new) bucket; an
        event of a payment the view does not hold changes nothing."""
        with self.view.change(tracking) as batch:
            payment = batch.rows.get(PAYMENTS, str(domain_event.originator_id))
            if payment is not None:
                _enter(batch.rows, payment, -1)
                payment |= change(payment)
                batch.rows.put(PAYMENTS, payment)
                _enter(batch.rows, payment, +1)


def _enter(rows: Rows, payment: Row, sign: int) -> None:
    """Add the payment to its bucket (+1) or take it out (-1)."""
    paid = payment["status"] in PAID_STATUSES
    kept = payment["amount"] - payment["refunded"] - payment["chargeback"]
    net = kept if paid else 0  # money kept, once taken
    bucket = (payment["day"], payment["currency"], payment["provider"], payment["status"])
    rows.add(BUCKETS, bucket, sign, sign * net)


def _status(payment: Row, refunded: int) -> str:
    """A paid payment's status after its refunds changed; an open dispute stays."""
    if payment["status"] == "disputed":
        return "disputed"
    return paid_status(refunded + payment["chargeback"], payment["amount"]).value
