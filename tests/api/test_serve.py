"""`ledger serve` as a user starts it: a real process, real sockets, the default SQLite file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledger_command() -> list[str]:
    script = shutil.which("ledger", path=str(Path(sys.executable).parent))
    assert script, "the `ledger` console script is not installed beside this Python"
    return [script]


def start_server(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "STRIPE_", "TOSS_"))}
    process = subprocess.Popen(
        [*ledger_command(), "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"ledger serve exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("ledger serve did not become healthy within 30 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def test_serve_runs_on_the_embedded_default_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    port = free_port()
    body = {
        "order_id": "order-serve-1",
        "booking_id": "b-1",
        "customer_id": "c-1",
        "customer_name": "Park",
        "trainer_id": "t-1",
        "booking_date": "2026-12-24",
        "amount": 30000,
        "currency": "KRW",
        "provider": "toss",
    }
    server = start_server(tmp_path, port)
    try:
        created = httpx.post(f"http://127.0.0.1:{port}/api/payments", json=body)
        assert created.status_code == 201
    finally:
        stop_server(server)
    assert (tmp_path / "ledger.db").exists(), "the default store is ./ledger.db"

    server = start_server(tmp_path, port)
    try:
        again = httpx.post(f"http://127.0.0.1:{port}/api/payments", json=body)
        conflict = httpx.post(f"http://127.0.0.1:{port}/api/payments", json={**body, "amount": 1})
    finally:
        stop_server(server)
    assert again.status_code == 200
    assert again.json()["payment_id"] == created.json()["payment_id"]
    assert conflict.status_code == 409
