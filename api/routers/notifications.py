"""The outbox as admins read it (CONTRACT.md, "Telling people"): every delivery of every
message, each attempt's outcome, and a resend."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.auth import AdminReader, AdminWriter
from api.deps import ServicesDep
from api.errors import ApiError
from api.notification_schemas import (
    Channel,
    DeliveryPage,
    MessageDetail,
    Resent,
    Status,
    delivery_item,
    message_detail,
)
from api.routers.admin import decode_cursor, encode_cursor

router = APIRouter(prefix="/api/admin/notifications", tags=["admin"])


@router.get("", response_model=DeliveryPage)
def list_deliveries(
    _: AdminReader,
    services: ServicesDep,
    status: Status | None = None,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Deliveries, newest first."""
    before = decode_cursor(cursor) if cursor else None
    rows = services.outbox.page(status, channel, limit + 1, before)
    next_cursor = encode_cursor(rows[limit - 1]["seq"]) if len(rows) > limit else None
    return {"items": [delivery_item(row) for row in rows[:limit]], "next_cursor": next_cursor}


@router.get(
    "/{message_id}",
    response_model=MessageDetail,
    responses={404: {"description": "`unknown_message`"}},
)
def get_message(message_id: UUID, _: AdminReader, services: ServicesDep) -> dict[str, Any]:
    """One message (extension): its deliveries, each with every attempt."""
    rows = services.outbox.of_message(str(message_id))
    if not rows:
        raise ApiError(404, "unknown_message", f"no message {message_id} in the outbox")
    return message_detail(services.outbox, rows)


@router.post(
    "/{message_id}/resend",
    status_code=202,
    response_model=Resent,
    responses={404: {"description": "`unknown_message`"}},
)
def resend(message_id: UUID, _: AdminWriter, services: ServicesDep) -> dict[str, Any]:
    """Send the message again on each of its channels, by the outbox worker (one attempt
    now; the same Message-ID)."""
    count = services.outbox.resend(str(message_id))
    if count == 0:
        raise ApiError(404, "unknown_message", f"no message {message_id} in the outbox")
    services.outbox_worker.wake()
    return {"message_id": message_id, "deliveries": count}
