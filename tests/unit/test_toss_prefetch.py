"""What a round's Toss read-ahead keeps (api/providers/toss_prefetch.py), with a recording
read function instead of the Toss API: no I/O."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from api.providers.toss import STATUS_EVENTS
from api.providers.toss_prefetch import PrefetchedReads
from ledger.errors import ProviderUnavailableError


class RecordingToss:
    """Answers `{"paymentKey": key, "read": n}`; refuses the keys in `down`."""

    def __init__(self, *down: str) -> None:
        self.down = set(down)
        self.keys: list[str] = []  # every key read, in order
        self._lock = threading.Lock()

    def get_payment(self, payment_key: str) -> dict[str, Any]:
        with self._lock:
            self.keys.append(payment_key)
            if payment_key in self.down:
                raise ProviderUnavailableError("Toss answered 500")
            return {"paymentKey": payment_key, "read": len(self.keys)}


def status_change(payment_key: Any, event_type: str = "PAYMENT_STATUS_CHANGED") -> bytes:
    return json.dumps({"eventType": event_type, "data": {"paymentKey": payment_key}}).encode()


def reads(toss: RecordingToss, concurrency: int = 4) -> PrefetchedReads:
    return PrefetchedReads(toss.get_payment, concurrency, STATUS_EVENTS)


def test_each_delivery_takes_its_answer_once_and_the_round_forgets_the_rest() -> None:
    toss = RecordingToss()
    prefetch = reads(toss)
    with prefetch.round([status_change("a"), status_change("b"), status_change("a")]):
        assert sorted(toss.keys) == ["a", "b"]  # "a" read once for its two deliveries
        first, second = prefetch.take("a"), prefetch.take("a")
        assert first is not None and first == second and first is not second
        assert prefetch.take("a") is None  # a third delivery of "a" reads Toss itself
    assert prefetch.take("b") is None  # not taken in its round: gone with it


def test_only_the_plain_payment_key_of_a_status_event_is_read_ahead() -> None:
    toss = RecordingToss()
    bodies = [
        status_change("a"),
        status_change("b", "CANCEL_STATUS_CHANGED"),
        json.dumps({"eventType": "CANCEL_STATUS_CHANGED", "data": {"transactionKey": "t"}}),
        json.dumps({"orderId": "o", "secret": "s", "status": "DONE"}),  # a deposit callback
        status_change("c", "PAYOUT_STATUS_CHANGED"),
        status_change(["not", "a", "key"]),
        status_change(""),
        json.dumps({"eventType": ["unhashable"], "data": {"paymentKey": "d"}}),
        "[1, 2]",
        "{not json",
    ]
    with reads(toss).round([b if isinstance(b, bytes) else b.encode() for b in bodies]):
        assert sorted(toss.keys) == ["a", "b"]


def test_a_read_ahead_that_failed_is_not_kept() -> None:
    toss = RecordingToss("down")
    prefetch = reads(toss)
    with prefetch.round([status_change("up"), status_change("down")]):
        assert prefetch.take("down") is None  # the in-order read asks Toss, meets the error
        assert prefetch.take("up") is not None


def test_answers_are_for_the_thread_that_ran_the_round() -> None:
    prefetch = reads(RecordingToss())
    elsewhere: list[object] = []
    with prefetch.round([status_change("a"), status_change("b")]):
        other = threading.Thread(target=lambda: elsewhere.append(prefetch.take("a")))
        other.start()
        other.join()
        assert elsewhere == [None]  # a request thread releasing a parked delivery, say
        assert prefetch.take("a") is not None


@pytest.mark.parametrize(
    ("concurrency", "keys"), [(1, ["a", "b", "c"]), (4, ["a"]), (4, ["a", "a"])]
)
def test_nothing_is_read_ahead_when_no_two_reads_could_overlap(
    concurrency: int, keys: list[str]
) -> None:
    toss = RecordingToss()
    prefetch = reads(toss, concurrency)
    with prefetch.round([status_change(k) for k in keys]):
        assert toss.keys == [] and prefetch.take("a") is None
