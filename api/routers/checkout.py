"""Checkout: start a payment, confirm it after the provider's redirect."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import Services, ServicesDep
from api.providers.parking import initiated_after_release
from api.providers.stripe import StripePayments
from api.providers.toss import TossPayments
from api.schemas import NewPayment, PaymentCreated, PaymentStatus, StripeConfirm, TossConfirm
from ledger.application import CommandResult, PaymentOrder
from store.contacts import CUSTOMER

router = APIRouter(prefix="/api/payments", tags=["checkout"])
# The customer's contact details: for the contacts store, not for the order or its events.
CONTACT_FIELDS = {"customer_email", "customer_phone", "customer_locale"}


def _status(result: CommandResult) -> PaymentStatus:
    return PaymentStatus(
        payment_id=result.payment_id, status=result.status, position=result.position
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PaymentCreated)
def initiate_payment(body: NewPayment, services: ServicesDep, response: Response) -> PaymentCreated:
    """Start a payment; deliveries its provider sent before (parked) are applied now, so the
    answer's status and position include them."""
    fields = body.model_dump(exclude=CONTACT_FIELDS)
    order = PaymentOrder(**{**fields, "booking_date": body.booking_date.isoformat()})
    provider = services.providers.get(order.provider)
    provider.check_order(order)
    initiated = services.ledger.initiate(order)
    result = initiated_after_release(services.ledger, provider, order.order_id, initiated)
    if not result.appended:
        response.status_code = status.HTTP_200_OK
    _remember_customer(services, body)
    return PaymentCreated(
        payment_id=result.payment_id,
        order_id=body.order_id,
        status=result.status,
        position=result.position,
    )


def _remember_customer(services: Services, body: NewPayment) -> None:
    # After the payment exists, so that a refused order stores nothing; merged, so that an
    # order without a phone does not erase the phone an admin set.
    if body.customer_email or body.customer_phone or body.customer_locale:
        services.contacts.merge(
            CUSTOMER,
            body.customer_id,
            body.customer_email,
            body.customer_phone,
            body.customer_locale,
        )


@router.post("/toss/confirm", response_model=PaymentStatus)
def confirm_toss(body: TossConfirm, services: ServicesDep) -> PaymentStatus:
    toss = services.providers.adapter("toss", TossPayments)
    return _status(toss.confirm(body.paymentKey, body.orderId, body.amount))


@router.post("/stripe/confirm", response_model=PaymentStatus)
def confirm_stripe(body: StripeConfirm, services: ServicesDep) -> PaymentStatus:
    stripe = services.providers.adapter("stripe", StripePayments)
    return _status(stripe.confirm(body.session_id))
