"""The waiter of `?min_position=` reads, against a fake of the views' positions."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from api.freshness import Freshness, TooManyWaitsError


class FakeViews:
    """Positions as the views would report them, counting polls and overlapping polls."""

    def __init__(self) -> None:
        self.position, self.polls, self.overlapping = 0, 0, 0
        self._lock = threading.Lock()
        self._busy = False

    def positions(self) -> dict[str, int]:
        with self._lock:
            self.overlapping += self._busy
            self._busy, self.polls = True, self.polls + 1
        time.sleep(0.005)  # a query's worth
        with self._lock:
            self._busy = False
        return {"payments_table": self.position, "revenue": self.position}


async def until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)


def test_a_hundred_waiters_share_one_poll_at_a_time_and_polling_stops_after() -> None:
    views = FakeViews()
    freshness = Freshness(views.positions, waits_per_client=1000, poll_seconds=0.01)

    async def scenario() -> None:
        waits = [asyncio.create_task(freshness.wait(7, f"c-{i % 3}")) for i in range(100)]
        await until(lambda: views.polls >= 3)
        assert freshness.waiting == 100
        views.position = 7
        await asyncio.gather(*waits)
        polls = views.polls
        await asyncio.sleep(0.1)  # ten ticks
        assert views.polls == polls, "nobody waits: nothing polls"

    asyncio.run(scenario())
    assert views.overlapping == 0


def test_a_reached_position_answers_at_the_first_poll() -> None:
    views = FakeViews()
    views.position = 5
    freshness = Freshness(views.positions, poll_seconds=60.0)
    asyncio.run(asyncio.wait_for(freshness.wait(5, "c"), 5.0))
    assert views.polls == 1


def test_waits_beyond_a_clients_share_are_refused_and_time_out_alone() -> None:
    views = FakeViews()
    freshness = Freshness(views.positions, waits_per_client=2, timeout=0.2, poll_seconds=0.01)

    async def scenario() -> None:
        mine = [asyncio.create_task(freshness.wait(1, "me")) for _ in range(2)]
        theirs = asyncio.create_task(freshness.wait(1, "them"))
        await until(lambda: freshness.waiting == 3)
        with pytest.raises(TooManyWaitsError):
            await freshness.wait(1, "me")
        for outcome in await asyncio.gather(*mine, theirs, return_exceptions=True):
            assert isinstance(outcome, TimeoutError)
        await freshness.wait(0, "me")  # its share is free again

    asyncio.run(scenario())


def test_a_store_failure_reaches_every_waiter() -> None:
    def broken() -> dict[str, int]:
        raise ConnectionError("store down")

    freshness = Freshness(broken)

    async def scenario() -> list[BaseException | None]:
        waits = [freshness.wait(1, "c") for _ in range(3)]
        return await asyncio.gather(*waits, return_exceptions=True)

    assert all(isinstance(e, ConnectionError) for e in asyncio.run(scenario()))
