"""Settlement (admin; an auditor may read): trainers' profiles, the journal, the balances."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import AdminReader, AdminWriter
from api.deps import ReadModelsDep, ServicesDep
from api.schemas import Identifier, PathId
from api.settlement_schemas import Balances, JournalPage, ProfileRequest, SettlementProfileOut

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
