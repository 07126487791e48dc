"""Bulk history: genuine `Payment` aggregates (and the ledger's own reactions to them),
saved many per transaction through the ledger's recorder. No row is written to a read
model here: read models are built from these events by the projections (`ledger rebuild`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.orders import order
from benchmarks.recorders import settings_for
from ledger.application import PaymentLedger
from ledger.order import OrderClaim
from ledger.payment import Payment
from ledger.reactions import trainer_notices
from ledger.statement import statement_id

BATCH = 500  # payments per save(): one transaction, ~1,850 events
DAYS = 400  # outcomes spread over this many past days, so stats see many buckets
START = datetime.now(UTC).replace(microsecond=0)


def payment_with_outcome(prefix: str, n: int) -> Payment:
    """Payment `n` of a mix: 70% completed, 10% pending, 10% failed, 5% cancelled, 5% refunded."""
    provider = "toss" if n % 2 else "stripe"
    payment = Payment(**vars(order(prefix, n, provider)))
    at = START - timedelta(days=n % DAYS, minutes=n % 1440)
    kind = n % 20
    if kind < 14 or kind == 19:
        payment.complete(f"pay_{prefix}_{n}", "card", at)
    elif kind < 16:
        pass  # still pending
    elif kind < 18:
        payment.fail("CARD_DECLINED", "the card was declined", at)
    else:
        payment.cancel("checkout expired", at)
    if kind == 19:
        amount = payment.amount if n % 40 == 19 else payment.amount // 2
        payment.refund(f"refund_{n}", amount, "customer request", at + timedelta(hours=1))
    return payment


def load_history(
    ledger: PaymentLedger,
    prefix: str,
    start: int,
    stop: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Save payments `start`..`stop-1`, BATCH per transaction. Returns events appended."""
    events = 0
    for first in range(start, stop, BATCH):
        aggregates: list[Any] = []
        for n in range(first, min(first + BATCH, stop)):
            payment = payment_with_outcome(prefix, n)
            # What `initiate` saves with a payment (the order's claim) and what a command
            # saves with a completion (the trainer's notice).
            aggregates += [payment, OrderClaim.of(payment), *trainer_notices(payment)]
        events += sum(len(a.pending_events) for a in aggregates)
        ledger.save(*aggregates)
        if progress:
            progress(min(first + BATCH, stop) - start)
    return events


def load_history_in_parallel(url: str, prefix: str, start: int, stop: int, workers: int = 2) -> int:
    """`load_history` split over processes (building aggregates is CPU-bound Python; the
    appends themselves still queue on the recorder's lock). Returns events appended."""
    chunks = [(first, min(first + BATCH, stop)) for first in range(start, stop, BATCH)]
    if workers <= 1 or url.startswith("sqlite"):  # SQLite has one writer anyway
        return _load_chunks(url, prefix, chunks)
    spawn = multiprocessing.get_context("spawn")  # no fork of this process's pools and threads
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        shares = [chunks[i::workers] for i in range(workers)]
        return sum(pool.map(_load_chunks, [url] * workers, [prefix] * workers, shares))


def _load_chunks(url: str, prefix: str, chunks: list[tuple[int, int]]) -> int:
    ledger = PaymentLedger(env=settings_for(url).eventsourcing_env())
    try:
        return sum(load_history(ledger, prefix, first, stop) for first, stop in chunks)
    finally:
        ledger.close()


# One statement whose size does not change with the history: 40 sales of a trainer outside
# the loader's 200, in a past month, 10 of them partly refunded (50 lines). Loaded once,
# before the first size, so the statement read measures the history around it.
STATEMENT_TRAINER = "trainer-statement"
STATEMENT_MONTH = datetime(2025, 6, 10, 3, 0, tzinfo=UTC)  # noon in Seoul: June everywhere
STATEMENT_ID = statement_id(STATEMENT_TRAINER, "KRW", "2025-06-01")


def load_fixed_statement(ledger: PaymentLedger) -> int:
    """Save the fixed statement's payments in one transaction. Returns events appended."""
    aggregates: list[Any] = []
    for n in range(40):
        fields = vars(order("stmt", n, "toss")) | {"trainer_id": STATEMENT_TRAINER}
        payment = Payment(**(fields | {"currency": "KRW", "amount": 10_001 + 333 * n}))
        at = STATEMENT_MONTH + timedelta(minutes=n)
        payment.complete(f"pay_stmt_{n}", "card", at)
        if n % 4 == 0:
            payment.refund(f"refund_stmt_{n}", 3_333, "customer request", at + timedelta(hours=1))
        aggregates += [payment, OrderClaim.of(payment), *trainer_notices(payment)]
    events = sum(len(a.pending_events) for a in aggregates)
    ledger.save(*aggregates)
    return events
