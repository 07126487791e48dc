"""Group commit's bookkeeping, with a stand-in statement: who shares a statement, which
positions each caller gets back, and who sees an error."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence

import pytest
from eventsourcing.persistence import IntegrityError

from store.group_commit import GroupCommit


class Statements:
    """Records each statement's items; the first one waits until released, so that the
    callers arriving meanwhile queue up as one group."""

    def __init__(self, fail: Callable[[list[str]], BaseException | None] = lambda _: None):
        self.calls: list[list[str]] = []
        self.release = threading.Event()
        self._positions = itertools.count(1)
        self._fail = fail

    def __call__(self, items: Sequence[str]) -> list[int]:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.release.wait(10)
        error = self._fail(list(items))
        if error is not None:
            raise error
        return [next(self._positions) for _ in items]


def line_up(statements: Statements, requests: dict[str, list[str]]) -> dict[str, object]:
    """A first caller blocks in its statement; `requests` queue behind it; then release."""
    group = GroupCommit(statements)
    outcomes: dict[str, object] = {}

    def call(name: str, items: list[str]) -> None:
        try:
            outcomes[name] = group.append(items)
        except BaseException as error:
            outcomes[name] = error

    threads = [threading.Thread(target=call, args=("first", ["x"]))]
    threads[0].start()
    deadline = time.monotonic() + 10
    while not statements.calls and time.monotonic() < deadline:
        time.sleep(0.001)
    for name, items in requests.items():
        threads.append(threading.Thread(target=call, args=(name, items)))
        threads[-1].start()
    while group.waiting < len(requests) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert group.waiting == len(requests)
    statements.release.set()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_callers_queued_together_share_one_statement_and_get_their_own_positions() -> None:
    statements = Statements()
    requests = {"b": ["b1", "b2"], "c": ["c1"], "d": ["d1", "d2", "d3"]}
    outcomes = line_up(statements, requests)
    assert outcomes["first"] == [1]
    assert len(statements.calls) == 2  # the three queued callers went in one statement
    combined = statements.calls[1]
    assert sorted(combined) == sorted(item for items in requests.values() for item in items)
    for name, items in requests.items():
        positions = outcomes[name]
        assert isinstance(positions, list)
        # Position p was given to the (p-2)th item of the combined statement.
        assert [combined[p - 2] for p in positions] == items


def test_a_collision_in_a_group_is_retried_caller_by_caller_and_fails_only_its_caller() -> None:
    statements = Statements(
        fail=lambda items: IntegrityError("duplicate version") if "taken" in items else None
    )
    outcomes = line_up(statements, {"ok": ["o1"], "clash": ["c1", "taken"], "ok2": ["o2"]})
    assert isinstance(outcomes["clash"], IntegrityError)
    assert isinstance(outcomes["ok"], list) and isinstance(outcomes["ok2"], list)
    assert sorted(map(tuple, statements.calls[2:])) == [("c1", "taken"), ("o1",), ("o2",)]


def test_another_error_of_the_shared_statement_reaches_every_caller_in_the_group() -> None:
    statements = Statements(
        fail=lambda items: OSError("connection lost") if len(items) > 1 else None
    )
    outcomes = line_up(statements, {"a": ["a1"], "b": ["b1"]})
    assert outcomes["first"] == [1]
    assert all(isinstance(outcomes[name], OSError) for name in ("a", "b"))
    assert len(statements.calls) == 2  # not retried one by one: it may not be a conflict


def test_a_lone_caller_is_not_delayed_or_grouped() -> None:
    statements = Statements()
    statements.release.set()
    group = GroupCommit(statements)
    assert [group.append(["a"]), group.append(["b", "c"])] == [[1], [2, 3]]
    assert statements.calls == [["a"], ["b", "c"]]
    failing = Statements(fail=lambda _: IntegrityError("x"))
    failing.release.set()
    with pytest.raises(IntegrityError):
        GroupCommit(failing).append(["z"])
