"""Subscriptions that hand over every event already pulled, not one at a time.

The library's ListenNotifySubscription pulls notifications in lists (up to 500 per
select) into a queue and yields them one by one. A projection that applies one event per
transaction falls behind under load (measured: seconds of lag at 4 webhook clients), so
our runners take everything that has arrived and apply it in one transaction.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ListenNotifySubscription, Notification, ShutDown
from eventsourcing.postgres import PostgresSubscription


class BatchReads(ListenNotifySubscription[Any]):
    def next_batch(self, limit: int) -> Sequence[Notification]:
        """Block for the next notification, then add those already pulled (up to `limit`).

        Raises StopIteration once the subscription is stopped, like `next()`.
        """
        batch = [next(self)]
        while len(batch) < limit:
            if self._notifications_index < len(self._notifications):
                take = self._notifications[
                    self._notifications_index : self._notifications_index + limit - len(batch)
                ]
                self._notifications_index += len(take)
                batch.extend(take)
                continue
            try:
                self._notifications = self._notifications_queue.get_nowait()
            except (queue.Empty, ShutDown):
                break
            self._notifications_queue.task_done()
            self._notifications_index = 0
        return batch


class BatchingPostgresSubscription(BatchReads, PostgresSubscription):
    pass
