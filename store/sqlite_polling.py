"""A subscription for the SQLite store, which has no LISTEN/NOTIFY.

eventsourcing 9.5's SQLite application recorder raises NotImplementedError from
`subscribe()`; this recorder adds a polling one, so projection runners work the same on
both stores. It reuses the library's ListenNotifySubscription (pull in batches, queue,
stop, via store.batching) and replaces the database notification with a timer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from threading import Thread
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Subscription
from eventsourcing.sqlite import SQLiteApplicationRecorder

from store.batching import BatchReads

POLL_INTERVAL_SECONDS = 0.05


class PollingSubscription(BatchReads):
    def __init__(
        self,
        recorder: SQLiteApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        interval: float = POLL_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._interval = interval
        self._ticker = Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._has_been_stopped:
            self._has_been_notified.set()
            time.sleep(self._interval)

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._ticker.join()


class PollingSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return PollingSubscription(self, gt=gt, topics=topics)
