"""Admin refunds: ask the provider to give money back, record what it reports."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, status

from api.auth import AdminWriter
from api.deps import ServicesDep
from api.schemas import RefundCreated, RefundRequest

router = APIRouter(prefix="/api/admin/payments", tags=["admin"])


@router.post(
    "/{payment_id}/refunds", status_code=status.HTTP_201_CREATED, response_model=RefundCreated
)
def refund_payment(
    payment_id: UUID,
    body: RefundRequest,
    _: AdminWriter,
    services: ServicesDep,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> RefundCreated:
    """Repeating a request with the same `Idempotency-Key` returns the first refund."""
    refund = services.refunds.refund(payment_id, body.amount, body.reason, idempotency_key)
    return RefundCreated(
        refund_id=refund.refund_id,
        amount=refund.amount,
        status=refund.result.status,
        position=refund.result.position,
    )
