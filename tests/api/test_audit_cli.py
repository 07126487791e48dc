"""`ledger verify`, `ledger export` and the rebuild guard, run as an operator runs them:
a subprocess with LEDGER_DATABASE_URL set, after the service has chained the history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.application import PaymentLedger
from ledger.settings import Settings
from projections.audit_chain import NAME as CHAIN
from projections.audit_log import AuditLog
from projections.runtime import ReadModels
from tests.integration.test_audit_chain import WAIT_SECONDS, positions_of, scripted_run, tamper

ROOT = Path(__file__).resolve().parents[2]


def ledger_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def chained(database_url: str) -> list[int]:
    """A scripted run, chained by the projections, which are then stopped; its positions."""
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    read_models = ReadModels(settings)
    try:
        read_models.start()
        scripted_run(ledger)
        read_models.wait(ledger.recorder.max_notification_id(), WAIT_SECONDS, names=(CHAIN,))
        return positions_of(ledger)
    finally:
        read_models.close()
        ledger.close()


def export_to(database_url: str, path: Path, *args: str) -> list[dict[str, object]]:
    result = ledger_cli(database_url, "export", *args)
    assert result.returncode == 0, result.stderr
    path.write_text(result.stdout, encoding="utf-8")
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_verify_exits_0_on_an_intact_history(database_url: str, chained: list[int]) -> None:
    result = ledger_cli(database_url, "verify")
    assert result.returncode == 0, result.stderr
    assert f"ok: {len(chained)} events checked" in result.stdout


@pytest.mark.parametrize("kind", ["alter", "delete", "swap"])
def test_verify_exits_non_zero_naming_the_first_tampered_position(
    database_url: str, chained: list[int], kind: str
) -> None:
    bad = tamper(database_url, kind, chained)
    result = ledger_cli(database_url, "verify")
    assert result.returncode == 1
    assert f"first bad event at position {bad}:" in result.stderr


def test_export_writes_every_event_in_order_as_the_api_shows_them(
    database_url: str, chained: list[int], tmp_path: Path
) -> None:
    items = export_to(database_url, tmp_path / "events.jsonl")
    assert [i["position"] for i in items] == chained
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger, read_models = PaymentLedger(env=settings.eventsourcing_env()), ReadModels(settings)
    try:
        assert items == AuditLog(ledger, read_models.audit_chain).page(0, 100)
    finally:
        read_models.close()
        ledger.close()
    tail = export_to(database_url, tmp_path / "tail.jsonl", "--after", str(chained[4]))
    assert [i["position"] for i in tail] == chained[5:]


def test_an_export_verifies_offline_and_a_one_byte_edit_fails(
    database_url: str, chained: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    export_to(database_url, path)
    offline = "sqlite:///" + str(tmp_path / "no-such-dir" / "none.db")  # no database needed
    result = ledger_cli(offline, "verify", "--file", str(path))
    assert result.returncode == 0, result.stderr
    assert f"ok: {len(chained)} events checked" in result.stdout
    assert not (tmp_path / "no-such-dir").exists()

    original = path.read_bytes()
    path.write_bytes(original.replace(b'"amount":5000', b'"amount":5001', 1))
    assert path.read_bytes() != original
    result = ledger_cli(offline, "verify", "--file", str(path))
    refund = next(i for i, line in enumerate(original.splitlines()) if b"Refunded" in line)
    assert result.returncode == 1
    assert f"first bad event at position {chained[refund]}:" in result.stderr


def test_an_export_edit_that_breaks_the_json_fails_too(
    database_url: str, chained: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    export_to(database_url, path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"\xff" + lines[1][1:]  # not UTF-8 any more
    path.write_bytes(b"".join(lines))
    result = ledger_cli(database_url, "verify", "--file", str(path))
    assert result.returncode == 1
    assert "line 2" in result.stderr


def test_rebuild_leaves_the_audit_chain_alone_unless_told_explicitly(
    database_url: str, chained: list[int]
) -> None:
    bad = tamper(database_url, "alter", chained)
    assert ledger_cli(database_url, "rebuild").returncode == 0
    still = ledger_cli(database_url, "verify")
    assert still.returncode == 1 and f"position {bad}" in still.stderr  # not laundered

    refused = ledger_cli(database_url, "rebuild", "--projection", CHAIN)
    assert refused.returncode == 2
    assert "--reset-audit-chain" in refused.stderr

    reset = ledger_cli(database_url, "rebuild", "--projection", CHAIN, "--reset-audit-chain")
    assert reset.returncode == 0, reset.stderr
    assert ledger_cli(database_url, "verify").returncode == 0  # why it is guarded
