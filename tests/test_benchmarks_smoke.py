"""The benchmark script runs end to end and reports every section; timings are not judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Number
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("baseline", "append", "webhooks", "outbox", "history")
HISTORY_PARTS = ("load", "rebuild", "reads_right_after_rebuild", "reads", "naive")
# Every read, settlement's included (the trial balance, one trainer's statement).
READS = ("stats", "payments_completed_stripe", "payments_trainer_failed", "balances", "statement")


def numbers_in(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, Number):
        return [float(value)]  # type: ignore[arg-type]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    return []


# The leader in a process of its own (`ledger project`) needs PostgreSQL.
LAYOUTS = {"postgres": ("webhooks", "webhooks_apart"), "sqlite": ("webhooks",)}


def check_webhooks(webhooks: dict[str, Any]) -> None:
    # Every delivery wrk sent acknowledged and applied, each once: a broken section still
    # has figures.
    counts = ("errors", "duplicates", "not_applied")
    assert [webhooks[k] for k in counts] == [0, 0, 0], webhooks
    assert webhooks["acknowledged"] > 0 and webhooks["applied"] == webhooks["sent"]
    assert webhooks["applied_ratio_to_baseline"] > 0
    # The stats view showed every applied delivery while it was sampled.
    assert webhooks["lag"]["revenue"]["samples"] == webhooks["applied"], webhooks["lag"]


def test_quick_benchmark_reports_every_section_on_both_stores(
    tmp_path: Path, postgres_available: bool
) -> None:
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable (set CI=1 to make this an error)")
    out = tmp_path / "bench.json"
    env = {**os.environ, "LEDGER_BENCH_POSTGRES_URL": POSTGRES_URL}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", "tiny", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["meta"]["nproc"] >= 1
    for store in ("postgres", "sqlite"):
        for section in SECTIONS:
            assert numbers_in(results[store][section]), f"{store} {section} has no figures"
        for level in ("1", "4", "16"):
            assert results[store]["baseline"][level]["commits_per_s"] > 0
            assert results[store]["append"][level]["ratio_to_baseline"] > 0
            for layout in LAYOUTS[store]:
                check_webhooks(results[store][layout][level])
        # Every completion's e-mail reached the SMTP server, the lag trickle's included.
        told = results[store]["outbox"]
        assert told["messages_per_s"] > 0 and told["raw_per_s"] > 0, told
        assert told["lag_samples"] == 20 and told["lag_p99_ms"] >= told["lag_p50_ms"] > 0, told
        for part in HISTORY_PARTS:
            assert numbers_in(results[store]["history"][part]), f"{store} history {part} is empty"
        for reads in results[store]["history"]["reads"].values():
            for read in READS:
                assert reads[read]["p50_ms"] > 0, f"{store} read {read}: {reads[read]}"
    assert results["sqlite"]["webhooks_apart"] == {
        "skipped": "one process serves and leads on SQLite"
    }
    assert "ingestion" in done.stdout  # the printed table
