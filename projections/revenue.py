"""Revenue buckets: what the admin statistics and analytics read, in O(buckets), never
O(payments).

A bucket is (day, currency, provider, status) with the number of payments in it and their
net revenue (amount captured - refunded - charged back, for paid statuses only: a disputed
payment's money counts until the dispute is lost). Each payment sits in exactly one
bucket: the business day (in LEDGER_TIMEZONE) of its completion once paid, otherwise of
its creation. A status change moves it: out of the old bucket, into the new one.

Beside the daily buckets, paid payments also sit in an hour bucket (day, hour of that day,
currency) and a method bucket (day, currency, provider, method), and failed ones in a
failure-code bucket (day, code): the analytics routes (projections/analytics.py) read those.

The per-payment table `revenue_payments` remembers where each payment sits, so a move knows
the buckets to leave, and its creation day and hour, where a reversed completion takes it back.
Changing LEDGER_TIMEZONE needs `ledger rebuild --projection revenue`; a table of an older
DDL is built again when a process starts (see `drop_if_older`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.payment import Payment
from ledger.statement import business_day
from ledger.status import PAID_STATUSES as PAID
from ledger.status import Provider, chargeback, paid_status
from projections.analytics import AnalyticsReads
from projections.base import PostgresView, SQLiteView, View
from projections.payments_table import drop_if_older
from projections.rows import CounterTable, KeyedTable, Row, Rows

PROVIDERS = tuple(p.value for p in Provider)
PAID_STATUSES = tuple(s.value for s in PAID)
PAYMENT_COLUMNS = (
    "payment_id", "day", "currency", "provider", "status", "amount", "refunded",
    "created_day", "chargeback", "hour", "created_hour", "method", "failure_code",
)  # fmt: skip
NEWEST_COLUMN = "failure_code"  # a revenue_payments without it is of an older DDL
# Where each payment sits, and the buckets it is counted in.
PAYMENTS = KeyedTable("revenue_payments", "payment_id", PAYMENT_COLUMNS)
BUCKETS = CounterTable(
    "revenue_daily",
    ("day", "currency", "provider", "status"),
    ("count", "net_revenue", "refunded"),
)
HOURS = CounterTable("revenue_hourly", ("day", "hour", "currency"), ("count", "net_revenue"))
METHODS = CounterTable(
    "revenue_methods", ("day", "currency", "provider", "method"), ("count", "net_revenue")
)
FAILURES = CounterTable("revenue_failures", ("day", "code"), ("count",))


class RevenueView(AnalyticsReads, View):
    """Buckets and the per-payment table; `zone` is set by ReadModels from settings."""

    zone: ZoneInfo
    table_names = (
        "revenue_daily", "revenue_payments", "revenue_hourly", "revenue_methods",
        "revenue_failures",
    )  # fmt: skip
    ddl = (
        "CREATE TABLE IF NOT EXISTS revenue_daily ("
        " day TEXT NOT NULL, currency TEXT NOT NULL, provider TEXT NOT NULL,"
        " status TEXT NOT NULL, count BIGINT NOT NULL, net_revenue BIGINT NOT NULL,"
        " refunded BIGINT NOT NULL, PRIMARY KEY (day, currency, provider, status))",
        "CREATE TABLE IF NOT EXISTS revenue_payments ("
        " payment_id TEXT PRIMARY KEY, day TEXT NOT NULL, currency TEXT NOT NULL,"
        " provider TEXT NOT NULL, status TEXT NOT NULL, amount BIGINT NOT NULL,"
        " refunded BIGINT NOT NULL, created_day TEXT NOT NULL, chargeback BIGINT NOT NULL,"
        " hour INTEGER NOT NULL, created_hour INTEGER NOT NULL, method TEXT NOT NULL,"
        " failure_code TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS revenue_hourly ("
        " day TEXT NOT NULL, hour INTEGER NOT NULL, currency TEXT NOT NULL,"
        " count BIGINT NOT NULL, net_revenue BIGINT NOT NULL, PRIMARY KEY (day, hour, currency))",
        "CREATE TABLE IF NOT EXISTS revenue_methods ("
        " day TEXT NOT NULL, currency TEXT NOT NULL, provider TEXT NOT NULL,"
        " method TEXT NOT NULL, count BIGINT NOT NULL, net_revenue BIGINT NOT NULL,"
        " PRIMARY KEY (day, currency, provider, method))",
        "CREATE TABLE IF NOT EXISTS revenue_failures ("
        " day TEXT NOT NULL, code TEXT NOT NULL, count BIGINT NOT NULL,"
        " PRIMARY KEY (day, code))",
    )

    def create_table(self) -> None:
        drop_if_older(self, "revenue_payments", NEWEST_COLUMN)
        super().create_table()  # type: ignore[safe-super]  # the backend's, next in the MRO

    def business_day(self, moment: datetime) -> str:
        return business_day(moment, self.zone).isoformat()

    def business_hour(self, moment: datetime) -> int:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(self.zone).hour

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return {
            table.name: self.query(f"SELECT * FROM {table.name} ORDER BY {', '.join(table.keys)}")
            for table in (BUCKETS, HOURS, METHODS, FAILURES)
        } | {"revenue_payments": self.query("SELECT * FROM revenue_payments ORDER BY payment_id")}


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
            "hour": self.view.business_hour(domain_event.timestamp),
            "created_hour": self.view.business_hour(domain_event.timestamp),
            "method": "",
            "failure_code": "",
        }
        with self.view.change(tracking) as batch:
            batch.rows.put(PAYMENTS, payment)
            _enter(batch.rows, payment, +1)

    @process_event.register
    def _(self, domain_event: Payment.Completed, tracking: Tracking) -> None:
        approved_at, method = domain_event.approved_at, domain_event.method
        completed = {
            "status": "completed",
            "day": self.view.business_day(approved_at),
            "hour": self.view.business_hour(approved_at),
            "method": method,
        }
        self._move(domain_event, tracking, lambda _: completed)

    @process_event.register
    def _(self, domain_event: Payment.Failed, tracking: Tracking) -> None:
        failed = {"status": "failed", "failure_code": domain_event.code}
        self._move(domain_event, tracking, lambda _: failed)

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
        def reverse(payment: Row) -> Row:
            return {"status": "pending", "day": payment["created_day"],
                    "hour": payment["created_hour"]}  # fmt: skip

        self._move(domain_event, tracking, reverse)

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
    """Add the payment to its buckets (+1) or take it out (-1)."""
    day, currency, provider, status = (
        payment[k] for k in ("day", "currency", "provider", "status")
    )
    paid = status in PAID_STATUSES
    given_back = payment["refunded"] + payment["chargeback"] if paid else 0
    net = payment["amount"] - given_back if paid else 0  # money kept, once taken
    rows.add(BUCKETS, (day, currency, provider, status), sign, sign * net, sign * given_back)
    if paid:
        rows.add(HOURS, (day, payment["hour"], currency), sign, sign * net)
        method = payment["method"] or "unknown"
        rows.add(METHODS, (day, currency, provider, method), sign, sign * net)
    elif status == "failed":
        rows.add(FAILURES, (day, payment["failure_code"] or "unknown"), sign)


def _status(payment: Row, refunded: int) -> str:
    """A paid payment's status after its refunds changed; an open dispute stays."""
    if payment["status"] == "disputed":
        return "disputed"
    return paid_status(refunded + payment["chargeback"], payment["amount"]).value
