"""Sections 5 to 7 over a growing history: load (bulk, genuine events), `ledger rebuild`,
dashboard reads over HTTP, and the naive stats, at each size side by side."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.history import load_fixed_statement, load_history_in_parallel
from benchmarks.positions import Positions
from benchmarks.reads import measure_naive, measure_reads
from benchmarks.rebuild import run_rebuild
from benchmarks.recorders import settings_for
from benchmarks.server import serve
from benchmarks.stores import Store
from ledger.application import PaymentLedger

PREFIX = "hist"


def run_history(
    store: Store, sizes: list[int], read_repeat: int, naive_repeat: int
) -> dict[str, dict[str, Any]]:
    url = store.fresh("history")
    # Opening the ledger creates the event store before the loader's processes share it.
    ledger = PaymentLedger(env=settings_for(url).eventsourcing_env())
    out: dict[str, dict[str, Any]] = {
        "load": {}, "rebuild": {}, "reads_right_after_rebuild": {}, "reads": {}, "naive": {},
    }  # fmt: skip
    loaded = events = 0
    try:
        events = load_fixed_statement(ledger)
        for size in sizes:
            t0 = time.perf_counter()
            added = load_history_in_parallel(url, PREFIX, loaded, size)
            elapsed = time.perf_counter() - t0
            events += added
            out["load"][str(size)] = {
                "payments": size, "events": events, "added_events": added,
                "seconds": round(elapsed, 3), "events_per_s": round(added / elapsed, 1),
            }  # fmt: skip
            loaded = size
            out["rebuild"][str(size)] = run_rebuild(url, events)
            out["reads_right_after_rebuild"][str(size)], out["reads"][str(size)] = _reads(
                url, read_repeat
            )
            out["naive"][str(size)] = measure_naive(url, naive_repeat)
    finally:
        ledger.close()
    return out


def _reads(url: str, repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dashboard reads straight after the rebuild, then once the tables are vacuumed
    and analysed (what users see once autovacuum has passed). Served without runners: the
    projections were just rebuilt, so this measures the reads alone."""
    positions = Positions(url)
    try:
        with serve(url, projections=False) as server:
            before = measure_reads(server, repeat)
            settle_seconds = positions.settle()
            after = measure_reads(server, repeat)
    finally:
        positions.close()
    after["settle_seconds"] = round(settle_seconds, 2)
    return before, after
