"""`ledger serve` in a subprocess, on real sockets, for the HTTP benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.orders import WEBHOOK_SECRET
from benchmarks.recorders import serve_command

ADMIN_TOKEN = "bench-admin-token"
START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Server:
    base_url: str
    log_path: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Subprocesses run in a scratch directory; this makes `benchmarks` importable there too.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)


def server_env(database_url: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ADMIN_TOKEN": ADMIN_TOKEN,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "LEDGER_SECRET_KEY": "bench-signing-key",
    }


@contextmanager
def serve(
    database_url: str,
    projections: bool = True,
    leader_apart: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """`ledger serve` (the same command users run), stopped on exit; its log goes to a file.
    `leader_apart`: `ledger serve --no-projections` beside `ledger project` (PostgreSQL);
    `env`: more settings (the outbox's SMTP server, say)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="ledger-serve-")  # no stray .env is read
    log_path = os.path.join(workdir, "serve.log")
    commands = [serve_command(port, projections and not leader_apart)]
    if leader_apart:
        commands.append([sys.executable, "-m", "api.cli", "project"])
    with open(log_path, "wb") as log:
        processes = [
            subprocess.Popen(
                args,
                env={**server_env(database_url), **(env or {})},
                cwd=workdir,
                stdout=log,
                stderr=log,
            )
            for args in commands
        ]
    try:
        server = Server(f"http://127.0.0.1:{port}", log_path)
        _wait_ready(server, processes[0])
        yield server
    finally:
        for process in processes:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ledger serve exited; see {server.log_path}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"ledger serve did not start in time; see {server.log_path}")


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
