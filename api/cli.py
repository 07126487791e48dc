"""The `ledger` command."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import uvicorn

from ledger.settings import Settings
from ledger.transcoding import json_utf8

if TYPE_CHECKING:
    from api.deps import Services

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Event-sourced payment ledger")
token_cli = typer.Typer(no_args_is_help=True, help="Issue bearer tokens")
cli.add_typer(token_cli, name="token")


def _logging() -> None:
    # The same format as api/app.py LOG_FORMAT (not imported: `ledger` starts without the app).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    projections: Annotated[
        bool, typer.Option(help="also lead: projections, webhook inbox, outbox, reconciliation")
    ] = True,
    workers: Annotated[
        int, typer.Option(min=1, help="serving processes (PostgreSQL only); one of them leads")
    ] = 1,
) -> None:
    """Run the HTTP API (and the leader's jobs) on the configured store."""
    from api.app import create_app
    from api.leader import LEAD_ENV

    _logging()
    settings = Settings()
    if workers == 1:
        uvicorn.run(create_app(settings, run_projections=projections), host=host, port=port)
        return
    if not settings.is_postgres:
        raise typer.BadParameter(
            "needs PostgreSQL: on SQLite one process serves", param_hint="--workers"
        )
    os.environ[LEAD_ENV] = "1" if projections else "0"  # read by each worker's factory
    uvicorn.run("api.app:app_from_environment", factory=True, host=host, port=port, workers=workers)


@cli.command()
def project() -> None:
    """Run the leader's jobs only: the projections, the webhook inbox's processor, the
    outbox's worker and the reconciliation loop, until interrupted."""
    from api.app import build_services
    from api.leader import Leadership

    # Handlers first, before anything slow: a SIGINT during start-up must not be lost (as a
    # KeyboardInterrupt some library swallows), a process a script started in the
    # background inherits SIGINT ignored, and SIGTERM is what `docker stop` sends.
    stopped = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopped.set())
    _logging()
    services = build_services(Settings())
    leadership = Leadership(services)  # on PostgreSQL, only while no other process leads
    typer.echo(f"projections: {', '.join(services.read_models.views)} (Ctrl-C stops)", err=True)
    try:
        if not stopped.is_set():
            leadership.start()
        while not stopped.wait(1.0):
            pass
    finally:
        leadership.stop()
        _close(services)


@cli.command()
def reconcile(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="re-read payments pending longer than this: 30s, 10m, 2h "
            "(default LEDGER_RECONCILE_OLDER_THAN_SECONDS, 600 s)",
        ),
    ] = None,
) -> None:
    """Re-read pending payments from the providers, apply their answers, print the report
    (JSON, as GET /api/admin/reconciliation shows it)."""
    from api.app import build_services
    from api.reconcile import Reconciler, parse_duration
    from ledger.application import PaymentLedger

    settings = Settings()
    try:
        default = timedelta(seconds=settings.reconcile_older_than_seconds)
        age = parse_duration(older_than) if older_than is not None else default
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--older-than") from exc
    _logging()
    services = build_services(settings)
    try:
        head = services.ledger.recorder.max_notification_id() or 0
        table = services.read_models.payments_table.max_tracking_id(PaymentLedger.name) or 0
        if table < head:
            typer.echo(
                f"note: the payments table is {head - table} events behind the store (is "
                "`ledger serve` or `ledger project` running?); payments it does not list "
                "yet are not checked",
                err=True,
            )
        reconciler = Reconciler(services.ledger, services.providers, services.read_models)
        report = reconciler.run(age)
    finally:
        _close(services)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))


@cli.command("reconcile-fees")
def reconcile_fees(
    start: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first business day")
    ],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="last business day")],
) -> None:
    """Import the providers' settlement reports of those days: post each fee against
    provider:{p} once, and print (JSON) the lines the ledger does not know and the
    payments it completed that a provider does not list."""
    from api.app import build_services
    from api.fees import FeeReconciler
    from ledger.errors import LedgerError

    if end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    settings = Settings()
    _logging()
    services = build_services(settings)
    try:
        _note_table_lag(services, "payments it does not list yet are not checked at the providers")
        fees = FeeReconciler(
            services.ledger, services.providers, services.read_models.payments_table,
            settings.zone,
        )  # fmt: skip
        report = fees.run(start.date(), end.date())
    except LedgerError as error:  # unreachable, not configured, refused: nothing was posted
        typer.echo(f"reconcile-fees: {error.code}: {error.message}; nothing posted", err=True)
        raise typer.Exit(1) from error
    finally:
        _close(services)
    typer.echo(json.dumps(report, ensure_ascii=False))


