"""Provider fees: one per line of a provider's settlement report, recorded once.

The fee a provider kept on a payment (or a refund) is a fact of its report, not of the
payment: it is kept in its own aggregate, keyed by the provider and the report's own line
id (Toss's transactionKey, Stripe's balance transaction id), so importing the same report
again collides on the id and posts nothing twice. `payment_id` is None for a line whose
payment the ledger does not have: the fee was still taken, and the journal still posts it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from ledger.ids import stable_id


class ProviderFee(Aggregate):
    class Recorded(Aggregate.Created):
        provider: str
        line_id: str
        payment_id: UUID | None
        order_id: str | None
        fee: int
        currency: str
        settled_on: str  # YYYY-MM-DD, the provider's settlement day

    @staticmethod
    def create_id(provider: str, line_id: str, **_: Any) -> UUID:
        return stable_id(f"provider-fee:{provider}:{line_id}")

    @event(Recorded)
    def __init__(
        self,
        *,
        provider: str,
        line_id: str,
        payment_id: UUID | None,
        order_id: str | None,
        fee: int,
        currency: str,
        settled_on: str,
    ) -> None:
        self.provider = provider
        self.line_id = line_id
        self.payment_id = payment_id
        self.order_id = order_id
        self.fee = fee
        self.currency = currency
        self.settled_on = settled_on


def record_fee(
    app: Application[UUID],
    *,
    provider: str,
    line_id: str,
    payment_id: UUID | None,
    order_id: str | None,
    fee: int,
    currency: str,
    settled_on: str,
) -> int | None:
    """Record one report line's fee; its position, or None when it was recorded before
    (by an earlier import of the same report, or a concurrent one)."""
    if ProviderFee.create_id(provider, line_id) in app.repository:
        return None
    recorded = ProviderFee(
        provider=provider,
        line_id=line_id,
        payment_id=payment_id,
        order_id=order_id,
        fee=fee,
        currency=currency,
        settled_on=settled_on,
    )
    try:
        return app.save(recorded)[-1].notification.id
    except IntegrityError:
        return None
