"""Provider webhooks: no bearer token; each provider's adapter checks authenticity."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.providers.webhooks import WebhookOutcome

router = APIRouter(prefix="/api/webhooks", tags=["provider webhooks"])


async def raw_body(request: Request) -> bytes:
    # The exact bytes the provider sent: a signature covers these, not a re-serialisation.
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


class WebhookReceived(BaseModel):
    received: bool = True
    outcome: str = Field(description="applied, rejected, duplicate, unchanged or ignored")
    payment_id: UUID | None = None
    status: str | None = None
    position: int | None = Field(None, description="Event-store position, when appended")
    reason: str | None = None


def _received(outcome: WebhookOutcome) -> WebhookReceived:
    return WebhookReceived(
        outcome=outcome.outcome,
        payment_id=outcome.payment_id,
        status=outcome.status,
        position=outcome.position,
        reason=outcome.reason,
    )


@router.post("/stripe", response_model=WebhookReceived)
def stripe_webhook(
    body: RawBody,
    services: ServicesDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceived:
    secret = services.settings.stripe_webhook_secret
    key = secret.get_secret_value() if secret else None
    return _received(services.stripe.handle_webhook(body, stripe_signature, key))


@router.post("/toss", response_model=WebhookReceived)
def toss_webhook(body: RawBody, services: ServicesDep) -> WebhookReceived:
    return _received(services.toss.handle_webhook(body))
