"""How big each run is. `full` is the published one; `quick` and `tiny` check the script."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    name: str
    concurrency: tuple[int, ...]
    duration: float  # seconds per concurrency level (baseline, append, webhooks)
    # Pending payments (and signed deliveries) per webhook level: wrk stops early when they
    # run out, so at `full` they outlast 10 s at several thousand deliveries/s.
    webhook_cap: int
    history: dict[str, tuple[int, ...]]  # backend → payments loaded, growing
    read_repeat: int
    naive_repeat: int
    outbox_messages: int = 2_000  # completions told by e-mail (benchmarks/outbox.py)


SIZES = {
    # For the smoke test: every section runs and yields numbers; the numbers mean nothing.
    "tiny": Sizes("tiny", (1, 4, 16), 0.2, 40, {"postgres": (300,), "sqlite": (300,)}, 10, 1, 30),
    "quick": Sizes(
        "quick",
        (1, 4, 16),
        2.0,
        5_000,
        {"postgres": (2_000, 6_000), "sqlite": (2_000, 6_000)},
        50,
        3,
        500,
    ),
    # SQLite's history stops at 100k: the embedded store is for small deployments, and its
    # rebuild at 1M alone would take the run past its time budget.
    "full": Sizes(
        "full",
        (1, 4, 16),
        10.0,
        40_000,
        {"postgres": (100_000, 1_000_000), "sqlite": (10_000, 100_000)},
        200,
        3,
    ),
}
