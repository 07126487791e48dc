"""`ledger project` keeps the read models current from a separate process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ledger.application import PaymentLedger, PaymentOrder
from ledger.settings import Settings
from projections.runtime import ReadModels


def test_project_command_catches_up_and_resumes_after_restart(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    read_models = ReadModels(settings)  # views only: no runners in this process
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url}
    command = [str(Path(sys.executable).parent / "ledger"), "project"]

    def order(i: int) -> PaymentOrder:
        return PaymentOrder(f"o-{i}", "b", "c", "Kim", "t", "2026-12-01", 1000 + i, "KRW", "toss")

    def project_until_caught_up(position: int | None) -> None:
        runner = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        try:
            assert position is not None
            read_models.wait(position, timeout=30)
        finally:
            runner.send_signal(signal.SIGINT)
            runner.wait(timeout=30)

    try:
        project_until_caught_up(ledger.initiate(order(1)).position)
        # Written while no projector runs: the next run resumes from its tracked position.
        project_until_caught_up(ledger.initiate(order(2)).position)

        rows = read_models.payments_table.dump()
        assert sorted(r["order_id"] for r in rows) == ["o-1", "o-2"]
    finally:
        read_models.close()
        ledger.close()
