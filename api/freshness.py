"""Reads that wait for the projections (`?min_position=`) without holding a thread.

A waiting read is an asyncio future. One task, running only while someone waits, reads the
views' positions (a one-row query per view, in a worker thread) once per tick and resolves
every waiter whose position all views have reached: N waiting reads cost one poll per tick.
Each used to block a threadpool thread for up to 5 s, and 40 of them starved webhooks and
`/healthz` (issue 11). Neither store notifies when a view's tracking advances (PostgreSQL's
NOTIFY is on event inserts), so a short poll it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping

# How long a read may wait for the projections to reach `min_position`.
TIMEOUT_SECONDS = 5.0
# Reads one client (bearer token) may have waiting at once; beyond it they are refused at
# once, so one client cannot pile up waiters however fast it sends.
WAITS_PER_CLIENT = 8
# Short against the timeout, long against a poll's cost (about a millisecond).
POLL_SECONDS = 0.025

Positions = Callable[[], Mapping[str, int]]


class TooManyWaitsError(Exception):
    """The client already has `waits_per_client` reads waiting."""


class Freshness:
    """The waiting reads of one process (one event loop)."""

    def __init__(
        self,
        positions: Positions,
        *,
        timeout: float = TIMEOUT_SECONDS,
        waits_per_client: int = WAITS_PER_CLIENT,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._positions = positions
        self.timeout = timeout
        self.waits_per_client = waits_per_client
        self.poll_seconds = poll_seconds
        self._waiters: dict[asyncio.Future[None], int] = {}
        self._per_client: Counter[str] = Counter()
        self._poller: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def wait(self, position: int, client: str) -> None:
        """Return once every view includes `position`.

        Raises TooManyWaitsError at once when `client` already has its share waiting, and
        TimeoutError when the views have not caught up within `timeout`.
        """
        if self._per_client[client] >= self.waits_per_client:
            raise TooManyWaitsError(client)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[future] = position
        self._per_client[client] += 1
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="freshness-poll")
        try:
            await asyncio.wait_for(future, self.timeout)
        finally:
            self._waiters.pop(future, None)
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]

    async def _poll(self) -> None:
        # The first poll is immediate: a lone read of a position already reached answers
        # at once. Waiters that arrive meanwhile are served by the next tick's poll.
        try:
            while self._waiters:
                try:
                    positions = await asyncio.to_thread(self._positions)
                except Exception as error:  # the store failed: so would the read, loudly
                    self._settle(math.inf, error)
                else:
                    self._settle(min(positions.values(), default=0))
                if self._waiters:
                    await asyncio.sleep(self.poll_seconds)
        finally:
            self._poller = None

    def _settle(self, reached: float, error: Exception | None = None) -> None:
        """Answer every waiter whose position is reached (all of them, with a failure)."""
        for future, position in list(self._waiters.items()):
            if position > reached:
                continue
            del self._waiters[future]
            if future.done():  # timed out, its waiter not yet resumed
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def client_key(authorization: str | None, host: str | None) -> str:
    """Whose share a wait counts against: the bearer token, hashed (so no secret is kept
    as a key), or else the client's address."""
    if authorization:
        return "token:" + hashlib.sha256(authorization.encode()).hexdigest()[:32]
    return f"host:{host or 'unknown'}"
