"""What the figures came from: cores, memory, versions, the code's commit, the load."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
from dataclasses import asdict
from typing import Any

from benchmarks.config import Sizes
from benchmarks.recorders import settings_for
from benchmarks.stores import postgres_version


def _mem_total_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def describe(postgres_url: str | None, sizes: Sizes) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "sizes": asdict(sizes),
        "nproc": os.cpu_count(),
        "mem_total_gb": _mem_total_gb(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty_files": len(_git("status", "--porcelain").splitlines()),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }
    if postgres_url:
        meta["postgresql"] = postgres_version(postgres_url)
        meta["recorder_topic"] = (
            settings_for(postgres_url)
            .eventsourcing_env()
            .get("APPLICATION_RECORDER_TOPIC", "eventsourcing.postgres (library default)")
        )
    return meta
