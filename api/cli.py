"""The `ledger` command."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from ledger.settings import Settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Event-sourced payment ledger")
token_cli = typer.Typer(no_args_is_help=True, help="Issue bearer tokens")
cli.add_typer(token_cli, name="token")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    projections: Annotated[
        bool, typer.Option(help="also run the projection runners in this process")
    ] = True,
) -> None:
    """Run the HTTP API (and the projections) on the configured store."""
    from api.app import create_app

    _logging()
    app = create_app(Settings(), run_projections=projections)
    uvicorn.run(app, host=host, port=port, log_level="info")


@cli.command()
def project() -> None:
    """Run only the projection runners, until interrupted."""
    from projections.runtime import ReadModels

    _logging()
    read_models = ReadModels(Settings())
    typer.echo(f"projections running: {', '.join(read_models.views)} (Ctrl-C stops)", err=True)
    read_models.run_forever()


@cli.command()
def rebuild(
    projection: Annotated[
        list[str] | None, typer.Option("--projection", help="only this projection (repeatable)")
    ] = None,
) -> None:
    """Drop the read models and rebuild them from the event history.

    Stop `ledger serve`/`ledger project` first: a running runner would race the rebuild.
    """
    from ledger.application import PaymentLedger
    from projections.runtime import PROJECTIONS, ReadModels

    settings = Settings()
    names = projection or list(PROJECTIONS)
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise typer.BadParameter(f"unknown projection(s) {unknown}; known: {sorted(PROJECTIONS)}")
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    read_models = ReadModels(settings)
    total = ledger.recorder.max_notification_id() or 0
    try:
        for name in names:
            with typer.progressbar(length=total, label=f"{name:>16}") as bar:
                count = read_models.rebuild(name, ledger, bar.update)
            typer.echo(f"{name}: {count} events replayed", err=True)
    finally:
        read_models.close()
        ledger.close()


@token_cli.command("trainer")
def token_trainer(
    trainer_id: str,
    days: Annotated[int, typer.Option(help="validity in days")] = 365,
) -> None:
    """Print a bearer token for TRAINER_ID, signed with LEDGER_SECRET_KEY."""
    from api.auth import issue_trainer_token

    try:
        typer.echo(issue_trainer_token(Settings(), trainer_id, days))
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
