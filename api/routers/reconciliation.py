"""The latest reconciliation report (admin, or auditor): what the last re-read of the
pending payments found, whichever process ran it (api/reconcile.py)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import AdminReader
from api.deps import ReadModelsDep
from api.errors import ApiError

router = APIRouter(prefix="/api/admin", tags=["admin"])


class Mismatch(BaseModel):
    payment_id: UUID
    order_id: str
    provider: str
    code: str = Field(description="amount_mismatch, order_mismatch, provider_unavailable, ...")
    message: str


class ReconciliationReport(BaseModel):
    checked_at: str = Field(description="When the run started (ISO-8601, UTC)")
    pending_checked: int = Field(description="Payments re-read: resolved + still_pending")
    resolved: int = Field(description="No longer pending after the provider's answer")
    still_pending: int = Field(description="Still pending; those in `mismatches` among them")
    mismatches: list[Mismatch] = Field(
        description="Answers the ledger refused, and providers that could not be asked"
    )
    older_than_seconds: float = Field(description="Only payments pending this long were read")
    run_id: UUID
    position: int = Field(description="Event position of the run's report")


@router.get(
    "/reconciliation",
    response_model=ReconciliationReport,
    responses={404: {"description": "`no_reconciliation_yet`: no run has been recorded"}},
)
def latest_reconciliation(_: AdminReader, read_models: ReadModelsDep) -> dict[str, Any]:
    """The latest run of `ledger reconcile` or of the leader's loop."""
    report = read_models.reconciliation.latest()
    if report is None:
        raise ApiError(404, "no_reconciliation_yet", "no reconciliation run has been recorded")
    return report
