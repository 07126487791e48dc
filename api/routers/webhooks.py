"""Provider webhooks: no bearer token; each provider's adapter checks authenticity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import ServicesDep
from api.errors import ApiError
from api.providers.base import WebhookRequest

router = APIRouter(prefix="/api/webhooks", tags=["provider webhooks"])


async def raw_body(request: Request) -> bytes:
    # The exact bytes the provider sent: a signature covers these, not a re-serialisation.
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


class WebhookReceived(BaseModel):
    received: bool = True
    delivery_id: UUID = Field(description="`GET /api/admin/webhooks/{delivery_id}`: its result")
    outcome: Literal["accepted", "duplicate"] = Field(
        description="accepted: stored, to be applied; duplicate: this event was stored before"
    )


@router.post(
    "/{provider}",
    response_model=WebhookReceived,
    responses={
        404: {"description": "`unknown_provider`, or (Toss) an order the ledger does not know"}
    },
)
async def provider_webhook(
    provider: str,
    body: RawBody,
    request: Request,
    services: ServicesDep,
    stripe_signature: Annotated[
        str | None,
        Header(alias="Stripe-Signature", description="Stripe: verified with STRIPE_WEBHOOK_SECRET"),
    ] = None,
) -> WebhookReceived:
    """One delivery of a registered provider (`stripe`, `toss`, ...): checked by its adapter
    (Stripe: the signature on the raw body; Toss: the body, a known order, a deposit's
    secret), stored in the webhook inbox, answered, and applied after by the leader."""
    adapter = services.providers.find(provider)
    if adapter is None:
        raise ApiError(404, "unknown_provider", f"no provider {provider!r} takes webhooks here")
    delivery = WebhookRequest(body, request.headers)
    if adapter.checks_offline:  # CPU only (a signature): no thread hop
        accepted = adapter.accept(delivery)
    else:  # it reads the store or the provider
        accepted = await run_in_threadpool(adapter.accept, delivery)
    now = datetime.now(UTC)
    received = await services.receiver.receive(
        provider, accepted.event_id, accepted.event_type, body, now
    )
    if received.fresh:
        services.inbox_processor.wake(provider)
    outcome: Literal["accepted", "duplicate"] = "accepted" if received.fresh else "duplicate"
    return WebhookReceived(delivery_id=received.delivery_id, outcome=outcome)
