"""Refunds a provider has accepted but not finished, remembered by the provider's refund id.

Toss reports an overseas easy-pay cancel as `IN_PROGRESS` first; its later
CANCEL_STATUS_CHANGED webhook carries a Cancel object that names the cancel's
`transactionKey` but maybe not the payment. This aggregate, keyed by that id, is how the
ledger finds the payment again. It holds no money: the refund counts once it is done.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from ledger.ids import stable_id


class PendingRefund(Aggregate):
    class Noted(Aggregate.Created):
        provider: str
        refund_id: str
        payment_id: UUID
        amount: int

    @staticmethod
    def create_id(provider: str, refund_id: str, **_: Any) -> UUID:
        return stable_id(f"pending-refund:{provider}:{refund_id}")

    @event(Noted)
    def __init__(self, *, provider: str, refund_id: str, payment_id: UUID, amount: int) -> None:
        self.provider = provider
        self.refund_id = refund_id
        self.payment_id = payment_id
        self.amount = amount


def note_pending_refund(
    app: Application[UUID], provider: str, refund_id: str, payment_id: UUID, amount: int
) -> int | None:
    """Remember a pending refund once; the position of the note, None if noted before."""
    if PendingRefund.create_id(provider, refund_id) in app.repository:
        return None
    note = PendingRefund(
        provider=provider, refund_id=refund_id, payment_id=payment_id, amount=amount
    )
    try:
        return app.save(note)[-1].notification.id
    except IntegrityError:
        return None  # a concurrent delivery noted it first


def payment_of_pending_refund(app: Application[UUID], provider: str, refund_id: str) -> UUID | None:
    refund_key = PendingRefund.create_id(provider, refund_id)
    if refund_key not in app.repository:
        return None
    note: PendingRefund = app.repository.get(refund_key)
    return note.payment_id