def _note_table_lag(services: Services, consequence: str) -> None:
    from ledger.application import PaymentLedger

    head = services.ledger.recorder.max_notification_id() or 0
    table = services.read_models.payments_table.max_tracking_id(PaymentLedger.name) or 0
    if table < head:
        typer.echo(
            f"note: the payments table is {head - table} events behind the store (is "
            f"`ledger serve` or `ledger project` running?); {consequence}",
            err=True,
        )


def _close(services: Services) -> None:
    services.read_models.close()
    services.providers.close()
    services.ledger.close()


@cli.command()
def rebuild(
    projection: Annotated[
        list[str] | None, typer.Option("--projection", help="only this projection (repeatable)")
    ] = None,
    reset_audit_chain: Annotated[
        bool,
        typer.Option(
            "--reset-audit-chain",
            help="also allow --projection audit_chain: re-hash the events as they are NOW",
        ),
    ] = False,
) -> None:
    """Drop the read models and rebuild them from the event history.

    Stop `ledger serve`/`ledger project` first: a running runner would race the rebuild.
    The audit hash chain is left alone unless named and `--reset-audit-chain` is given:
    re-hashing the current events would hide any tampering with them.
    """
    from ledger.application import PaymentLedger
    from projections.runtime import ReadModels

    settings = Settings()
    names = _rebuild_names(projection, reset_audit_chain)
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    read_models = ReadModels(settings)
    total = ledger.recorder.max_notification_id() or 0
    try:
        with typer.progressbar(length=total, label=", ".join(names)) as bar:
            count = read_models.rebuild(names, ledger, bar.update)
        for name in names:
            typer.echo(f"{name}: {count} events replayed", err=True)
    finally:
        read_models.close()
        ledger.close()


def _rebuild_names(requested: list[str] | None, reset_audit_chain: bool) -> list[str]:
    from projections.runtime import PROJECTIONS

    def by_default(name: str) -> bool:
        return bool(getattr(PROJECTIONS[name], "rebuild_by_default", True))

    names = requested or [name for name in PROJECTIONS if by_default(name)]
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise typer.BadParameter(f"unknown projection(s) {unknown}; known: {sorted(PROJECTIONS)}")
    guarded = [name for name in names if not by_default(name)]
    if guarded and not reset_audit_chain:
        raise typer.BadParameter(
            f"{guarded} is the tamper-evident audit chain; rebuilding re-hashes the events as "
            "they are now and would hide tampering. Run `ledger verify` and keep an export "
            "first, then add --reset-audit-chain if you really mean it."
        )
    return names


@cli.command()
def verify(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="check an export (JSON lines) offline, without a database"),
    ] = None,
) -> None:
    """Check the event history's hash chain; exit 1 naming the first bad event."""
    from ledger.audit import verify_export
    from projections.audit_log import opened

    if file is not None:
        with file.open("rb") as lines:
            verdict = verify_export(lines)
    else:
        with opened(Settings()) as log:
            verdict = log.verify()
    if not verdict.ok:
        bad = verdict.first_bad_position
        where = f"position {bad}" if bad is not None else "an unreadable line"
        typer.echo(f"TAMPERED: first bad event at {where}: {verdict.problem}", err=True)
        typer.echo(f"{verdict.events_checked} events intact before it", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"ok: {verdict.events_checked} events checked; head position {verdict.head_position}, "
        f"hash {verdict.head_hash}"
    )
    if verdict.unchained:
        typer.echo(f"({verdict.unchained} newer events not chained yet)", err=True)


@cli.command()
def export(
    after: Annotated[int, typer.Option(min=0, help="only events after this position")] = 0,
) -> None:
    """Write the event history as JSON lines (with hash-chain links) to stdout, in order."""
    from projections.audit_log import opened

    out = sys.stdout.buffer
    with opened(Settings()) as log:
        for item in log.stream(after):
            line = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            out.write(json_utf8(line) + b"\n")
    out.flush()


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
