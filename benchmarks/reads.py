"""Dashboard reads over HTTP, and the seed app's way of computing the same stats: select
every payment row and sum in Python."""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from psycopg.rows import dict_row

from benchmarks.history import STATEMENT_ID
from benchmarks.measure import summary_ms, timed
from benchmarks.positions import Positions
from benchmarks.server import Server, admin_headers

READS = {
    "stats": "/api/admin/stats",
    "payments_completed_stripe": "/api/admin/payments?status=completed&provider=stripe&limit=50",
    "payments_trainer_failed": (
        "/api/admin/payments?trainer_id=trainer-007&status=failed_or_cancelled&limit=50"
    ),
    # Settlement: the trial balance (one row per account and currency), and one trainer's
    # statement with its 50 lines (benchmarks/history.py loads it once, before the history).
    "balances": "/api/admin/balances",
    "statement": f"/api/admin/settlements/{STATEMENT_ID}",
}
# Analytics over the whole history's 400 days (benchmarks/history.py): the most buckets a
# dashboard reads; their cost must follow the days in the range, not the payments.
YEAR_AGO = (datetime.now(UTC) - timedelta(days=400)).date().isoformat()
ANALYTICS = {
    "analytics_revenue_30d": "/api/admin/analytics/revenue?interval=day",
    "analytics_revenue_months": f"/api/admin/analytics/revenue?interval=month&from={YEAR_AGO}",
    "analytics_methods": f"/api/admin/analytics/methods?from={YEAR_AGO}",
    "analytics_hours": f"/api/admin/analytics/hours?from={YEAR_AGO}",
    "analytics_outcomes": f"/api/admin/analytics/outcomes?from={YEAR_AGO}",
    # A search by id is an index look-up; by a name fragment it scans (newest first, until
    # a page is full); a trainer's CSV streams ~1/200 of the payments.
    "search_order_id": "/api/admin/payments?q=hist-000000007",
    "search_name": "/api/admin/payments?q=minji&limit=50",
    "csv_trainer": "/api/admin/payments.csv?trainer_id=trainer-007",
}
READS |= ANALYTICS
WARM_UP = 5
PAID = ("completed", "partially_refunded", "refunded")


def measure_reads(server: Server, repeat: int) -> dict[str, Any]:
    """p50/p99 of each dashboard read; a route that does not exist yet is reported skipped."""
    results: dict[str, Any] = {}
    with httpx.Client(base_url=server.base_url, headers=admin_headers(), timeout=60) as client:
        for name, path in READS.items():
            first = client.get(path)
            if first.status_code == 404 and first.json().get("detail") == "Not Found":
                results[name] = {"skipped": "route missing"}
                continue
            first.raise_for_status()
            for _ in range(WARM_UP):
                client.get(path)
            row: dict[str, Any] = summary_ms(timed(_getter(client, path), repeat))
            if name == "stats":
                row["total_revenue"] = first.json().get("total_revenue")
            elif name == "balances":  # what the read returns stays the same size
                row["accounts"] = len(first.json()["accounts"])
            elif name == "statement":
                row["lines"] = len(first.json()["lines"])
            results[name] = row
    return results


def _getter(client: httpx.Client, path: str) -> Callable[[], object]:
    return lambda: client.get(path).raise_for_status()


def naive_stats(rows: list[dict[str, Any]], zone: ZoneInfo) -> dict[str, Any]:
    """What the seed app did on every dashboard load, over every payment row."""
    today = datetime.now(zone).date()
    total: Counter[str] = Counter()
    today_revenue: Counter[str] = Counter()
    month: Counter[str] = Counter()
    counts: Counter[str] = Counter(row["status"] for row in rows)
    by_provider: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row["status"] not in PAID or not row["completed_at"]:
            continue
        net = row["amount"] - row["refunded_amount"]
        total[row["currency"]] += net
        by_provider[row["provider"]][row["currency"]] += net
        day = datetime.fromisoformat(row["completed_at"]).astimezone(zone).date()
        if day == today:
            today_revenue[row["currency"]] += net
        if (day.year, day.month) == (today.year, today.month):
            month[row["currency"]] += net
    return {"total_revenue": dict(total), "today_revenue": dict(today_revenue),
            "month_revenue": dict(month), "counts": dict(counts),
            "by_provider": {k: dict(v) for k, v in by_provider.items()}}  # fmt: skip


def _all_rows(database_url: str) -> list[dict[str, Any]]:
    positions = Positions(database_url)
    try:
        sql = f"SELECT * FROM {positions.table('payments')}"
        if positions.postgres:
            with positions.conn.cursor(row_factory=dict_row) as cursor:
                return list(cursor.execute(sql).fetchall())
        positions.conn.row_factory = sqlite3.Row
        return [dict(row) for row in positions.conn.execute(sql)]
    finally:
        positions.close()


def measure_naive(database_url: str, repeat: int, zone: str = "Asia/Seoul") -> dict[str, Any]:
    """Select all payment rows and sum in Python, `repeat` times (in this process: a lower
    bound of what an HTTP endpoint doing it would cost)."""
    result: dict[str, Any] = {}

    def once() -> None:
        result.update(naive_stats(_all_rows(database_url), ZoneInfo(zone)))

    latencies = timed(once, repeat)
    return {**summary_ms(latencies), "total_revenue": result.get("total_revenue")}
