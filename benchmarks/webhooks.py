"""Webhook end to end: wrk posts signed `checkout.session.completed` deliveries to
`ledger serve` over 1, 4, 16 connections; then how fast the inbox is applied, and how long
after each acknowledgement the views show it.

A delivery is acknowledged (`accepted`) once stored in the webhook inbox and applied after
by its processor (api/inbox.py). Times come from the inbox's own rows: `received_at` (stored
just before the answer), `processed_at`, and the `position` the application appended; a
view's lag is from `received_at` until the view holds that position."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.orders import order, session_completed, stripe_signature
from benchmarks.positions import LagSampler, Positions
from benchmarks.recorders import settings_for
from benchmarks.server import Server, serve
from benchmarks.stores import Store
from benchmarks.wrk import ensure_wrk, run_wrk, write_requests
from ledger.application import PaymentLedger
from ledger.payment import Payment

ROUTE = "/api/webhooks/stripe"
PREFIX = "wh"
CATCH_UP_TIMEOUT_SECONDS = 600.0  # a level's backlog at full size, applied at ~200/s
SKIPPED = {"skipped": "route missing"}
WAITING_ONLY = " WHERE outcome IN ('accepted', 'retrying')"
STATS_VIEW = "revenue"  # what GET /api/admin/stats reads


def route_exists(server: Server) -> bool:
    """The contract answers 400 to a bad signature; 404/405 means no such route yet."""
    answer = httpx.post(
        f"{server.base_url}{ROUTE}", content=b"{}", headers={"Stripe-Signature": "t=1,v1=0"}
    )
    return answer.status_code not in (404, 405)


def create_pending(ledger: PaymentLedger, start: int, stop: int, prefix: str = PREFIX) -> None:
    """Initiated Stripe payments for the deliveries to complete (saved in bulk, untimed)."""
    for first in range(start, stop, 500):
        payments = [Payment(**vars(order(prefix, n))) for n in range(first, min(first + 500, stop))]
        ledger.save(*payments)


def signed(numbers: range) -> Iterator[tuple[str, bytes]]:
    """One distinct event per pending payment, signed now: Stripe's library refuses a
    signature older than 300 s, so each level signs its own just before it runs."""
    for n in numbers:
        payload = session_completed(order(PREFIX, n), n)
        yield stripe_signature(payload), payload


def inbox_waiting(positions: Positions) -> int:
    """Deliveries stored and not applied yet (nor given up on)."""
    sql = f"SELECT COUNT(*) FROM {positions.table('webhook_inbox')}" + WAITING_ONLY
    return int(positions.conn.execute(sql).fetchone()[0])


def wait_inbox_drained(positions: Positions, timeout: float) -> float:
    """Block until the processor has applied every stored delivery; returns seconds waited."""
    t0 = time.perf_counter()
    while inbox_waiting(positions):
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(f"{inbox_waiting(positions)} deliveries unapplied after {timeout}s")
        time.sleep(0.05)
    return time.perf_counter() - t0


def last_seq(positions: Positions) -> int:
    sql = f"SELECT MAX(seq) FROM {positions.table('webhook_inbox')}"
    return int(positions.conn.execute(sql).fetchone()[0] or 0)


def deliveries_after(positions: Positions, seq: int) -> list[dict[str, Any]]:
    """The inbox rows stored after `seq`: outcome, position, received/processed (epoch s)."""
    sql = (
        f"SELECT outcome, position, received_at, processed_at FROM"
        f" {positions.table('webhook_inbox')} WHERE seq > {int(seq)}"
    )
    return [_delivery(*row) for row in positions.conn.execute(sql).fetchall()]


def _delivery(
    outcome: str, position: int | None, received: str, done: str | None
) -> dict[str, Any]:
    return {"outcome": outcome, "position": position, "received": _epoch(received),
            "processed": _epoch(done) if done else None}  # fmt: skip


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def run_webhooks(
    store: Store, concurrency: list[int], duration: float, cap: int, leader_apart: bool = False
) -> dict[str, Any]:
    """Per connection count: acknowledged/s and latency from wrk, applied/s from the inbox,
    and each view's lag behind the acknowledgements. `leader_apart`: the processor and the
    projections in a `ledger project` process of their own (PostgreSQL only)."""
    if leader_apart and store.backend != "postgres":
        return {"skipped": "one process serves and leads on SQLite"}
    ensure_wrk()
    url = store.fresh("webhooks")
    ledger = PaymentLedger(env=settings_for(url).eventsourcing_env())
    positions = Positions(url)
    try:
        with (
            serve(url, leader_apart=leader_apart) as server,
            tempfile.TemporaryDirectory(prefix="wrk-") as scratch,
        ):
            if not route_exists(server):
                return dict(SKIPPED)
            results: dict[str, Any] = {}
            for i, connections in enumerate(concurrency):
                numbers = range(i * cap, (i + 1) * cap)
                create_pending(ledger, numbers.start, numbers.stop)
                positions.wait_caught_up(CATCH_UP_TIMEOUT_SECONDS)  # no backlog in the lag
                requests = Path(scratch) / f"level-{connections}.tsv"
                results[str(connections)] = _level(
                    server, positions, connections, duration, requests, numbers
                )
            return results
    finally:
        positions.close()
        ledger.close()


def _level(
    server: Server,
    positions: Positions,
    connections: int,
    duration: float,
    requests: Path,
    numbers: range,
) -> dict[str, Any]:
    """One level: wrk posts the payments `numbers` (at most) for `duration` seconds."""
    count = write_requests(requests, signed(numbers))
    before = last_seq(positions)
    with LagSampler(positions) as sampler:
        summary = run_wrk(f"{server.base_url}{ROUTE}", requests, count, connections, duration)
        drained = wait_inbox_drained(positions, CATCH_UP_TIMEOUT_SECONDS)
        catch_up = drained + positions.wait_caught_up(CATCH_UP_TIMEOUT_SECONDS)
    rows = deliveries_after(positions, before)
    applied = [r for r in rows if r["outcome"] == "applied" and r["position"] is not None]
    lag = sampler.lags([(r["received"], int(r["position"])) for r in applied])
    stats = lag.get(STATS_VIEW, {})
    return {
        **_acknowledged(summary),
        "stored": len(rows),
        "not_applied": len(rows) - len(applied),  # failed, parked, or not found applied
        **_applied(applied),
        "stats_lag_p50_ms": stats.get("p50_ms", "-"),
        "stats_lag_p99_ms": stats.get("p99_ms", "-"),
        "lag": lag,
        "inbox_drain_after_load_s": round(drained, 3),
        "catch_up_after_load_s": round(catch_up, 3),
    }


def _acknowledged(summary: dict[str, Any]) -> dict[str, Any]:
    """wrk's side: what was sent and answered `accepted`, per second of wrk's run."""
    seconds = summary["duration_us"] / 1e6
    sockets = sum(summary[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "deliveries_per_s": round(summary["accepted"] / seconds, 1) if seconds else 0.0,
        "acknowledged": summary["accepted"],
        "sent": summary["sent"],
        "wrk_seconds": round(seconds, 3),
        "errors": summary["failed"] + sockets,  # any answer but 200 accepted, or no answer
        "duplicates": summary["duplicate"],  # an event sent twice: the script's bug
        "non_2xx": summary["status"],
        "socket_errors": sockets,
        "p50_ms": summary["p50_us"] / 1000,
        "p99_ms": summary["p99_us"] / 1000,
        "max_ms": summary["max_us"] / 1000,
    }


def _applied(applied: list[dict[str, Any]]) -> dict[str, Any]:
    """Deliveries applied ÷ (first received → last processed): sustained until drained."""
    if not applied:
        return {"applied": 0, "applied_per_s": 0.0}
    span = max(r["processed"] for r in applied) - min(r["received"] for r in applied)
    return {
        "applied": len(applied),
        "applied_per_s": round(len(applied) / span, 1) if span > 0 else 0.0,
        "applied_seconds": round(span, 3),
    }
