"""Ledger append: `PaymentLedger` commands (initiate, then complete) from N threads."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from benchmarks.measure import Operation, Run, run_concurrently, summary_ms
from benchmarks.orders import now, order
from benchmarks.recorders import settings_for
from benchmarks.stores import Store
from ledger.application import PaymentLedger

# initiate saves Initiated and the order's Claimed; complete saves Completed and the
# trainer's notification Sent.
EVENTS_PER_PAYMENT = 4
COMMITS_PER_PAYMENT = 2


def pay_once(ledger: PaymentLedger, prefix: str, counter: itertools.count[int]) -> Operation:
    lock = threading.Lock()

    def pay() -> int | None:
        with lock:  # itertools.count is not documented as thread-safe
            n = next(counter)
        created = ledger.initiate(order(prefix, n))
        done = ledger.complete(created.payment_id, f"pi_{n}", "card", now())
        return done.position

    return pay


def run_append(
    store: Store, concurrency: list[int], duration: float, label: str = "append"
) -> dict[str, Any]:
    """Payments, commits and events per second at each concurrency (one shared ledger, as in
    `ledger serve`)."""
    ledger = PaymentLedger(env=settings_for(store.fresh(label)).eventsourcing_env())
    counter = itertools.count()
    try:
        results = {}
        for n in concurrency:
            results[str(n)] = _row(
                run_concurrently(n, duration, lambda _: pay_once(ledger, label, counter))
            )
        return results
    finally:
        ledger.close()


def _row(run: Run) -> dict[str, Any]:
    return {
        "payments_per_s": round(run.per_second, 1),
        "commits_per_s": round(run.per_second * COMMITS_PER_PAYMENT, 1),
        "events_per_s": round(run.per_second * EVENTS_PER_PAYMENT, 1),
        "errors": run.errors,
        **{f"payment_{k}": v for k, v in summary_ms(run.latencies).items()},
    }
