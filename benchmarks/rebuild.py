"""`ledger rebuild` as users run it: a subprocess, timed, with its peak memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.server import server_env

REPLAYED = re.compile(r"^(\w+): (\d+) events replayed")


def run_rebuild(database_url: str, events: int) -> dict[str, Any]:
    """Wall time, events/s over the whole command, seconds per projection, and peak RSS
    (ru_maxrss of this very child, via wait4)."""
    t0 = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "rebuild"],
        env=server_env(database_url),
        cwd=tempfile.gettempdir(),
        stdout=subprocess.DEVNULL,  # the progress bars
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    projections: dict[str, float] = {}
    last, output = t0, []
    for line in process.stderr:
        output.append(line)
        match = REPLAYED.match(line.strip())
        if match:
            now = time.perf_counter()
            projections[match.group(1)] = round(now - last, 3)
            last = now
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    if process.returncode != 0:
        raise RuntimeError(f"ledger rebuild failed: {''.join(output)[-2000:]}")
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed, 1),
        "seconds_per_projection": projections,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
