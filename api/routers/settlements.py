"""Settlement (admin; an auditor may read): trainers' profiles, the journal, the balances."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import AdminWriter
from api.deps import ServicesDep
from api.schemas import PathId
from api.settlement_schemas import ProfileRequest, SettlementProfileOut

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
