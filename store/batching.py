"""Subscriptions that hand over every event already pulled, not one at a time.

The library's ListenNotifySubscription pulls notifications in lists (up to 500 per
select) into a queue and yields them one by one. A projection that applies one event per
transaction falls behind under load (measured: seconds of lag at 4 webhook clients), so
our runner takes everything that has arrived and applies it in one transaction.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ListenNotifySubscription, Notification, ShutDown
from eventsourcing.postgres import PostgresSubscription


class BatchReads(ListenNotifySubscription[Any]):
    def next_batch(self, limit: int, timeout: float | None = None) -> Sequence[Notification]:
        """Block for the next notification (at most `timeout` seconds, then return nothing),
        then add those already pulled, up to `limit`.

        Raises StopIteration once the subscription is stopped, like `next()`.
        """
        if timeout is not None and not self._has_pending(timeout):
            return []
        batch = [next(self)]
        while len(batch) < limit:
            if self._notifications_index < len(self._notifications):
                take = self._notifications[
                    self._notifications_index : self._notifications_index + limit - len(batch)
                ]
                self._notifications_index += len(take)
                batch.extend(take)
                continue
            if not self._take(block=False):
                break
        return batch

    def _has_pending(self, timeout: float) -> bool:
        if self._notifications_index < len(self._notifications) or self._has_been_stopped:
            return True  # next() hands over what is left, or raises StopIteration
        return self._take(block=True, timeout=timeout) or self._has_been_stopped

    def _take(self, block: bool, timeout: float | None = None) -> bool:
        """Move the next pulled list into place; False when none came."""
        try:
            self._notifications = self._notifications_queue.get(block, timeout)
        except (queue.Empty, ShutDown):
            return False
        self._notifications_queue.task_done()
        self._notifications_index = 0
        return True


class BatchingPostgresSubscription(BatchReads, PostgresSubscription):
    pass
