"""One run: every section on each store, with the ratios to the raw baseline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from benchmarks.append import run_append
from benchmarks.baseline import run_baseline
from benchmarks.config import Sizes
from benchmarks.history_suite import run_history
from benchmarks.outbox import run_outbox
from benchmarks.stores import Store
from benchmarks.webhooks import run_webhooks

log = logging.getLogger("benchmarks")
SECTIONS = ("baseline", "append", "webhooks", "webhooks_apart", "outbox", "history")
RATIOS = (
    ("append", "commits_per_s", "ratio_to_baseline"),
    ("webhooks", "deliveries_per_s", "ratio_to_baseline"),
    ("webhooks", "applied_per_s", "applied_ratio_to_baseline"),
    ("webhooks_apart", "deliveries_per_s", "ratio_to_baseline"),
    ("webhooks_apart", "applied_per_s", "applied_ratio_to_baseline"),
)


def run_store(
    store: Store,
    sizes: Sizes,
    sections: tuple[str, ...] = SECTIONS,
    out: dict[str, Any] | None = None,
    checkpoint: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Fill `out` section by section, calling `checkpoint` after each."""
    levels = list(sizes.concurrency)
    steps: dict[str, Callable[[], Any]] = {
        "baseline": lambda: run_baseline(store, levels, sizes.duration),
        "append": lambda: run_append(store, levels, sizes.duration),
        "webhooks": lambda: run_webhooks(store, levels, sizes.duration, sizes.webhook_cap),
        "webhooks_apart": lambda: run_webhooks(
            store, levels, sizes.duration, sizes.webhook_cap, leader_apart=True
        ),
        "outbox": lambda: run_outbox(store, sizes.outbox_messages),
        "history": lambda: run_history(
            store, list(sizes.history[store.backend]), sizes.read_repeat, sizes.naive_repeat
        ),
    }
    out = {} if out is None else out
    for name in sections:
        t0 = time.perf_counter()
        log.info("%s: %s ...", store.backend, name)
        out[name] = steps[name]()
        out.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
        add_ratios(out)
        checkpoint()
    return out


def add_ratios(out: dict[str, Any]) -> None:
    """Each level's commits (one per command or delivery, acknowledged or applied) ÷ raw
    commits at that level."""
    baseline = out.get("baseline", {})
    for section, key, ratio in RATIOS:
        for level, row in out.get(section, {}).items():
            raw = baseline.get(level, {}).get("commits_per_s")
            if isinstance(row, dict) and key in row and raw:
                row[ratio] = round(row[key] / raw, 3)
    # A read's p50 in raw commits (p50, one connection) of the same run: comparable across
    # runs on a machine whose speed swings from day to day.
    raw_ms = baseline.get("1", {}).get("p50_ms")
    for reads in out.get("history", {}).get("reads", {}).values():
        for row in reads.values():
            if isinstance(row, dict) and "p50_ms" in row and raw_ms:
                row["ratio_to_raw_commit"] = round(row["p50_ms"] / raw_ms, 1)
