"""wrk as the load generator: Python clients cap the rate they can offer well below what
`ledger serve` takes. benchmarks/wrk_webhooks.lua posts a file of pre-signed requests."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("wrk_webhooks.lua")
MAX_THREADS = 2  # the machine's two cores, shared with the server being measured
MARK = "WRK_JSON "


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package first if it is missing (as .ci/run does)."""
    found = shutil.which("wrk")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get did not install it")
    return found


def write_requests(path: Path, requests: Iterable[tuple[str, bytes]]) -> int:
    """One "signature<TAB>body" line per request (bodies are one-line JSON); returns count."""
    count = 0
    with path.open("wb") as f:
        for signature, body in requests:
            assert b"\n" not in body and b"\t" not in signature.encode()
            f.write(signature.encode() + b"\t" + body + b"\n")
            count += 1
    return count


def run_wrk(url: str, requests: Path, count: int, connections: int, duration: float) -> Any:
    """Post each request of the file once, for at most `duration` seconds (wrk counts whole
    seconds). Once every thread's share is answered, an interrupt ends the run early, so
    wrk's duration is the time the requests took, not the time allowed."""
    threads = max(1, min(connections, MAX_THREADS, count))
    args = [ensure_wrk(), "-t", str(threads), "-c", str(connections),
            "-d", f"{max(1, math.ceil(duration))}s", "--timeout", "60s",
            "-s", str(SCRIPT), url, "--", str(requests), str(threads)]  # fmt: skip
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        exhausted, other = 0, []
        for line in process.stderr:  # EOF when wrk exits (its duration is over)
            if line.strip() == "exhausted":
                exhausted += 1
                if exhausted == threads:
                    process.send_signal(signal.SIGINT)  # wrk then reports and exits
            else:
                other.append(line)
        out = process.stdout.read()
    for line in out.splitlines():
        if line.startswith(MARK):
            return json.loads(line.removeprefix(MARK))
    raise RuntimeError(f"wrk gave no summary (exit {process.returncode}): {out}{''.join(other)}")
