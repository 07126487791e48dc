"""Keeps every projection's runner running, and says which are not (for /readyz).

A runner fails when its store goes away (its LISTEN connection is terminated, say), and
starting a new one fails for as long as the store stays away. The supervisor's thread
must outlive all of that: it tries again after a delay that doubles while the failures
go on (up to a cap), so an outage costs a few attempts and the views catch up on their
own once the store is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("ledger.projections")


class Runner(Protocol):
    """What the supervisor uses of a runner: whether it has ended, and `__exit__`, which
    stops it and re-raises what ended it."""

    @property
    def is_interrupted(self) -> threading.Event: ...

    def __exit__(self, *exc: object) -> None: ...


# The first retry after a failure; the delay doubles after each one, up to the cap.
RESTART_DELAY_SECONDS = 1.0
SUPERVISE_EVERY_SECONDS = 0.25


@dataclass
class _Slot:
    """One projection's runner, or why there is none and when to try again."""

    runner: Runner | None = None
    started_at: float = 0.0
    retry_at: float = 0.0
    delay: float = RESTART_DELAY_SECONDS
    error: str = "not started"


class Supervisor:
    def __init__(
        self,
        names: Sequence[str],
        start: Callable[[str], Runner],
        cap: float,
        first_delay: float = RESTART_DELAY_SECONDS,
        tick: float = SUPERVISE_EVERY_SECONDS,
    ) -> None:
        """`start(name)` returns a running runner or raises; the delay after a failure
        starts at `first_delay` and doubles up to `cap`; runners are checked every `tick`."""
        self._start, self._cap, self._first, self._tick = start, cap, first_delay, tick
        self._slots = {name: _Slot(delay=first_delay) for name in names}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for name in self._slots:
            self._try_start(name)
        self._thread = threading.Thread(target=self._supervise, name="projections", daemon=True)
        self._thread.start()

    def not_running(self) -> dict[str, str]:
        """Name → why, for each runner not running; empty until started."""
        if self._thread is None:
            return {}
        reasons: dict[str, str] = {}
        for name, slot in self._slots.items():
            runner = slot.runner  # one read: the supervisor's thread may replace it
            if runner is not None and _failed(runner):
                reasons[name] = "failed; restarting it"
            elif runner is None:
                wait = slot.retry_at - time.monotonic()
                then = f"; next attempt in {wait:.0f} s" if wait > 0 else ""
                reasons[name] = slot.error + then
        return reasons

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        for name, slot in self._slots.items():
            runner, slot.runner, slot.error = slot.runner, None, "stopped"
            try:
                if runner is not None:
                    runner.__exit__(None, None, None)
            except Exception:
                log.exception("projection %s stopped with an error", name)

    def _supervise(self) -> None:
        while not self._stopping.wait(self._tick):
            for name in self._slots:
                try:
                    self._tend(name)
                except Exception:  # supervision must outlive any failure, or the views die
                    log.exception("supervising projection %s failed", name)

    def _tend(self, name: str) -> None:
        slot = self._slots[name]
        if slot.runner is not None and _failed(slot.runner):
            self._retire(name, slot)
        due = slot.runner is None and time.monotonic() >= slot.retry_at
        if due and not self._stopping.is_set():
            self._try_start(name)

    def _try_start(self, name: str) -> None:
        slot = self._slots[name]
        try:
            slot.runner = self._start(name)
        except Exception as error:
            slot.error = f"cannot start ({describe(error)})"
            self._back_off(slot)
            log.warning("projection %s %s; next attempt in %.0f s",
                        name, slot.error, slot.retry_at - time.monotonic())  # fmt: skip
        else:
            slot.started_at = time.monotonic()

    def _retire(self, name: str, slot: _Slot) -> None:
        runner, slot.runner, slot.error = slot.runner, None, "failed"
        if time.monotonic() - slot.started_at >= self._cap:
            slot.delay = self._first  # it had been running well: back off anew
        try:
            if runner is not None:
                runner.__exit__(None, None, None)  # re-raises what ended the runner
        except Exception as error:
            slot.error = f"failed ({describe(error)})"
            log.exception("projection %s failed; restarting it", name)
        self._back_off(slot)

    def _back_off(self, slot: _Slot) -> None:
        slot.retry_at = time.monotonic() + slot.delay
        slot.delay = min(slot.delay * 2, self._cap)


def _failed(runner: Runner) -> bool:
    return runner.is_interrupted.is_set()


def describe(error: BaseException) -> str:
    """An error's type and first line, for logs and /readyz."""
    first_line = str(error).strip().splitlines()[:1]
    return ": ".join([type(error).__name__, *first_line])


class StallWatch:
    """For how long each view has been behind the head without advancing."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit = limit_seconds
        self._behind: dict[str, tuple[int, float]] = {}  # name → (position, first seen behind)

    def stalled_for(self, name: str, position: int, lag: int, now: float) -> float | None:
        """Seconds without progress while behind, once that reaches the limit."""
        if lag <= 0:
            self._behind.pop(name, None)
            return None
        seen = self._behind.get(name)
        if seen is None or seen[0] != position:
            seen = self._behind[name] = (position, now)
        waited = now - seen[1]
        return waited if waited >= self.limit else None
