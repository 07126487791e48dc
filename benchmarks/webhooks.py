"""Webhook end to end: signed `checkout.session.completed` deliveries over HTTP to
`ledger serve`, from N concurrent clients; and, under that load, the projection lag.

A delivery is acknowledged (`accepted`) once stored in the webhook inbox and applied after
by its processor (api/inbox.py): the lag of a view is from the answer until the view holds
the position the delivery's application appended, read from the inbox's row."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from benchmarks.measure import Operation, Run, run_concurrently, summary_ms
from benchmarks.orders import order, session_completed, stripe_signature
from benchmarks.positions import LagSampler, Positions
from benchmarks.recorders import settings_for
from benchmarks.server import Server, serve
from benchmarks.stores import Store
from ledger.application import PaymentLedger
from ledger.payment import Payment

ROUTE = "/api/webhooks/stripe"
PREFIX = "wh"
CATCH_UP_TIMEOUT_SECONDS = 300.0
SKIPPED = {"skipped": "route missing"}
WAITING_ONLY = " WHERE outcome IN ('accepted', 'retrying')"


def route_exists(server: Server) -> bool:
    """The contract answers 400 to a bad signature; 404/405 means no such route yet."""
    answer = httpx.post(
        f"{server.base_url}{ROUTE}", content=b"{}", headers={"Stripe-Signature": "t=1,v1=0"}
    )
    return answer.status_code not in (404, 405)


def create_pending(ledger: PaymentLedger, start: int, stop: int) -> None:
    """Initiated Stripe payments for the deliveries to complete (saved in bulk, untimed)."""
    for first in range(start, stop, 500):
        payments = [Payment(**vars(order(PREFIX, n))) for n in range(first, min(first + 500, stop))]
        ledger.save(*payments)


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


def applied_positions(positions: Positions) -> dict[str, int]:
    """Each applied delivery's id → the position its application appended."""
    sql = (
        f"SELECT delivery_id, position FROM {positions.table('webhook_inbox')}"
        " WHERE outcome = 'applied' AND position IS NOT NULL"
    )
    return {str(d): int(p) for d, p in positions.conn.execute(sql).fetchall()}


def deliverer(
    base_url: str, numbers: Iterator[int], lock: threading.Lock, clients: list[httpx.Client]
) -> Operation:
    client = httpx.Client(base_url=base_url, timeout=30)
    clients.append(client)

    def deliver() -> str:
        with lock:
            n = next(numbers)
        payload = session_completed(order(PREFIX, n), n)
        headers = {
            "Stripe-Signature": stripe_signature(payload),
            "content-type": "application/json",
        }
        answer = client.post(ROUTE, content=payload, headers=headers)
        body = answer.json()
        if answer.status_code != 200 or body.get("outcome") != "accepted":
            raise RuntimeError(f"delivery {n}: {answer.status_code} {answer.text[:200]}")
        return str(body["delivery_id"])  # acknowledged: stored, applied by the processor

    return deliver


def run_webhooks(store: Store, concurrency: list[int], duration: float, cap: int) -> dict[str, Any]:
    """Per concurrency: deliveries/s, latency, and each view's lag behind the answered writes."""
    url = store.fresh("webhooks")
    ledger = PaymentLedger(env=settings_for(url).eventsourcing_env())
    positions = Positions(url)
    try:
        with serve(url) as server:
            if not route_exists(server):
                return dict(SKIPPED)
            return _levels(server, ledger, positions, concurrency, duration, cap)
    finally:
        positions.close()
        ledger.close()


def _levels(
    server: Server,
    ledger: PaymentLedger,
    positions: Positions,
    concurrency: list[int],
    duration: float,
    cap: int,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for i, workers in enumerate(concurrency):
        create_pending(ledger, i * cap, (i + 1) * cap)
        positions.wait_caught_up(CATCH_UP_TIMEOUT_SECONDS)  # no backlog in the lag figures
        results[str(workers)] = _level(
            server, positions, workers, duration, range(i * cap, (i + 1) * cap)
        )
    return results


def _level(
    server: Server, positions: Positions, workers: int, duration: float, numbers: range
) -> dict[str, Any]:
    """One concurrency level: deliver payments `numbers` (at most) for `duration` seconds."""
    pending, lock = iter(numbers), threading.Lock()
    clients: list[httpx.Client] = []
    with LagSampler(positions) as sampler:
        run = run_concurrently(
            workers,
            duration,
            lambda _: deliverer(server.base_url, pending, lock, clients),
            limit=len(numbers),
        )
        drained = wait_inbox_drained(positions, CATCH_UP_TIMEOUT_SECONDS)
        catch_up = drained + positions.wait_caught_up(CATCH_UP_TIMEOUT_SECONDS)
    for client in clients:
        client.close()
    applied = applied_positions(positions)
    writes = [(t, applied[d]) for t, d in run.results if d in applied]
    return {
        **_row(run),
        "not_applied": len(run.results) - len(writes),  # failed or a duplicate in the inbox
        "lag": sampler.lags(writes),
        "inbox_drain_after_load_s": round(drained, 3),
        "catch_up_after_load_s": round(catch_up, 3),
    }


def _row(run: Run) -> dict[str, Any]:
    return {
        "deliveries_per_s": round(run.per_second, 1),
        "errors": run.errors,
        **summary_ms(run.latencies),
    }
