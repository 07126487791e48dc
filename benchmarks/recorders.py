"""Before/after runs of the recorder change: `--recorder library` puts the library's own
PostgreSQL recorder back, in this process and in the served app.

The choice travels in LEDGER_BENCH_RECORDER so that subprocesses make the same one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ledger.settings import Settings

ENV = "LEDGER_BENCH_RECORDER"
LIBRARY_TOPIC = "eventsourcing.postgres:PostgresApplicationRecorder"
CHOICES = ("ledger", "library")


def chosen() -> str:
    return os.environ.get(ENV, "ledger")


class LibraryRecorderSettings(Settings):
    """The app's settings with the library's application recorder on PostgreSQL."""

    def eventsourcing_env(self) -> dict[str, str]:
        env = super().eventsourcing_env()
        if self.is_postgres:
            env["APPLICATION_RECORDER_TOPIC"] = LIBRARY_TOPIC
        return env


def settings_for(url: str | None = None, **values: Any) -> Settings:
    """Settings for a benchmark's own ledger (no .env file: the run must not depend on one)."""
    cls = LibraryRecorderSettings if chosen() == "library" else Settings
    if url is not None:
        values["database_url"] = url
    return cls(_env_file=None, **values)


def serve_command(port: int, projections: bool) -> list[str]:
    """`ledger serve`, or this module's equivalent of it when the recorder is swapped."""
    module = "benchmarks.recorders" if chosen() == "library" else "api.cli"
    args = [sys.executable, "-m", module, "serve", "--port", str(port)]
    return args if projections else [*args, "--no-projections"]


def _serve_with_library_recorder(argv: list[str]) -> None:
    """What `ledger serve` does (api/cli.py), with LibraryRecorderSettings."""
    import logging

    import uvicorn

    from api.app import create_app

    port = int(argv[argv.index("--port") + 1])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = LibraryRecorderSettings(_env_file=None)
    app = create_app(settings, run_projections="--no-projections" not in argv)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


if __name__ == "__main__":
    _serve_with_library_recorder(sys.argv[1:])
