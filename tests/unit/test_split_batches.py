"""The split bookkeeping (projections/splits.py) reads a page's rows in one query per table,
however many trainers the page touches: the difference between a rebuild at thousands of
events per second and one at hundreds (benchmarks/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime

from eventsourcing.persistence import Tracking

from benchmarks.orders import order
from ledger.payment import Payment
from projections.base import Batch
from projections.rows import Rows
from projections.splits import SplitBook
from tests.unit.test_rows import InMemoryStore

BOOK = SplitBook("journal")
AT = datetime(2026, 11, 3, 3, 0, tzinfo=UTC)


def test_a_page_of_completions_for_many_trainers_reads_each_table_once() -> None:
    payments = []
    for n in range(40):  # 40 trainers (order n goes to trainer n % 200)
        payment = Payment(**vars(order("split", n)))
        payment.complete(f"pay_{n}", "card", AT)
        payments.append(payment)
    events = [event for p in payments for event in p.collect_events()]
    store = InMemoryStore({})
    rows = Rows(store, expected={str(p.id) for p in payments})
    batch = Batch(None, rows, events)
    sales = [
        BOOK.apply(batch, event, Tracking("ledger", position), 1500, 1000)
        for position, event in enumerate(events, start=1)
    ]
    assert sum(1 for moved in sales if moved is not None) == 40  # every sale posted
    assert sorted(store.tables) == ["journal_payments", "journal_rates"]
    assert len(store.selects[1]) == 40  # every trainer's rate, in the one query
