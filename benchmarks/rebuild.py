"""`ledger rebuild` as users run it: a subprocess, timed, with its peak memory."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.server import server_env

REPLAYED = re.compile(r"^(\w+): (\d+) events replayed", re.MULTILINE)
# GNU time reports the command's own peak RSS. The benchmark's own rusage cannot: a child
# forked from this (by then large) process inherits its high-water mark across exec.
TIME = shutil.which("time", path="/usr/bin:/bin")


def run_rebuild(database_url: str, events: int) -> dict[str, Any]:
    """Wall time (start-up and compaction included), events/s over the whole command,
    and the command's peak RSS. The views are replayed in one pass (projections/replay.py),
    so there is no time per projection."""
    workdir = Path(tempfile.mkdtemp(prefix="ledger-rebuild-"))
    rss_file = workdir / "peak_rss_kb"
    command = [sys.executable, "-m", "api.cli", "rebuild"]
    if TIME:
        command = [TIME, "-o", str(rss_file), "-f", "%M", *command]
    t0 = time.perf_counter()
    result = subprocess.run(
        command,
        env=server_env(database_url),
        cwd=workdir,
        stdout=subprocess.DEVNULL,  # the progress bar
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(f"ledger rebuild failed: {result.stderr[-2000:]}")
    replayed = {int(m.group(2)) for m in REPLAYED.finditer(result.stderr)}
    if replayed != {events}:
        raise RuntimeError(f"ledger rebuild replayed {replayed} events, expected {events}")
    peak = int(rss_file.read_text().split()[-1]) / 1024 if TIME else None
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed, 1),
        "peak_rss_mb": round(peak, 1) if peak is not None else "unknown (no /usr/bin/time)",
    }
