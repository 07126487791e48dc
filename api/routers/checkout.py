"""Checkout: start a payment, confirm it after the provider's redirect."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import ServicesDep
from api.providers.stripe import StripePayments
from api.providers.toss import TossPayments
from api.schemas import NewPayment, PaymentCreated, PaymentStatus, StripeConfirm, TossConfirm
from ledger.application import CommandResult, PaymentOrder

router = APIRouter(prefix="/api/payments", tags=["checkout"])


def _status(result: CommandResult) -> PaymentStatus:
    return PaymentStatus(
        payment_id=result.payment_id, status=result.status, position=result.position
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PaymentCreated)
def initiate_payment(body: NewPayment, services: ServicesDep, response: Response) -> PaymentCreated:
    order = PaymentOrder(**{**body.model_dump(), "booking_date": body.booking_date.isoformat()})
    services.providers.get(order.provider).check_order(order)
    result = services.ledger.initiate(order)
    if not result.appended:
        response.status_code = status.HTTP_200_OK
    return PaymentCreated(
        payment_id=result.payment_id,
        order_id=body.order_id,
        status=result.status,
        position=result.position,
    )


@router.post("/toss/confirm", response_model=PaymentStatus)
def confirm_toss(body: TossConfirm, services: ServicesDep) -> PaymentStatus:
    toss = services.providers.adapter("toss", TossPayments)
    return _status(toss.confirm(body.paymentKey, body.orderId, body.amount))


@router.post("/stripe/confirm", response_model=PaymentStatus)
def confirm_stripe(body: StripeConfirm, services: ServicesDep) -> PaymentStatus:
    stripe = services.providers.adapter("stripe", StripePayments)
    return _status(stripe.confirm(body.session_id))
