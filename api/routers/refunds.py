"""Admin refunds: ask the provider to give money back, record what it reports."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Response, status
from fastapi.responses import JSONResponse

from api.auth import AdminWriter
from api.deps import ServicesDep
from api.errors import error_response
from api.schemas import RefundCreated, RefundRequest

router = APIRouter(prefix="/api/admin/payments", tags=["admin"])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": RefundCreated,
        "description": "The provider accepted the refund but it is pending; the ledger counts "
        "it once it succeeds (a later refund or `charge.refunded` delivery records it)",
    },
    400: {
        "description": "`invalid_refund_amount`: more than the payment's amount. The "
        "provider's refusal (a refund over what it still holds): its own code and message, "
        "with `details.provider` (`toss`, `stripe`); nothing recorded",
    },
    409: {
        "description": "`refund_not_recorded`: the provider refunded, the ledger recorded "
        "nothing (it already counts that money, or the refund failed); `details.refund_id` "
        "names the provider's refund. Also `invalid_state`: the payment is not paid",
    },
}


@router.post(
    "/{payment_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundCreated,
    responses=_RESPONSES,
)
def refund_payment(
    payment_id: UUID,
    body: RefundRequest,
    _: AdminWriter,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
) -> RefundCreated | JSONResponse:
    """`201` once the ledger counts the refund. Repeating a request with the same
    `Idempotency-Key` answers `201` with the first refund (no second refund, no new event)."""
    refund = services.refunds.refund(payment_id, body.amount, body.reason, idempotency_key)
    if refund.problem is not None:
        # Not a refusal of the request (the money moved): say what happened, with the id
        # that finds the refund at the provider.
        details = {"refund_id": refund.refund_id, "amount": refund.amount}
        return error_response(409, "refund_not_recorded", refund.problem, details=details)
    if not refund.recorded:
        response.status_code = status.HTTP_202_ACCEPTED
    return RefundCreated(
        refund_id=refund.refund_id,
        amount=refund.amount,
        refund_status=refund.refund_status,
        status=refund.status,
        position=refund.position,
    )
