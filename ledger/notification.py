"""Trainer notifications: sending and reading are events, so the inbox has a history too."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import stable_id


class TrainerNotification(Aggregate):
    """One message to a trainer, e.g. 'a customer paid for your session'."""

    class Sent(Aggregate.Created):
        trainer_id: str
        booking_id: str
        payment_id: UUID
        kind: str
        title: str
        message: str

    class MarkedRead(Aggregate.Event):
        read_at: datetime

    @staticmethod
    def create_id(payment_id: UUID, kind: str, **_: Any) -> UUID:
        # One notification per (payment, kind): a retried command cannot send it twice.
        return stable_id(f"notification:{payment_id}:{kind}")

    @event(Sent)
    def __init__(
        self,
        *,
        trainer_id: str,
        booking_id: str,
        payment_id: UUID,
        kind: str,
        title: str,
        message: str,
    ) -> None:
        self.trainer_id = trainer_id
        self.booking_id = booking_id
        self.payment_id = payment_id
        self.kind = kind
        self.title = title
        self.message = message
        self.read_at: datetime | None = None

    def mark_read(self, read_at: datetime) -> bool:
        if self.read_at is not None:
            return False
        self._marked_read(read_at=read_at)
        return True

    @event(MarkedRead)
    def _marked_read(self, read_at: datetime) -> None:
        self.read_at = read_at
