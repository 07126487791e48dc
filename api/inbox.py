"""The inbox processor: applies stored webhook deliveries, per provider in the order received.

It runs in a daemon thread of the leader process (the one running projections and
reconciliation): `ledger serve` on its own, or `ledger project` beside `ledger serve
--no-projections`. Two processors on one store would still apply each delivery once (the
receipts decide), but could record a `duplicate` over the other's `applied`: run one.
A delivery another process stored wakes it through PostgreSQL's NOTIFY (store/inbox_wake.py);
its poll (LEDGER_INBOX_POLL_SECONDS) is the fallback.

Each delivery goes through its adapter's `apply_verified` (Stripe: dispatch the verified
event; Toss: re-read the payment from its API, which is the truth). Toss's re-reads of a
round are prefetched concurrently first (`Prefetching`, api/providers/toss_prefetch.py),
LEDGER_INBOX_FETCH_CONCURRENCY at a time, in the Toss lane alone, so Stripe's never wait;
the deliveries are then applied in order, and a re-read that failed is made again in order.
A provider that cannot be reached leaves the delivery `retrying`, tried again after a delay
doubling from LEDGER_INBOX_RETRY_SECONDS up to LEDGER_INBOX_RETRY_MAX_SECONDS, `failed`
after LEDGER_INBOX_MAX_ATTEMPTS; a refusal (the provider knows no such payment, say) is
`failed` at once, with its reason. A store outage stops the round without counting an
attempt: the delivery waits in the inbox until the store is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from api.errors import ApiError
from api.outage import UNREACHABLE
from api.providers.base import prefetched
from api.providers.registry import ProviderRegistry
from api.providers.webhooks import WebhookOutcome
from ledger.application import PaymentLedger
from ledger.errors import LedgerError, ProviderUnavailableError
from ledger.unit_of_work import BatchCollisionError, Item, NotBatchableError
from store.inbox import Result, WebhookInbox
from store.inbox_wake import InboxWakeListener

log = logging.getLogger("ledger.inbox")

ROUND = 100  # deliveries read per round
STOP_WAIT_SECONDS = 10.0


def _now() -> datetime:
    return datetime.now(UTC)


class InboxProcessor:
    """Applies what the inbox holds, one lane (thread) per provider, so that a provider
    whose API is slow (Toss re-reads each delivery) never holds up another's deliveries;
    within a lane, in the order received. `wake(provider)` after a delivery is stored."""

    def __init__(
        self,
        inbox: WebhookInbox,
        providers: ProviderRegistry,
        ledger: PaymentLedger,
        retry_seconds: float = 1.0,
        retry_max_seconds: float = 300.0,
        max_attempts: int = 8,
        poll_seconds: float = 1.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.inbox = inbox
        self.providers = providers
        self.ledger = ledger
        self.retry_seconds, self.retry_max_seconds = retry_seconds, retry_max_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds  # another process may have stored deliveries
        self._clock = clock
        self._wakeups = {name: threading.Event() for name in providers.names}
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: InboxWakeListener | None = None

    def wake(self, provider: str | None) -> None:
        """A delivery of `provider` (None: of any) was stored."""
        for name, wakeup in self._wakeups.items():
            if provider in (name, None):
                wakeup.set()

    def start(self) -> None:
        """Start applying (again, after `stop`: a process that leads again)."""
        if self._threads:
            return
        self._stopped.clear()
        self._listener = self.inbox.wake_listener()
        if self._listener is not None:
            self._listener.start(self.wake)
        for name in self._wakeups:
            thread = threading.Thread(target=self._run, args=(name,), name=f"inbox-{name}",
                                      daemon=True)  # fmt: skip
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopped.set()
        if self._listener is not None:
            self._listener.stop()
        for wakeup in self._wakeups.values():
            wakeup.set()
        for thread in self._threads:
            thread.join(STOP_WAIT_SECONDS)
        self._threads = []

    def process_due(self, provider: str) -> int:
        """Apply the provider's deliveries due now, round after round; returns how many."""
        done = 0
        while not self._stopped.is_set():
            rows = self.inbox.due(self._clock(), ROUND, provider)
            self.process_rows(rows)
            done += len(rows)
            if len(rows) < ROUND:
                return done
        return done

    def process(self, row: dict[str, Any]) -> Result:
        """Apply one stored delivery on its own and record what it did."""
        attempts = int(row["attempts"]) + 1
        result = self._apply(row, attempts)
        self.inbox.record(row["delivery_id"], result, attempts, self._clock())
        return result

    def process_rows(self, rows: list[dict[str, Any]]) -> None:
        """Apply deliveries in order, as many per transaction as go together, once their
        providers have read ahead what applying them will ask (Toss: the payments)."""
        with self._read_ahead(rows):
            start = 0
            while start < len(rows):
                done = self._batch(rows[start:])
                if not done:  # the first saves on its own (a parked delivery, say)
                    self.process(rows[start])
                    done = 1
                start += done

    @contextmanager
    def _read_ahead(self, rows: list[dict[str, Any]]) -> Iterator[None]:
        bodies: dict[str, list[bytes]] = {}
        for row in rows:  # one provider per round; grouped all the same
            bodies.setdefault(row["provider"], []).append(bytes(row["body"]))
        with ExitStack() as stack:
            for name, provider_bodies in bodies.items():
                adapter = self.providers.find(name)
                if adapter is not None:
                    stack.enter_context(prefetched(adapter, provider_bodies))
            yield  # the answers are forgotten with the round

    def _batch(self, rows: list[dict[str, Any]]) -> int:
        """Apply a prefix of `rows` in one save and record its results; returns its length.
        A collision (another writer, or a delivery applied meanwhile) falls back to one at a
        time, where each delivery's receipt decides."""
        try:
            results = self._apply_together(rows)
        except NotBatchableError as stop:
            return self._batch(rows[: stop.index]) if stop.index else 0
        except BatchCollisionError:
            for row in rows:
                self.process(row)
            return len(rows)
        attempts = [int(row["attempts"]) + 1 for row in rows]
        done = zip([row["delivery_id"] for row in rows], results, attempts, strict=True)
        self.inbox.record_many(list(done), self._clock())
        return len(rows)

    def _apply_together(self, rows: list[dict[str, Any]]) -> list[Result]:
        decided: list[tuple[Result, Item]] = []
        with self.ledger.batch() as work:
            for row in rows:
                with work.item() as item:
                    decided.append((self._apply(row, int(row["attempts"]) + 1), item))
        # Saved: each applied delivery's position is its last event's.
        return [
            replace(result, position=item.position) if result.position is None else result
            for result, item in decided
        ]

    def _apply(self, row: dict[str, Any], attempts: int) -> Result:
        adapter = self.providers.find(row["provider"])
        if adapter is None:
            return Result("failed", f"unknown_provider: no provider {row['provider']!r}")
        try:
            return _result(adapter.apply_verified(bytes(row["body"])))
        except UNREACHABLE:
            raise  # the store is away: the round stops, the delivery waits
        except ProviderUnavailableError as error:
            return self._retry(row, attempts, f"{error.code}: {error.message}")
        except (ApiError, LedgerError) as error:
            return Result("failed", f"{error.code}: {error.message}")

    def _retry(self, row: dict[str, Any], attempts: int, reason: str) -> Result:
        if attempts >= self.max_attempts:
            return Result("failed", f"{reason} (after {attempts} attempts)")
        delay = min(self.retry_seconds * 2 ** (attempts - 1), self.retry_max_seconds)
        log.warning("inbox %s %s: %s; again in %.0f s",
                    row["provider"], row["event_id"], reason, delay)  # fmt: skip
        return Result("retrying", reason, next_attempt_at=self._clock() + timedelta(seconds=delay))

    def _run(self, provider: str) -> None:
        wakeup, failures = self._wakeups[provider], 0
        while not self._stopped.is_set():
            wakeup.clear()  # before the round: a wake during it runs one more
            try:
                self.process_due(provider)
                failures = 0
                timeout = self._until_next_retry(provider)
            except Exception as error:  # the store is away, say: back off, keep running
                failures += 1
                timeout = min(self.poll_seconds * 2**failures, 30.0)
                log.warning("inbox %s round failed (%s: %s); again in %.0f s",
                            provider, type(error).__name__, error, timeout)  # fmt: skip
            wakeup.wait(timeout)

    def _until_next_retry(self, provider: str) -> float:
        due = self.inbox.next_due_at(provider)
        if due is None:
            return self.poll_seconds
        return max(0.0, min((due - self._clock()).total_seconds(), self.poll_seconds))


def _result(outcome: WebhookOutcome) -> Result:
    payment = str(outcome.payment_id) if outcome.payment_id else None
    return Result(outcome.outcome, outcome.reason, payment, outcome.status, outcome.position)
