"""Before/after runs of the recorder changes, in this process and in the served app:
`--recorder library` puts the library's own PostgreSQL recorder back, `--recorder ungrouped`
keeps ours but appends each save alone (no group commit).

The choice travels in LEDGER_BENCH_RECORDER so that subprocesses make the same one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent

from ledger.settings import Settings
from store.pg_recorder import OneRoundTripRecorder

ENV = "LEDGER_BENCH_RECORDER"
TOPICS = {
    "library": "eventsourcing.postgres:PostgresApplicationRecorder",
    "ungrouped": "benchmarks.recorders:UngroupedRecorder",
}
CHOICES = ("ledger", *TOPICS)


class UngroupedRecorder(OneRoundTripRecorder):
    """Ours without group commit: every save is its own statement."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[int] | None:
        return self._append(self._rows(stored_events)) if stored_events else None


def chosen() -> str:
    return os.environ.get(ENV, "ledger")


class SwappedRecorderSettings(Settings):
    """The app's settings with the chosen application recorder on PostgreSQL."""

    def eventsourcing_env(self) -> dict[str, str]:
        env = super().eventsourcing_env()
        if self.is_postgres:
            env["APPLICATION_RECORDER_TOPIC"] = TOPICS[chosen()]
        return env


def settings_for(url: str | None = None, **values: Any) -> Settings:
    """Settings for a benchmark's own ledger (no .env file: the run must not depend on one)."""
    cls = SwappedRecorderSettings if chosen() in TOPICS else Settings
    if url is not None:
        values["database_url"] = url
    return cls(_env_file=None, **values)


def serve_command(port: int, projections: bool) -> list[str]:
    """`ledger serve`, or this module's equivalent of it when the recorder is swapped."""
    module = "benchmarks.recorders" if chosen() in TOPICS else "api.cli"
    args = [sys.executable, "-m", module, "serve", "--port", str(port)]
    return args if projections else [*args, "--no-projections"]


def _serve_with_swapped_recorder(argv: list[str]) -> None:
    """What `ledger serve` does (api/cli.py), with SwappedRecorderSettings."""
    import logging

    import uvicorn

    from api.app import create_app

    port = int(argv[argv.index("--port") + 1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = SwappedRecorderSettings(_env_file=None)
    app = create_app(settings, run_projections="--no-projections" not in argv)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    _serve_with_swapped_recorder(sys.argv[1:])
