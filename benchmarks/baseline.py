"""The raw limit: one-row INSERT + COMMIT per transaction, durable, from N connections."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.measure import Operation, Run, run_concurrently, summary_ms
from benchmarks.stores import Store

# About the size of a stored payment event: the comparison is per row and per commit.
PAYLOAD = json.dumps(
    {
        "order_id": "order-000000001",
        "booking_id": "booking-000000001",
        "customer_id": "customer-0001",
        "customer_name": "Kim Minji",
        "trainer_id": "trainer-001",
        "booking_date": "2025-01-01",
        "amount": 15000,
        "currency": "KRW",
        "provider": "toss",
        "timestamp": "2025-01-01T00:00:00+00:00",
    }
).encode()


def _postgres_worker(url: str, opened: list[Any]) -> Operation:
    conn = psycopg.connect(url)
    opened.append(conn)
    conn.execute("SET synchronous_commit = on")
    conn.commit()

    def insert() -> None:
        conn.execute("INSERT INTO raw_events (payload) VALUES (%s)", (PAYLOAD,), prepare=True)
        conn.commit()

    return insert


def _sqlite_worker(path: str, opened: list[Any]) -> Operation:
    # The library's settings: WAL journal, default (FULL) synchronous, a lock timeout.
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    opened.append(conn)

    def insert() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO raw_events (payload) VALUES (?)", (PAYLOAD,))
        conn.execute("COMMIT")

    return insert


def run_baseline(store: Store, concurrency: list[int], duration: float) -> dict[str, Any]:
    """Commits per second and commit latency at each concurrency."""
    opened: list[Any] = []
    if store.backend == "postgres":
        url = store.fresh("baseline").split("?")[0]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE baseline.raw_events (id bigserial PRIMARY KEY, payload bytea)"
            )
        url = f"{url}?options=-csearch_path%3Dbaseline"
        factory = lambda _: _postgres_worker(url, opened)  # noqa: E731
    else:
        path = str(Path(store.root) / "baseline.db")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE raw_events (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB)"
            )
        factory = lambda _: _sqlite_worker(path, opened)  # noqa: E731
    results = {}
    for n in concurrency:
        results[str(n)] = _row(run_concurrently(n, duration, factory))
        while opened:
            opened.pop().close()
    return results


def _row(run: Run) -> dict[str, Any]:
    return {"commits_per_s": round(run.per_second, 1), **summary_ms(run.latencies)}
