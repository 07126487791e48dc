"""Bulk history: genuine `Payment` aggregates (and the ledger's own reactions to them),
saved many per transaction through the ledger's recorder. No row is written to a read
model here: read models are built from these events by the projections (`ledger rebuild`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.orders import order
from ledger.application import PaymentLedger
from ledger.payment import Payment

BATCH = 500  # payments per save(): one transaction, ~1,300 events
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
            # The same reactions a command saves with a completion (the trainer's notice).
            aggregates += [payment, *PaymentLedger._reactions(payment)]
        events += sum(len(a.pending_events) for a in aggregates)
        ledger.save(*aggregates)
        if progress:
            progress(min(first + BATCH, stop) - start)
    return events
