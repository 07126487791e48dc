"""Toss re-reads of one inbox round, made together before the round applies its deliveries
in order (api/inbox.py): a round of 100 status changes waits for a few bounded waves of
`GET /v1/payments/{paymentKey}` instead of 100 round trips one after another.

Only the plain `data.paymentKey` of a status event is read ahead: finding any other key (a
deposit callback's secret check, a cancel naming only its transactionKey) reads the ledger
and may refuse, so those stay on the in-order path. An answer read here is still read after
its delivery was stored, which is all that a re-read promises.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("ledger.toss")

Answer = dict[str, Any]


class PrefetchedReads:
    """Answers of `read(paymentKey)` taken on entering a round, for the thread running the
    round (the inbox's Toss lane) only: a parked delivery that a request thread releases
    meanwhile reads Toss itself."""

    def __init__(
        self, read: Callable[[str], Answer], concurrency: int, status_events: Collection[str]
    ) -> None:
        self._read, self._concurrency, self._status_events = read, concurrency, status_events
        self._local = threading.local()

    @contextmanager
    def round(self, bodies: Sequence[bytes]) -> Iterator[None]:
        keys = [key for key in map(self._key_of, bodies) if key is not None]
        self._local.answers = self._fetch(keys)
        try:
            yield
        finally:
            self._local.answers = {}  # a later round reads again

    def take(self, payment_key: str) -> Answer | None:
        """The answer read ahead for one delivery naming `payment_key`: each delivery that
        named it gets its own, after which (or if the read failed) None."""
        answers: dict[str, list[Answer]] = getattr(self._local, "answers", {})
        kept = answers.get(payment_key)
        return kept.pop() if kept else None

    def _fetch(self, keys: list[str]) -> dict[str, list[Answer]]:
        uses = Counter(keys)
        if self._concurrency < 2 or len(uses) < 2:
            return {}  # nothing would overlap: read in order, as before
        workers = min(self._concurrency, len(uses))
        with ThreadPoolExecutor(workers, thread_name_prefix="toss-prefetch") as pool:
            found = dict(zip(uses, pool.map(self._try_read, uses), strict=True))
        # One read per key, one copy of its answer per delivery naming it.
        return {
            key: [copy.deepcopy(answer) for _ in range(uses[key])]
            for key, answer in found.items()
            if answer is not None
        }

    def _try_read(self, payment_key: str) -> Answer | None:
        try:
            return self._read(payment_key)
        except Exception as error:  # not kept: the in-order read asks again, meets the error
            log.debug("toss prefetch of %s failed: %r", payment_key, error)
            return None

    def _key_of(self, body: bytes) -> str | None:
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return None  # refused in order, with its reason
        if not isinstance(message, dict):
            return None
        if str(message.get("eventType")) not in self._status_events:
            return None  # a deposit callback: its key is known once its secret is checked
        data = message.get("data")
        key = data.get("paymentKey") if isinstance(data, dict) else None
        return key if isinstance(key, str) and key else None
