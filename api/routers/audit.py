"""Audit reads: the ordered event history, a payment as of a moment, the chain's check.

Auditor or admin token. The history carries each event's hash-chain link; see
ledger/audit.py for what is hashed, so auditors can recompute it themselves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api.auth import Auditor
from api.deps import ReadModelsDep, ServicesDep
from api.errors import ApiError
from api.schemas import AuditEventPage, ChainVerification, PaymentHistory
from ledger.errors import NotFoundError
from projections.audit_log import AuditLog

router = APIRouter(prefix="/api/audit", tags=["audit"])

# An offset whose `+` arrived as a space (an unencoded query string): "...T10:00:00 09:00".
_SPACED_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")


def audit_log(services: ServicesDep, read_models: ReadModelsDep) -> AuditLog:
    return AuditLog(services.ledger, read_models.audit_chain)


AuditLogDep = Annotated[AuditLog, Depends(audit_log)]


@router.get("/events", response_model=AuditEventPage)
def events(
    _: Auditor,
    log: AuditLogDep,
    after: Annotated[int, Query(ge=0, description="Position to continue after")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Every stored event in commit order, with its hash-chain link."""
    items = log.page(after, limit + 1)  # one more tells whether a next page exists
    next_after = items[limit - 1]["position"] if len(items) > limit else None
    return {"items": items[:limit], "next_after": next_after}


@router.get("/payments/{payment_id}/history", response_model=PaymentHistory)
def payment_history(
    payment_id: str,
    _: Auditor,
    services: ServicesDep,
    log: AuditLogDep,
    as_of: Annotated[
        str | None, Query(description="ISO-8601; without an offset, LEDGER_TIMEZONE; default now")
    ] = None,
) -> dict[str, Any]:
    """The payment's events up to `as_of` and the state they produce (the aggregate's replay)."""
    moment = parse_as_of(as_of, services.settings.zone) if as_of else datetime.now(UTC)
    try:
        pid = UUID(payment_id)
    except ValueError:
        raise NotFoundError(f"payment {payment_id} not found") from None
    return log.payment_history(pid, moment)


@router.get("/verify", response_model=ChainVerification)
def verify(_: Auditor, log: AuditLogDep) -> dict[str, Any]:
    """Recompute the chain from the stored events; `first_bad_position` names the first break."""
    return log.verify().as_dict()


def parse_as_of(text: str, zone: tzinfo) -> datetime:
    try:
        moment = datetime.fromisoformat(_SPACED_OFFSET.sub(r"+\1", text.strip()))
    except ValueError:
        raise ApiError(
            422, "invalid_as_of", f"as_of must be an ISO-8601 date-time, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
