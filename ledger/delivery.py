"""Receipts of provider deliveries (webhooks), the key that makes them apply once."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import stable_id


class ProviderDelivery(Aggregate):
    """Saved in the same transaction as the change a delivery caused: a second copy of
    the delivery collides on this aggregate's id and changes nothing."""

    class Applied(Aggregate.Created):
        provider: str
        event_key: str
        event_type: str
        payment_id: UUID

    @staticmethod
    def create_id(provider: str, event_key: str, **_: Any) -> UUID:
        return stable_id(f"delivery:{provider}:{event_key}")

    @event(Applied)
    def __init__(self, *, provider: str, event_key: str, event_type: str, payment_id: UUID) -> None:
        self.provider = provider
        self.event_key = event_key
        self.event_type = event_type
        self.payment_id = payment_id
