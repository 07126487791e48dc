"""Read the event store's head and every view's tracking position straight from the
database, so lag is measured without going through the service being measured."""

from __future__ import annotations

import sqlite3
import threading
import time
from bisect import bisect_left
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg

from benchmarks.measure import summary_ms

SAMPLE_INTERVAL_SECONDS = 0.001


class Positions:
    """One connection to a ledger's store: `head()` and `views()` (name → position)."""

    def __init__(self, database_url: str) -> None:
        self.postgres = database_url.startswith("postgres")
        if self.postgres:
            parsed = urlparse(database_url)
            self.schema = parse_qs(parsed.query).get("schema", ["public"])[0]
            self.conn: Any = psycopg.connect(database_url.split("?")[0], autocommit=True)
        else:
            path = database_url.removeprefix("sqlite:///")
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._views_sql = ""
        # The library names the table after the application on PostgreSQL only; SQLite's
        # notification id is the rowid.
        self.head_sql = (
            f"SELECT MAX(notification_id) FROM {self.schema}.paymentledger_events"
            if self.postgres
            else "SELECT MAX(rowid) FROM stored_events"
        )

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.postgres else name

    def _tracking_tables(self) -> list[str]:
        if self.postgres:
            sql = (
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name LIKE %s ORDER BY 1"
            )
            rows = self.conn.execute(sql, (self.schema, "%\\_tracking")).fetchall()
        else:
            sql = "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE '%tracking'"
            rows = self.conn.execute(sql).fetchall()
        return [str(r[0]) for r in rows]

    def head(self) -> int:
        row = self.conn.execute(self.head_sql).fetchone()
        return int(row[0] or 0)

    def views(self) -> dict[str, int]:
        if not self._views_sql:
            parts = [
                f"SELECT '{t.removesuffix('_tracking')}', MAX(notification_id) FROM {self.table(t)}"
                for t in self._tracking_tables()
            ]
            self._views_sql = " UNION ALL ".join(parts)
        if not self._views_sql:
            return {}
        return {str(name): int(pos or 0) for name, pos in self.conn.execute(self._views_sql)}

    def wait_caught_up(self, timeout: float, names: tuple[str, ...] = ()) -> float:
        """Block until the views (default: all) reach the head; returns seconds waited."""
        t0 = time.perf_counter()
        head = self.head()
        while time.perf_counter() - t0 < timeout:
            views = self.views()
            if views and all(p >= head for n, p in views.items() if not names or n in names):
                return time.perf_counter() - t0
            time.sleep(0.05)
        raise TimeoutError(f"views did not reach {head} in {timeout}s: {self.views()}")

    def settle(self) -> float:
        """What autovacuum does some time after a rebuild: drop the dead row versions the
        replay's updates left and refresh planner statistics. Returns seconds taken."""
        t0 = time.perf_counter()
        if not self.postgres:
            self.conn.execute("ANALYZE")  # SQLite updates in place: statistics only
            return time.perf_counter() - t0
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_type = 'BASE TABLE' AND table_name <> 'paymentledger_events'",
            (self.schema,),
        ).fetchall()
        for (table,) in rows:
            self.conn.execute(f"VACUUM ANALYZE {self.schema}.{table}")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()


class LagSampler:
    """Samples every view's position continuously; afterwards, tells for a write made at `t`
    with position `p` how long until each view had processed `p`. Times are wall-clock
    (`time.time()`), to compare with the times the server stores (the inbox's received_at)."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.positions.views()))
            time.sleep(SAMPLE_INTERVAL_SECONDS)

    def lags(self, writes: list[tuple[float, int]]) -> dict[str, dict[str, float]]:
        """Per view: p50/p99 of (first sample showing the position) minus (write made).
        A view that had the position before the write's time counts as zero lag."""
        times = [t for t, _ in self.samples]
        names = self.samples[-1][1].keys() if self.samples else ()
        result = {}
        for name in names:
            # Positions only grow, so the first sample at or past p is found by bisection.
            seen = [views.get(name, 0) for _, views in self.samples]
            lags = []
            for made_at, position in writes:
                k = bisect_left(seen, position)
                if k < len(seen):
                    lags.append(max(0.0, times[k] - made_at))
            result[name] = {**summary_ms(lags), "unseen": len(writes) - len(lags)}
        return result
