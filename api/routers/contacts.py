"""Contact details (CONTRACT.md, "Telling people"): how to reach trainers and customers.

Personal data, kept in the contacts store (store/contacts.py), never in an event: setting,
reading or erasing a contact appends nothing to the event store. Admin writes; an auditor
may read. A trainer registers its own browsers for Web Push.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from api.auth import AdminReader, AdminWriter, TrainerOrAdmin
from api.contact_schemas import (
    ContactOut,
    CustomerContactRequest,
    PushSubscriptionOut,
    PushSubscriptionRequest,
    TrainerContactRequest,
)
from api.deps import ServicesDep
from api.errors import ApiError
from api.notify.push_policy import endpoint_allowed
from api.schemas import Identifier, PathId
from store.contacts import CUSTOMER, TRAINER, Contact, ContactBook

router = APIRouter(tags=["contacts"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No contact is known"}}


def contact_out(contact: Contact) -> dict[str, Any]:
    """The answer's body (`ContactOut`): a push subscription's keys are not shown."""
    return {
        "role": contact.role,
        "party_id": contact.party_id,
        "email": contact.email,
        "phone": contact.phone,
        "locale": contact.locale,
        "channels": None if contact.channels is None else list(contact.channels),
        "push_subscriptions": [{"endpoint": row.endpoint} for row in contact.push],
    }


def _found(book: ContactBook, role: str, party_id: str) -> dict[str, Any]:
    contact = book.get(role, party_id)
    if contact is None:
        raise ApiError(404, "unknown_contact", f"no contact for {role} {party_id}")
    return contact_out(contact)


@router.put("/api/admin/trainers/{trainer_id}/contact", response_model=ContactOut)
def put_trainer_contact(
    trainer_id: PathId, body: TrainerContactRequest, _: AdminWriter, services: ServicesDep
) -> dict[str, Any]:
    """Replace the trainer's contact: a field left out is cleared (`channels`: every
    channel; `locale`: ko). Its push subscriptions are kept."""
    channels = None if body.channels is None else tuple(body.channels)
    contact = services.contacts.put(
        TRAINER, trainer_id, body.email, body.phone, channels, body.locale
    )
    return contact_out(contact)


@router.put("/api/admin/customers/{customer_id}/contact", response_model=ContactOut)
def put_customer_contact(
    customer_id: PathId, body: CustomerContactRequest, _: AdminWriter, services: ServicesDep
) -> dict[str, Any]:
    """Replace the customer's contact: a field left out is cleared (`locale`: ko)."""
    contact = services.contacts.put(
        CUSTOMER, customer_id, body.email, body.phone, None, body.locale
    )
    return contact_out(contact)


@router.get(
    "/api/admin/trainers/{trainer_id}/contact", response_model=ContactOut, responses=_NOT_FOUND
)
def get_trainer_contact(
    trainer_id: Identifier, _: AdminReader, services: ServicesDep
) -> dict[str, Any]:
    """The trainer's contact (extension); 404 when none is known."""
    return _found(services.contacts, TRAINER, trainer_id)


@router.get(
    "/api/admin/customers/{customer_id}/contact", response_model=ContactOut, responses=_NOT_FOUND
)
def get_customer_contact(
    customer_id: Identifier, _: AdminReader, services: ServicesDep
) -> dict[str, Any]:
    """The customer's contact (extension); 404 when none is known."""
    return _found(services.contacts, CUSTOMER, customer_id)


@router.delete(
    "/api/admin/customers/{customer_id}/contact", status_code=204, response_class=Response
)
def erase_customer_contact(
    customer_id: Identifier, _: AdminWriter, services: ServicesDep
) -> Response:
    """Erase the customer's contact. 204 also when none was there: erasure is idempotent,
    and the answer does not tell whether the customer was known."""
    services.contacts.erase(CUSTOMER, customer_id)
    return Response(status_code=204)


@router.delete("/api/admin/trainers/{trainer_id}/contact", status_code=204, response_class=Response)
def erase_trainer_contact(
    trainer_id: Identifier, _: AdminWriter, services: ServicesDep
) -> Response:
    """Erase the trainer's contact and push subscriptions (extension); 204 also when none
    was there."""
    services.contacts.erase(TRAINER, trainer_id)
    return Response(status_code=204)


@router.post(
    "/api/trainers/{trainer_id}/push-subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=PushSubscriptionOut,
    tags=["trainers"],
    responses={422: {"description": "not a Web Push subscription, or `push_endpoint_not_allowed`"}},
)
def add_push_subscription(
    trainer_id: PathId, body: PushSubscriptionRequest, _: TrainerOrAdmin, services: ServicesDep
) -> PushSubscriptionOut:
    """Register a browser's Web Push subscription for the trainer (its own token, or admin).
    The same endpoint again updates its keys, and moves it to this trainer if another
    trainer had it (one browser, one trainer). The endpoint must be a push service's
    (LEDGER_PUSH_ENDPOINTS): the ledger POSTs there."""
    if not endpoint_allowed(body.endpoint, services.settings.push_endpoints):
        message = "the endpoint is not a known push service's (LEDGER_PUSH_ENDPOINTS)"
        raise ApiError(422, "push_endpoint_not_allowed", message)
    services.contacts.add_push_subscription(
        trainer_id, body.endpoint, body.keys.p256dh, body.keys.auth
    )
    return PushSubscriptionOut(trainer_id=trainer_id, endpoint=body.endpoint)
