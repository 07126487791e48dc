"""Events through projections a batch at a time: what runners and rebuilds share.

A batch is decoded once and applied to a view in one transaction (`View.batch`). A rebuild
replays each page into all its views at once, one thread per view, so that one view's
Python work overlaps another's wait for PostgreSQL; the decoding is shared.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from eventsourcing.persistence import Notification, Tracking
from eventsourcing.projection import Projection

# Pages handed to a view's thread ahead of the one it is applying: bounds memory.
_AHEAD = 2


class EventBatch(NamedTuple):
    """Consecutive decoded events, with the keys (aggregate ids) of their rows."""

    events: list[tuple[Any, Tracking]]
    keys: frozenset[str]
    domain_events: tuple[Any, ...]


def decode(
    application_name: str,
    to_domain_event: Callable[[Notification], Any],
    notifications: Sequence[Notification],
) -> EventBatch:
    events = [(to_domain_event(n), Tracking(application_name, n.id)) for n in notifications]
    return EventBatch(
        events,
        frozenset(str(n.originator_id) for n in notifications),
        tuple(event for event, _ in events),
    )


def apply(projection: Projection[Any], batch: EventBatch) -> None:
    """The batch through the projection's handlers, in one view transaction."""
    process = projection.process_event  # bound once: a dispatching method rebinds per access
    with projection.view.batch(expected=batch.keys, events=batch.domain_events):
        for event, tracking in batch.events:
            process(event, tracking)


def apply_batch(
    projection: Projection[Any],
    application_name: str,
    to_domain_event: Callable[[Notification], Any],
    notifications: Sequence[Notification],
) -> None:
    apply(projection, decode(application_name, to_domain_event, notifications))


def replay(
    projections: Sequence[Projection[Any]],
    batches: Iterable[EventBatch],
    progress: Callable[[int], None],
) -> int:
    """Apply every batch, in order, to every projection; returns the events replayed.

    Each projection has its own thread and transactions; the first error stops the
    replay and is raised here once every thread has finished.
    """
    inboxes = [queue.Queue[EventBatch | None](maxsize=_AHEAD) for _ in projections]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_follow, args=(p, inbox, errors), name=f"rebuild-{p.name}")
        for p, inbox in zip(projections, inboxes, strict=True)
    ]
    for thread in threads:
        thread.start()
    count = 0
    try:
        for batch in batches:
            if errors:
                break
            for inbox in inboxes:
                inbox.put(batch)
            count += len(batch.events)
            progress(len(batch.events))
    finally:
        for inbox in inboxes:
            inbox.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return count


def _follow(
    projection: Projection[Any], inbox: queue.Queue[EventBatch | None], errors: list[BaseException]
) -> None:
    try:
        while (batch := inbox.get()) is not None:
            apply(projection, batch)
    except BaseException as error:
        errors.append(error)
        while inbox.get() is not None:  # keep taking, so the reader never blocks on us
            pass
