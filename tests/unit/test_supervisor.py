"""The projection supervisor outlives every failure of the runners it keeps running."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from projections.supervisor import Runner, Supervisor


class FakeRunner:
    """What the supervisor uses of a runner: its interrupted flag, and `__exit__`, which
    re-raises what ended it."""

    def __init__(self) -> None:
        self.is_interrupted = threading.Event()
        self.error: Exception | None = None

    def fail(self, error: Exception) -> None:
        self.error = error
        self.is_interrupted.set()

    def __exit__(self, *args: Any) -> None:
        if self.error is not None:
            raise self.error


class Starts:
    """A runner factory that raises `failures` times before each runner it returns."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.runners: list[FakeRunner] = []

    def __call__(self, name: str) -> Runner:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise RuntimeError("couldn't get a connection after 1.00 sec")
        self.runners.append(FakeRunner())
        return cast(Runner, self.runners[-1])


def until(condition: Callable[[], Any], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.01)


@pytest.fixture
def supervised() -> Iterator[Callable[[Starts], Supervisor]]:
    started: list[Supervisor] = []

    def supervise(starts: Starts) -> Supervisor:
        supervisor = Supervisor(["view"], starts, cap=0.05, first_delay=0.01, tick=0.005)
        started.append(supervisor)
        supervisor.start()
        return supervisor

    yield supervise
    for supervisor in started:
        supervisor.stop()


def test_a_runner_that_cannot_start_is_tried_again_until_it_runs(
    supervised: Callable[[Starts], Supervisor],
) -> None:
    starts = Starts(failures=5)
    supervisor = supervised(starts)
    assert (
        "cannot start (RuntimeError: couldn't get a connection" in supervisor.not_running()["view"]
    )
    until(lambda: not supervisor.not_running(), "the runner runs")
    assert starts.attempts == 6 and len(starts.runners) == 1


def test_a_runner_that_fails_is_restarted_and_its_error_reported_meanwhile(
    supervised: Callable[[Starts], Supervisor],
) -> None:
    starts = Starts(failures=0)
    supervisor = supervised(starts)
    starts.failures = 3  # the store went away with the runner
    starts.runners[0].fail(OSError("server closed the connection unexpectedly"))
    until(lambda: len(starts.runners) == 2, "a second runner")
    assert not supervisor.not_running()
    assert starts.attempts == 5


def test_supervision_stops_cleanly_while_a_runner_cannot_start(
    supervised: Callable[[Starts], Supervisor],
) -> None:
    starts = Starts(failures=10**9)
    supervisor = supervised(starts)
    until(lambda: starts.attempts >= 3, "several attempts")
    supervisor.stop()
    attempts = starts.attempts
    time.sleep(0.1)  # would be several attempts, were it still supervising
    assert starts.attempts == attempts
