"""Settlement (admin; an auditor may read): trainers' profiles, the journal, the balances,
statements: closing a period and recording a payout."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api.auth import AdminReader, AdminWriter
from api.deps import RETRY_SOON, ReadModelsDep, ServicesDep
from api.errors import ApiError
from api.routers.admin import current_time, decode_cursor, encode_cursor
from api.schemas import Identifier, PathId
from api.settlement_schemas import (
    Balances,
    CloseOut,
    CloseRequest,
    JournalPage,
    PayoutRequest,
    ProfileRequest,
    SettlementProfileOut,
    StatementOut,
    StatementPage,
    StatementStatus,
)
from ledger.statement import business_day
from projections.runtime import ReadModels

router = APIRouter(prefix="/api/admin", tags=["settlement"])


@router.put("/trainers/{trainer_id}/settlement-profile", response_model=SettlementProfileOut)
def set_settlement_profile(
    trainer_id: PathId, body: ProfileRequest, _: AdminWriter, services: ServicesDep
) -> dict[str, Any]:
    """The trainer's terms from now on: payments completed earlier keep theirs. Setting the
    same terms again appends nothing."""
    profile, position = services.settlement.set_profile(
        trainer_id, body.commission_bps, body.tax_type
    )
    return {**profile.state(), "position": position}


@router.get("/journal", response_model=JournalPage)
def journal(
    _: AdminReader,
    read_models: ReadModelsDep,
    account: Annotated[Identifier | None, Query(description="only entries posting to it")] = None,
    after: Annotated[int, Query(ge=0, description="a position: entries after it")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Journal entries in position order, each with postings summing to zero per currency
    (debits positive, credits negative)."""
    entries = read_models.journal.entries(account=account, after=after, limit=limit + 1)
    next_after = entries[limit - 1]["position"] if len(entries) > limit else None
    return {"items": entries[:limit], "next_after": next_after}


@router.get("/balances", response_model=Balances)
def balances(_: AdminReader, read_models: ReadModelsDep) -> dict[str, Any]:
    """The trial balance of every account, per currency; each currency sums to zero."""
    return {"accounts": read_models.journal.balances()}


# --- statements ----------------------------------------------------------------------------


def statement_page(
    read_models: ReadModels,
    limit: int,
    cursor: str | None,
    **filters: str | None,
) -> dict[str, Any]:
    """A page of statements without lines, newest first; shared with the trainer's route."""
    rows = read_models.statements.page(
        before=decode_cursor(cursor) if cursor else None, limit=limit + 1, **filters
    )
    next_cursor = encode_cursor(rows[limit - 1]["created_position"]) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


@router.get("/settlements", response_model=StatementPage)
def list_statements(
    _: AdminReader,
    read_models: ReadModelsDep,
    trainer_id: Annotated[Identifier | None, Query()] = None,
    status: StatementStatus | None = None,
    period_start: Annotated[date | None, Query(description="YYYY-MM-DD")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Statements per trainer, period and currency, newest first, without their lines."""
    start = period_start.isoformat() if period_start else None
    return statement_page(
        read_models, limit, cursor, trainer_id=trainer_id, status=status, period_start=start
    )


@router.post("/settlements/close", response_model=CloseOut)
def close_period(
    body: CloseRequest,
    _: AdminWriter,
    services: ServicesDep,
    now: Annotated[datetime, Depends(current_time)],
) -> dict[str, Any]:
    """Close every open statement whose period ended on or before `period_end`, withholding
    an individual trainer's income tax; closing again closes nothing new."""
    today = business_day(now, services.settings.zone)
    try:
        closing = services.statements.close(body.period_end, today)
    except TimeoutError:
        raise _lagging() from None
    return {"closed": closing.closed, "position": closing.position}


@router.get("/settlements/{statement_id}", response_model=StatementOut)
def get_statement(statement_id: UUID, _: AdminReader, read_models: ReadModelsDep) -> dict[str, Any]:
    """One statement with its lines."""
    return _statement(read_models, statement_id)


@router.post("/settlements/{statement_id}/payout", response_model=StatementOut)
def record_payout(
    statement_id: UUID, body: PayoutRequest, _: AdminWriter, services: ServicesDep
) -> dict[str, Any]:
    """Mark a closed statement paid under the transfer's reference (the same reference
    again changes nothing; another one is 409)."""
    try:
        position = services.statements.pay(statement_id, body.reference)
        services.read_models.wait(
            position, services.settings.freshness_timeout_seconds, ("statements",)
        )
    except TimeoutError:
        raise _lagging() from None
    return _statement(services.read_models, statement_id)


def _statement(read_models: ReadModels, statement_id: UUID) -> dict[str, Any]:
    statement = read_models.statements.statement(str(statement_id))
    if statement is None:
        raise ApiError(404, "unknown_statement", f"no statement {statement_id}")
    return statement


def _lagging() -> ApiError:
    message = "the statements read model has not caught up; retry"
    return ApiError(503, "projection_lagging", message, RETRY_SOON)
