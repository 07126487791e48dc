"""Many deliveries decided one after another, saved in one transaction.

Inside `PaymentLedger.batch()` a command changes the batch's copy of its payment (read
once, then kept) and adds its events to the batch instead of saving them; the batch saves
everything at the end, receipts included, so that each delivery is still applied exactly
once: a save that collides (another writer changed a payment, or applied one of the
deliveries) saves nothing and says so, and the caller applies the deliveries again one at
a time. Each delivery is an `Item`: after the save it knows the position of its last
event, as an unbatched command's result would have told.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Recording


# Not LedgerErrors: those are refusals of one delivery, and adapters may catch them.
class BatchCollisionError(Exception):
    """The batch's save collided: nothing of it was saved."""


class NotBatchableError(Exception):
    """A command inside a batch saved on its own (not through the batch): the batch saved
    nothing; the items before `index` can go in a batch, the item at `index` alone."""

    def __init__(self, index: int) -> None:
        super().__init__(f"item {index} of the batch saves on its own")
        self.index = index


@dataclass
class Item:
    """One delivery of a batch: the events it caused, and, once saved, the position of
    its last one."""

    events: list[Any] = field(default_factory=list)
    position: int | None = None
    on_saved: list[Callable[[int | None], None]] = field(default_factory=list)


@dataclass
class UnitOfWork:
    payments: dict[UUID, Any] = field(default_factory=dict)  # id → the batch's copy
    related: list[Any] = field(default_factory=list)  # receipts, notices: saved after
    receipts: set[UUID] = field(default_factory=set)
    items: list[Item] = field(default_factory=list)

    @contextmanager
    def item(self) -> Iterator[Item]:
        """The events commands cause inside this block belong to one delivery."""
        self.items.append(Item())
        yield self.items[-1]

    def add(self, events: Sequence[Any], related: Sequence[Any], receipt: UUID | None) -> None:
        if not self.items:
            self.items.append(Item())  # a command outside any item: an item of its own
        self.items[-1].events.extend(events)
        for aggregate in related:
            self.items[-1].events.extend(aggregate.pending_events)
        self.related.extend(related)
        if receipt is not None:
            self.receipts.add(receipt)

    def saved(self, positions: dict[int, int]) -> None:
        """Positions by `id()` of the saved domain events."""
        for item in self.items:
            found = [positions[id(e)] for e in item.events if id(e) in positions]
            item.position = max(found) if found else None
        for item in self.items:
            for callback in item.on_saved:
                callback(item.position)


class BatchingApplication(Application[UUID]):
    """An application whose commands can run inside `batch()` (see the module's doc)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._local = threading.local()  # the batch this thread is deciding, if any

    @contextmanager
    def batch(self) -> Iterator[UnitOfWork]:
        """Commands inside decide against the batch's copies and save nothing; on leaving,
        one save of everything. Raises BatchCollisionError when that save collides, and
        NotBatchableError when a command inside had to save on its own (nothing saved)."""
        work = UnitOfWork()
        self._local.work = work
        try:
            yield work
            self._local.work = None
            self._save_batch(work)
        finally:
            self._local.work = None

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        work = self._work()
        if work is not None:  # not through the batch: it would commit before the batch
            raise NotBatchableError(max(len(work.items) - 1, 0))
        return super().save(*objs, **kwargs)

    def when_saved(self, callback: Callable[[int | None], None]) -> bool:
        """Inside a batch: call back with the current delivery's position once the batch
        is saved (never, if it collides); returns False outside a batch."""
        work = self._work()
        if work is None or not work.items:
            return False
        work.items[-1].on_saved.append(callback)
        return True

    def _save_batch(self, work: UnitOfWork) -> None:
        changed = [p for p in work.payments.values() if p.pending_events]
        if not changed and not work.related:
            return
        try:
            recordings = self.save(*changed, *work.related)
        except IntegrityError:
            raise BatchCollisionError(
                "a payment or a delivery of the batch was saved meanwhile"
            ) from None
        work.saved({id(r.domain_event): r.notification.id for r in recordings})

    def _work(self) -> UnitOfWork | None:
        work: UnitOfWork | None = getattr(self._local, "work", None)
        return work
