"""The `ledger` command."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from ledger.settings import Settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Event-sourced payment ledger")


@cli.callback()
def _group() -> None:
    """Keeps `ledger serve` a subcommand even while it is the only one."""


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Run the HTTP API on the configured store (SQLite file by default)."""
    from api.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
