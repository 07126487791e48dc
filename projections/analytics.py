"""What the admin statistics and analytics read from the revenue buckets (projections/revenue.py).

Every read groups bucket rows of the asked range, so its cost grows with the number of days
(times hours, methods or codes) in the range, never with the number of payments. Days are
business days in LEDGER_TIMEZONE; a paid payment counts on the day and hour of its
completion, any other on those of its creation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from ledger.statement import business_day
from ledger.status import PAID_STATUSES as PAID
from ledger.status import Provider

PROVIDERS = tuple(p.value for p in Provider)
PAID_STATUSES = tuple(s.value for s in PAID)
Interval = Literal["day", "week", "month"]
TOP_FAILURES = 10
_PAID_IN = f"status IN ({', '.join(repr(s) for s in PAID_STATUSES)})"
_RANGE = "day >= :start AND day <= :end"
_STATS = (
    "SELECT currency, provider, status, "
    "CASE WHEN day = :today THEN 1 ELSE 0 END AS is_today, "
    "CASE WHEN day >= :month_start AND day < :next_month THEN 1 ELSE 0 END AS in_month, "
    "CAST(SUM(count) AS BIGINT) AS payments, CAST(SUM(net_revenue) AS BIGINT) AS net "
    "FROM revenue_daily GROUP BY 1, 2, 3, 4, 5"
)
_SERIES = (
    "SELECT day, currency, CAST(SUM(count) AS BIGINT) AS payments,"
    " CAST(SUM(net_revenue) AS BIGINT) AS net, CAST(SUM(refunded) AS BIGINT) AS refunded"
    f" FROM revenue_daily WHERE {_RANGE} AND {_PAID_IN} {{provider}} GROUP BY day, currency"
)
_METHODS = (
    "SELECT provider, method, currency, CAST(SUM(count) AS BIGINT) AS payments,"
    " CAST(SUM(net_revenue) AS BIGINT) AS net"
    f" FROM revenue_methods WHERE {_RANGE} GROUP BY provider, method, currency"
)
_HOURS = (
    "SELECT day, hour, currency, CAST(SUM(count) AS BIGINT) AS payments,"
    " CAST(SUM(net_revenue) AS BIGINT) AS net"
    f" FROM revenue_hourly WHERE {_RANGE} GROUP BY day, hour, currency"
)
_OUTCOMES = (
    "SELECT status, CAST(SUM(count) AS BIGINT) AS payments"
    f" FROM revenue_daily WHERE {_RANGE} GROUP BY status"
)
_FAILURES = (
    "SELECT code, CAST(SUM(count) AS BIGINT) AS payments FROM revenue_failures"
    f" WHERE {_RANGE} GROUP BY code ORDER BY payments DESC, code LIMIT {TOP_FAILURES}"
)


@dataclass(frozen=True)
class DayRange:
    """Business days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def params(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def period_start(day: date, interval: Interval) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())  # weeks run Monday to Sunday
    if interval == "month":
        return day.replace(day=1)
    return day


def periods(days: DayRange, interval: Interval) -> Iterator[date]:
    """The start of every period that holds a day of the range, in order."""
    current = period_start(days.start, interval)
    while current <= days.end:
        yield current
        try:
            if interval == "month":
                current = (current + timedelta(days=32)).replace(day=1)
            else:
                current += timedelta(days=7 if interval == "week" else 1)
        except OverflowError:  # the period of 9999-12-31 was the last one
            return


class AnalyticsReads:
    """Reads of the revenue view (mixed into RevenueView, which supplies `query`)."""

    zone: ZoneInfo
    if TYPE_CHECKING:

        def query(self, sql: str, params: Any = None) -> list[dict[str, Any]]: ...

    def stats(self, now: datetime) -> dict[str, Any]:
        """The admin statistics at `now`."""
        today = business_day(now, self.zone)
        month_start = today.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        params = {"today": today, "month_start": month_start, "next_month": next_month}
        return fold_stats(self.query(_STATS, {k: v.isoformat() for k, v in params.items()}))

    def revenue_series(
        self, days: DayRange, interval: Interval, provider: str | None = None
    ) -> list[dict[str, Any]]:
        """Revenue (net), payments and what was given back, per period and currency; every
        period of the range appears for every currency, with zeros where nothing was paid."""
        params: dict[str, Any] = days.params
        if provider:
            params["provider"] = provider
        sql = _SERIES.format(provider="AND provider = :provider" if provider else "")
        sums: dict[tuple[date, str], list[int]] = {}
        for row in self.query(sql, params):
            start = period_start(date.fromisoformat(row["day"]), interval)
            into = sums.setdefault((start, row["currency"]), [0, 0, 0])
            for i, name in enumerate(("net", "payments", "refunded")):
                into[i] += row[name]
        currencies = sorted({c for _, c in sums} or self._currencies())
        return [
            _period(start, currency, sums.get((start, currency), [0, 0, 0]))
            for start in periods(days, interval)
            for currency in currencies
        ]

    def method_share(self, days: DayRange) -> list[dict[str, Any]]:
        """Paid payments per provider and payment method, most used first."""
        items: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.query(_METHODS, days.params):
            key = (row["provider"], row["method"])
            item = items.setdefault(key, {"provider": key[0], "method": key[1], "count": 0,
                                          "revenue": {}})  # fmt: skip
            item["count"] += row["payments"]
            _add(item["revenue"], row["currency"], row["net"])
        return sorted(items.values(), key=lambda i: (-i["count"], i["provider"], i["method"]))

    def hour_cells(self, days: DayRange) -> list[dict[str, Any]]:
        """Paid payments per weekday (0 = Monday) and hour of the business day: all 168."""
        cells = [
            {"weekday": weekday, "hour": hour, "count": 0, "revenue": {}}
            for weekday in range(7)
            for hour in range(24)
        ]
        for row in self.query(_HOURS, days.params):
            cell = cells[date.fromisoformat(row["day"]).weekday() * 24 + row["hour"]]
            cell["count"] += row["payments"]
            _add(cell["revenue"], row["currency"], row["net"])
        return cells

    def outcomes(self, days: DayRange) -> dict[str, Any]:
        """Of the payments that reached an outcome (pending ones have not), how many were
        paid; and the commonest failure codes."""
        counts = {row["status"]: row["payments"] for row in self.query(_OUTCOMES, days.params)}
        completed = sum(counts.get(status, 0) for status in PAID_STATUSES)
        failed, cancelled = counts.get("failed", 0), counts.get("cancelled", 0)
        attempts = completed + failed + cancelled
        failures = sorted(  # in Python too: the stores' collations order codes differently
            ({"code": row["code"], "count": row["payments"]}
             for row in self.query(_FAILURES, days.params)),
            key=lambda f: (-f["count"], f["code"]),
        )  # fmt: skip
        return {
            "attempts": attempts,
            "completed": completed,
            "failed": failed,
            "cancelled": cancelled,
            "success_rate": round(completed / attempts, 4) if attempts else None,
            "failures": failures,
        }

    def _currencies(self) -> list[str]:
        return [row["currency"] for row in self.query(_EVER_PAID)]


_EVER_PAID = f"SELECT DISTINCT currency FROM revenue_daily WHERE {_PAID_IN}"


def _period(start: date, currency: str, sums: list[int]) -> dict[str, Any]:
    revenue, count, refunded = sums
    return {"period_start": start.isoformat(), "currency": currency, "revenue": revenue,
            "count": count, "refunded": refunded}  # fmt: skip


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
