"""Timing primitives: run an operation from N threads for a while, summarise latencies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Operation = Callable[[], Any]
# Builds one worker's operation (so each worker can own its connection or client).
WorkerFactory = Callable[[int], Operation]


@dataclass
class Run:
    """What N workers did in `elapsed` seconds: each operation's latency, and its result."""

    workers: int
    elapsed: float
    latencies: list[float] = field(default_factory=list)
    results: list[tuple[float, Any]] = field(default_factory=list)  # (finished at, result)
    errors: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values): simple, and exact on small samples."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p99/max of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 3),
        "p99_ms": round(percentile(values, 99) * 1000, 3),
        "max_ms": round(max(values, default=0.0) * 1000, 3),
        "samples": len(values),
    }


def run_concurrently(
    workers: int, duration: float, factory: WorkerFactory, limit: int | None = None
) -> Run:
    """Every worker repeats its operation until `duration` has passed (or `limit` operations
    were started in all); an operation returning StopIteration ends that worker early."""
    ops = [factory(i) for i in range(workers)]  # set-up is not timed
    run = Run(workers=workers, elapsed=0.0)
    lock = threading.Lock()
    started = threading.Barrier(workers + 1)
    budget = [limit if limit is not None else -1]

    def take() -> bool:
        with lock:
            if budget[0] == 0:
                return False
            budget[0] -= 1
            return True

    def work(op: Operation) -> None:
        started.wait()
        deadline = begin[0] + duration
        while time.perf_counter() < deadline and take():
            t0 = time.perf_counter()
            try:
                result = op()
            except Exception:
                with lock:
                    run.errors += 1
                continue
            t1 = time.perf_counter()
            if result is StopIteration:
                return
            with lock:
                run.latencies.append(t1 - t0)
                run.results.append((t1, result))

    begin = [0.0]
    threads = [threading.Thread(target=work, args=(op,), daemon=True) for op in ops]
    for thread in threads:
        thread.start()
    begin[0] = time.perf_counter()
    started.wait()
    for thread in threads:
        thread.join()
    run.elapsed = time.perf_counter() - begin[0]
    return run


def timed(op: Operation, repeat: int) -> list[float]:
    """Latencies of `repeat` sequential calls."""
    latencies = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        op()
        latencies.append(time.perf_counter() - t0)
    return latencies
