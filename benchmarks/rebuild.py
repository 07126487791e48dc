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

REPLAYED = re.compile(r"^(\w+): (\d+) events replayed")
# GNU time reports the command's own peak RSS. The benchmark's own rusage cannot: a child
# forked from this (by then large) process inherits its high-water mark across exec.
TIME = shutil.which("time", path="/usr/bin:/bin")


def run_rebuild(database_url: str, events: int) -> dict[str, Any]:
    """Wall time (start-up included), events/s over the whole command, seconds per
    projection, and the command's peak RSS."""
    workdir = Path(tempfile.mkdtemp(prefix="ledger-rebuild-"))
    rss_file = workdir / "peak_rss_kb"
    command = [sys.executable, "-m", "api.cli", "rebuild"]
    if TIME:
        command = [TIME, "-o", str(rss_file), "-f", "%M", *command]
    t0 = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=server_env(database_url),
        cwd=workdir,
        stdout=subprocess.DEVNULL,  # the progress bars
        stderr=subprocess.PIPE,
        text=True,
    )
    projections, output = _follow(process, t0)
    elapsed = time.perf_counter() - t0
    if process.returncode != 0:
        raise RuntimeError(f"ledger rebuild failed: {''.join(output)[-2000:]}")
    peak = int(rss_file.read_text().split()[-1]) / 1024 if TIME else None
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "events": events,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed, 1),
        "seconds_per_projection": projections,
        "peak_rss_mb": round(peak, 1) if peak is not None else "unknown (no /usr/bin/time)",
    }


def _follow(process: subprocess.Popen[str], t0: float) -> tuple[dict[str, float], list[str]]:
    """Time each projection from the command's own 'NAME: N events replayed' lines."""
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
    process.wait()
    return projections, output
