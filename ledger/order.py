"""Order claims: the key that lets an order be paid through one provider only."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.ids import stable_id
from ledger.payment import Payment


class OrderClaim(Aggregate):
    """Saved with an order's first payment. A checkout of the same order through the other
    provider, even one started at the same moment, collides on this aggregate's id and
    stores nothing: the store's uniqueness decides, not a read that both could pass."""

    class Claimed(Aggregate.Created):
        order_id: str
        provider: str
        payment_id: UUID

    @staticmethod
    def create_id(order_id: str, **_: Any) -> UUID:
        return stable_id(f"order:{order_id}")

    @event(Claimed)
    def __init__(self, *, order_id: str, provider: str, payment_id: UUID) -> None:
        self.order_id = order_id
        self.provider = provider
        self.payment_id = payment_id

    @classmethod
    def of(cls, payment: Payment) -> OrderClaim:
        return cls(order_id=payment.order_id, provider=payment.provider, payment_id=payment.id)
