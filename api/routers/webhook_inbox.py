"""The webhook inbox as admins read it (CONTRACT.md, "Provider truth"): every stored
delivery with what applying it did, its raw body, and a replay."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import AdminReader, AdminWriter
from api.deps import ServicesDep
from api.errors import ApiError
from api.routers.admin import decode_cursor, encode_cursor

router = APIRouter(prefix="/api/admin/webhooks", tags=["admin"])

Outcome = Literal[
    "accepted", "applied", "duplicate", "unchanged", "rejected", "ignored", "parked",
    "retrying", "failed",
]  # fmt: skip


class InboxItem(BaseModel):
    delivery_id: UUID
    provider: str
    event_id: str = Field(description="Stripe's event id; Toss's transmission id or body hash")
    type: str | None
    received_at: str
    processed_at: str | None = Field(description="When it was last applied (or tried)")
    outcome: Outcome = Field(description="accepted: stored, not applied yet")
    reason: str | None
    payment_id: UUID | None
    status: str | None = Field(description="The payment's status after it (extension)")
    position: int | None = Field(description="Event position it appended: ?min_position=")
    attempts: int
    next_attempt_at: str | None = Field(description="retrying: when (extension)")


class InboxDelivery(InboxItem):
    body: str = Field(description="The raw body as received (UTF-8; others replaced)")


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: str | None


@router.get("", response_model=InboxPage)
def list_deliveries(
    _: AdminReader,
    services: ServicesDep,
    provider: str | None = None,
    outcome: Outcome | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Stored deliveries, newest first."""
    if provider is not None:
        services.providers.get(provider)  # 422 unknown_provider
    before = decode_cursor(cursor) if cursor else None
    rows = services.inbox.page(provider, outcome, limit + 1, before)
    next_cursor = encode_cursor(rows[limit - 1]["seq"]) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


@router.get(
    "/{delivery_id}",
    response_model=InboxDelivery,
    responses={404: {"description": "`unknown_delivery`"}},
)
def get_delivery(delivery_id: UUID, _: AdminReader, services: ServicesDep) -> dict[str, Any]:
    """One delivery, with its raw body: what a client polls for a delivery's result."""
    row = services.inbox.get(str(delivery_id))
    if row is None:
        raise ApiError(404, "unknown_delivery", f"no delivery {delivery_id} in the inbox")
    return {**row, "body": bytes(row["body"]).decode("utf-8", "replace")}


@router.post(
    "/{delivery_id}/replay",
    response_model=InboxItem,
    responses={404: {"description": "`unknown_delivery`"}},
)
def replay_delivery(delivery_id: UUID, _: AdminWriter, services: ServicesDep) -> dict[str, Any]:
    """Apply a stored delivery again, now (in this process): its receipt still decides, so
    an applied one replays as `duplicate`."""
    row = services.inbox.get(str(delivery_id))
    if row is None:
        raise ApiError(404, "unknown_delivery", f"no delivery {delivery_id} in the inbox")
    services.inbox_processor.process(row)
    replayed = services.inbox.get(str(delivery_id))
    assert replayed is not None
    replayed.pop("body")
    return replayed
