"""One runner for every view: one subscription, each batch of events decoded once.

Seven runners, each with its own subscription, pull thread and decoding, cost the
leader process about 60 % of its CPU per webhook (issue 14's profile), all of it under
one GIL shared with the request threads. This runner pulls once and hands each decoded
batch to every view in turn.

Each view applies a batch in a transaction of its own, so that one view failing never
stops another (the guarantee the separate runners gave): a failing view is set aside,
tried again after a delay doubling up to a cap, and then catches up from the store on
its own before it takes new batches again. Views may start at different positions (one
rebuilt, one not); the subscription starts at the lowest and each view skips what it has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from eventsourcing.persistence import Notification
from eventsourcing.projection import ApplicationSubscription, Projection

from ledger.application import PaymentLedger
from projections.replay import EventBatch, apply, decode
from projections.supervisor import describe

log = logging.getLogger("ledger.projections")

# Most events applied in one transaction: bounds a transaction's size after a pause,
# while under steady load every event that has arrived goes in one batch.
RUNNER_BATCH = 500
CATCH_UP_PAGE = 1000
# How often the loop wakes without events, to try views set aside again.
IDLE_WAKE_SECONDS = 0.25


@dataclass
class Member:
    """One view in the group: where it is, and why it is set aside (None: it is not)."""

    name: str
    projection: Projection[Any]
    position: int
    delay: float
    error: str | None = None
    retry_at: float = 0.0


class GroupRunner:
    """Runs the projections of `projections` (name → projection) until stopped.

    The supervisor (projections/supervisor.py) uses `is_interrupted` and `__exit__`,
    which re-raises what ended the runner (its subscription failing, say)."""

    def __init__(
        self,
        projections: Mapping[str, Projection[Any]],
        env: Mapping[str, str],
        retry_cap: float,
        first_delay: float = 1.0,
    ) -> None:
        # Ask the views first: a store that is away fails here, before the application
        # opens a pool that a half-built runner would leave to the garbage collector.
        self.members = [
            Member(name, projection, projection.view.max_tracking_id(PaymentLedger.name) or 0,
                   first_delay)
            for name, projection in projections.items()
        ]  # fmt: skip
        lowest = min(member.position for member in self.members)
        self._first_delay, self._cap = first_delay, retry_cap
        self.app = PaymentLedger(env=dict(env))
        try:
            self._subscription = ApplicationSubscription(self.app, gt=lowest)
        except BaseException:
            self.app.close()
            raise
        self._seen = lowest  # the last position the subscription gave
        self.is_interrupted = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)

    def __enter__(self) -> Self:
        self._subscription.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.is_interrupted.set()
        self._subscription.stop()
        self._thread.join()
        self._subscription.__exit__(None, None, None)
        self.app.close()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def set_aside(self) -> dict[str, str]:
        """Name → why, for each view not taking new events, with its next attempt."""
        now, reasons = time.monotonic(), {}
        for member in self.members:
            error, wait = member.error, member.retry_at - now  # one read of each: races
            if error is not None:
                then = f"; next attempt in {wait:.0f} s" if wait > 0 else ""
                reasons[member.name] = error + then
        return reasons

    # --- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self.is_interrupted.is_set():
                notifications = self._next_batch()
                batch = self._decode(notifications) if notifications else None
                if notifications:
                    self._seen = notifications[-1].id
                for member in self.members:
                    self._offer(member, batch)
        except StopIteration:
            pass  # stopped
        except BaseException as error:
            self._error = error
        finally:
            self.is_interrupted.set()

    def _next_batch(self) -> list[Notification]:
        source: Any = self._subscription.subscription
        if not hasattr(source, "next_batch"):  # another recorder's subscription
            return [next(source)]
        return list(source.next_batch(RUNNER_BATCH, timeout=IDLE_WAKE_SECONDS))

    def _decode(self, notifications: list[Notification]) -> EventBatch:
        return decode(self.app.name, self.app.mapper.to_domain_event, notifications)

    def _offer(self, member: Member, batch: EventBatch | None) -> None:
        if member.error is not None:
            if time.monotonic() >= member.retry_at:
                self._attempt(member, self._catch_up)
            return
        if batch is not None:
            self._attempt(member, lambda m: self._apply(m, batch))

    def _attempt(self, member: Member, step: Callable[[Member], None]) -> None:
        try:
            step(member)
        except Exception as error:  # this view only: set it aside, the others go on
            self._set_aside(member, error)
        else:
            if member.error is not None:
                log.info("projection %s runs again", member.name)
            member.error, member.delay = None, self._first_delay

    def _apply(self, member: Member, batch: EventBatch) -> None:
        todo = after(batch, member.position)
        if todo.events:
            apply(member.projection, todo)
            member.position = todo.events[-1][1].notification_id

    def _catch_up(self, member: Member) -> None:
        """Everything the view missed while set aside, page by page, from the store."""
        member.position = member.projection.view.max_tracking_id(self.app.name) or 0
        for page in self._pages(member.position, self._seen):
            self._apply(member, self._decode(page))

    def _pages(self, after_id: int, through: int) -> Iterator[list[Notification]]:
        while after_id < through and not self.is_interrupted.is_set():
            page = list(
                self.app.recorder.select_notifications(
                    start=after_id, limit=CATCH_UP_PAGE, stop=through, inclusive_of_start=False
                )
            )
            if not page:
                return
            yield page
            after_id = page[-1].id

    def _set_aside(self, member: Member, error: Exception) -> None:
        member.error = f"failed ({describe(error)})"
        member.retry_at = time.monotonic() + member.delay
        log.exception("projection %s failed; set aside for %.0f s", member.name, member.delay)
        member.delay = min(member.delay * 2, self._cap)


def after(batch: EventBatch, position: int) -> EventBatch:
    """The part of `batch` past `position`."""
    if not batch.events or batch.events[0][1].notification_id > position:
        return batch
    events = [(e, t) for e, t in batch.events if t.notification_id > position]
    keys = frozenset(str(event.originator_id) for event, _ in events)
    return EventBatch(events, keys, tuple(event for event, _ in events))
