"""The one-round-trip PostgreSQL recorder keeps the library's guarantees: appends are atomic,
ids follow commit order (appends queue on the table lock), conflicts commit nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from ledger.application import PaymentLedger
from ledger.payment import Payment
from ledger.settings import Settings
from store.pg_recorder import OneRoundTripRecorder
from tests.conftest import event_topics
from tests.integration.test_ledger_store import order

# Only PostgreSQL appends through this recorder; SQLite has its own.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def ledger(database_url: str) -> Iterator[PaymentLedger]:
    settings = Settings(_env_file=None, database_url=database_url)
    app = PaymentLedger(env=settings.eventsourcing_env())
    yield app
    app.close()


def payment(order_id: str) -> Payment:
    return Payment(**vars(order(order_id)))


def test_postgres_ledgers_append_through_the_one_round_trip_recorder(
    ledger: PaymentLedger,
) -> None:
    assert isinstance(ledger.recorder, OneRoundTripRecorder)


def test_one_save_of_many_aggregates_gets_consecutive_positions_in_order(
    ledger: PaymentLedger,
) -> None:
    ledger.initiate(order("before"))
    recordings = ledger.save(payment("a"), payment("b"), payment("c"))
    positions = [r.notification.id for r in recordings]
    assert positions == list(range(positions[0], positions[0] + 3))
    stored = ledger.recorder.select_notifications(start=positions[0], limit=3)
    assert [n.originator_id for n in stored] == [r.domain_event.originator_id for r in recordings]


def test_a_save_that_collides_commits_none_of_its_events(ledger: PaymentLedger) -> None:
    ledger.initiate(order("taken"))
    with pytest.raises(IntegrityError):
        ledger.save(payment("fresh"), payment("taken"))
    assert event_topics(ledger) == ["Initiated"]
    assert Payment.create_id("stripe", "fresh") not in ledger.repository


def test_an_append_waits_for_a_concurrent_writer_to_commit(
    ledger: PaymentLedger, database_url: str
) -> None:
    # A plain INSERT would not wait for this lock mode; the recorder's EXCLUSIVE lock does,
    # which is what keeps a later commit from taking an earlier notification id.
    table = f"{parse_qs(urlparse(database_url).query)['schema'][0]}.paymentledger_events"
    blocker = psycopg.connect(database_url.split("?")[0])
    blocker.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
    done = threading.Event()

    def append() -> None:
        ledger.initiate(order("queued"))
        done.set()

    thread = threading.Thread(target=append)
    thread.start()
    try:
        wait_for_exclusive_lock_request(blocker, table)
        assert not done.is_set()
    finally:
        blocker.commit()
        blocker.close()
    thread.join(timeout=30)
    assert done.is_set()
    assert event_topics(ledger) == ["Initiated"]


def wait_for_exclusive_lock_request(conn: psycopg.Connection[Any], table: str) -> None:
    """Poll until some backend waits for an EXCLUSIVE lock on `table`."""
    deadline = time.monotonic() + 30
    with psycopg.connect(conn.info.dsn, autocommit=True) as observer:
        while time.monotonic() < deadline:
            row = observer.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'ExclusiveLock'"
                " AND relation = %s::regclass",
                (table,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError("the append never asked for the table lock")
