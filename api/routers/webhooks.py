"""Provider webhooks: no bearer token; each provider's adapter checks authenticity."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.errors import ApiError
from api.providers.base import WebhookRequest
from api.providers.webhooks import WebhookOutcome

router = APIRouter(prefix="/api/webhooks", tags=["provider webhooks"])


async def raw_body(request: Request) -> bytes:
    # The exact bytes the provider sent: a signature covers these, not a re-serialisation.
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


class WebhookReceived(BaseModel):
    received: bool = True
    outcome: str = Field(
        description=(
            "applied, rejected, duplicate, unchanged, ignored, or parked (Stripe: a verified"
            " delivery for an order not initiated yet, applied when it is)"
        )
    )
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


@router.post(
    "/{provider}",
    response_model=WebhookReceived,
    responses={
        404: {"description": "`unknown_provider`, or (Toss) an order the ledger does not know"}
    },
)
def provider_webhook(
    provider: str,
    body: RawBody,
    request: Request,
    services: ServicesDep,
    stripe_signature: Annotated[
        str | None,
        Header(alias="Stripe-Signature", description="Stripe: verified with STRIPE_WEBHOOK_SECRET"),
    ] = None,
) -> WebhookReceived:
    """One delivery of a registered provider (`stripe`, `toss`, ...), verified and applied by
    that provider's adapter: Stripe by the signature on the raw body, Toss by re-reading the
    payment from its API (or the deposit callback's secret)."""
    adapter = services.providers.find(provider)
    if adapter is None:
        raise ApiError(404, "unknown_provider", f"no provider {provider!r} takes webhooks here")
    delivery = WebhookRequest(body, request.headers)
    return _received(adapter.handle_webhook(delivery))
