"""A trainer's inbox: the notifications the ledger sent it, and marking them read.

Tokens: the trainer's own (`ledger token trainer ID`) or admin; an auditor may read.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from api.auth import Principal, PrincipalDep, TrainerOrAdmin, trainer_or_admin
from api.deps import ReadModelsDep, ServicesDep
from api.routers.admin import decode_cursor, encode_cursor
from api.routers.settlements import statement_page
from api.schemas import Identifier, TrainerInbox
from api.settlement_schemas import StatementPage, TrainerBalance

router = APIRouter(prefix="/api/trainers", tags=["trainers"])

POSITION_HEADER = "X-Ledger-Position"


def inbox_reader(trainer_id: Identifier, who: PrincipalDep) -> Principal:
    """The trainer itself or admin; an auditor too, since reading changes nothing."""
    if who.role == "auditor":
        return who
    return trainer_or_admin(trainer_id, who)


InboxReader = Annotated[Principal, Depends(inbox_reader)]


@router.get("/{trainer_id}/notifications", response_model=TrainerInbox)
def list_notifications(
    trainer_id: Identifier,
    _: InboxReader,
    read_models: ReadModelsDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first; `unread=true` leaves out what the trainer has already read."""
    rows = read_models.notifications.inbox(
        trainer_id,
        unread_only=unread,
        limit=limit + 1,  # one more tells whether an older page exists
        before=decode_cursor(cursor) if cursor else None,
    )
    next_cursor = encode_cursor(rows[limit - 1]["position"]) if len(rows) > limit else None
    return {"items": rows[:limit], "next_cursor": next_cursor}


@router.post(
    "/{trainer_id}/notifications/{notification_id}/read",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "No such notification in this trainer's inbox"}},
)
def mark_read(
    trainer_id: Identifier, notification_id: UUID, _: TrainerOrAdmin, services: ServicesDep
) -> Response:
    """Appends `MarkedRead` once; marking again appends nothing. `X-Ledger-Position` is a
    position whose reads (`?min_position=`) show the notification read."""
    position = services.ledger.mark_notification_read(notification_id, trainer_id)
    if position is None:
        # Already read: the earlier MarkedRead is at or below the head.
        position = services.ledger.recorder.max_notification_id() or 0
    return Response(status_code=204, headers={POSITION_HEADER: str(position)})


@router.get("/{trainer_id}/settlements", response_model=StatementPage)
def list_settlements(
    trainer_id: Identifier,
    _: InboxReader,
    read_models: ReadModelsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The trainer's statements, newest first, without lines (a trainer with none, known or
    not, has an empty list)."""
    return statement_page(read_models, limit, cursor, trainer_id=trainer_id)


@router.get("/{trainer_id}/balance", response_model=dict[str, TrainerBalance])
def balance(trainer_id: Identifier, _: InboxReader, read_models: ReadModelsDep) -> Any:
    """Per currency: unsettled (open statements, before tax), payable (closed, not paid),
    paid_out."""
    return read_models.statements.balance(trainer_id)
