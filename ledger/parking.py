"""Verified provider deliveries for an order the ledger does not know yet, kept until it does.

A Stripe webhook may beat `POST /api/payments` for its order. Refusing it would lose the
money (Stripe gives up after three days); applying it is impossible (no payment). So the
delivery's verified body is parked here, one aggregate per (provider, order), and applied
when the order is initiated, oldest first, each then marked released.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from ledger.errors import ConflictError
from ledger.ids import stable_id

# Two copies of one delivery parked at once collide on the aggregate's version: reload and
# decide again (the second then finds it parked), as PaymentLedger._change does.
MAX_ATTEMPTS = 30


@dataclass(frozen=True)
class ParkedDelivery:
    event_key: str
    event_type: str
    body: str  # the verified raw body, as text (Stripe's are UTF-8 JSON)
    outcome: str | None = None  # once released: what applying it did

    @property
    def released(self) -> bool:
        return self.outcome is not None


class ParkedDeliveries(Aggregate):
    """The parked deliveries of one provider for one order, in the order they arrived."""

    class Opened(Aggregate.Created):
        provider: str
        order_id: str

    class Parked(Aggregate.Event):
        event_key: str
        event_type: str
        body: str

    class Released(Aggregate.Event):
        event_key: str
        outcome: str

    @staticmethod
    def create_id(provider: str, order_id: str, **_: Any) -> UUID:
        return stable_id(f"parked:{provider}:{order_id}")

    @event(Opened)
    def __init__(self, *, provider: str, order_id: str) -> None:
        self.provider = provider
        self.order_id = order_id
        self.deliveries: dict[str, ParkedDelivery] = {}  # by event key, oldest first

    @property
    def unreleased(self) -> list[ParkedDelivery]:
        return [d for d in self.deliveries.values() if not d.released]

    def park(self, event_key: str, event_type: str, body: str) -> bool:
        """Park a delivery; a second copy of it (same event key) changes nothing."""
        if event_key in self.deliveries:
            return False
        self._park(event_key, event_type, body)
        return True

    def release(self, event_key: str, outcome: str) -> bool:
        """Mark a parked delivery applied (with its outcome); once."""
        parked = self.deliveries.get(event_key)
        if parked is None or parked.released:
            return False
        self._release(event_key, outcome)
        return True

    @event(Parked)
    def _park(self, event_key: str, event_type: str, body: str) -> None:
        self.deliveries[event_key] = ParkedDelivery(event_key, event_type, body)

    @event(Released)
    def _release(self, event_key: str, outcome: str) -> None:
        self.deliveries[event_key] = replace(self.deliveries[event_key], outcome=outcome)


def park(
    app: Application[UUID],
    provider: str,
    order_id: str,
    event_key: str,
    event_type: str,
    body: str,
) -> int | None:
    """Park a verified delivery once; the position of the Parked event, None if parked before."""

    def decide(parked: ParkedDeliveries | None) -> ParkedDeliveries | None:
        parked = parked or ParkedDeliveries(provider=provider, order_id=order_id)
        return parked if parked.park(event_key, event_type, body) else None

    return _change(app, provider, order_id, decide)


def unreleased(app: Application[UUID], provider: str, order_id: str) -> list[ParkedDelivery]:
    """The order's parked deliveries not applied yet, oldest first (none: nothing parked)."""
    parked = _get(app, provider, order_id)
    return parked.unreleased if parked else []


def release(
    app: Application[UUID], provider: str, order_id: str, event_key: str, outcome: str
) -> int | None:
    """Mark a parked delivery applied; the position, None if released before (or not parked)."""

    def decide(parked: ParkedDeliveries | None) -> ParkedDeliveries | None:
        return parked if parked and parked.release(event_key, outcome) else None

    return _change(app, provider, order_id, decide)


def _get(app: Application[UUID], provider: str, order_id: str) -> ParkedDeliveries | None:
    parked_id = ParkedDeliveries.create_id(provider, order_id)
    if parked_id not in app.repository:
        return None
    parked: ParkedDeliveries = app.repository.get(parked_id)
    return parked


def _change(
    app: Application[UUID],
    provider: str,
    order_id: str,
    decide: Callable[[ParkedDeliveries | None], ParkedDeliveries | None],
) -> int | None:
    for attempt in range(MAX_ATTEMPTS):
        changed: ParkedDeliveries | None = decide(_get(app, provider, order_id))
        if changed is None:
            return None
        try:
            return app.save(changed)[-1].notification.id
        except IntegrityError:
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise ConflictError(f"the parked deliveries of order {order_id} are changing too fast; retry")
