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
from projections.runtime import ReadModels
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
    assert event_topics(ledger) == ["Initiated", "Claimed"]
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
    assert event_topics(ledger) == ["Initiated", "Claimed"]


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


def test_concurrent_saves_are_each_stored_once_with_consecutive_positions(
    ledger: PaymentLedger,
) -> None:
    """Group commit: saves from 16 threads share statements, yet each save keeps its own
    consecutive positions and every event is stored exactly once."""
    results: list[list[int]] = []
    lock = threading.Lock()

    def save_many(thread: int) -> None:
        for n in range(15):
            recordings = ledger.save(payment(f"t{thread}-{n}-a"), payment(f"t{thread}-{n}-b"))
            with lock:
                results.append([r.notification.id for r in recordings])

    threads = [threading.Thread(target=save_many, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 16 * 15
    assert all(second == first + 1 for first, second in results)
    positions = sorted(p for pair in results for p in pair)
    stored = ledger.recorder.select_notifications(start=None, limit=10_000)
    assert [n.id for n in stored] == positions  # all there, none twice


def test_a_colliding_save_grouped_with_others_fails_alone(
    ledger: PaymentLedger, database_url: str
) -> None:
    """A group whose combined statement collides is appended save by save: only the
    colliding save fails, the others are stored."""
    ledger.initiate(order("taken"))
    table = f"{parse_qs(urlparse(database_url).query)['schema'][0]}.paymentledger_events"
    recorder = ledger.recorder
    assert isinstance(recorder, OneRoundTripRecorder)
    outcomes: dict[str, Any] = {}

    def save(name: str, *order_ids: str) -> None:
        try:
            outcomes[name] = ledger.save(*(payment(o) for o in order_ids))
        except IntegrityError as error:
            outcomes[name] = error

    blocker = psycopg.connect(database_url.split("?")[0])
    blocker.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
    # The leader's own statement waits on the lock while the next three queue behind it.
    threads = [threading.Thread(target=save, args=("leader", "lead"))]
    threads[0].start()
    try:
        wait_for_exclusive_lock_request(blocker, table)
        for name, order_ids in [
            ("fresh", ("f1", "f2")),
            ("clash", ("c1", "taken")),
            ("last", ("l1",)),
        ]:
            threads.append(threading.Thread(target=save, args=(name, *order_ids)))
            threads[-1].start()
        deadline = time.monotonic() + 30
        while recorder.group_commit.waiting < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorder.group_commit.waiting == 3
    finally:
        blocker.commit()
        blocker.close()
    for thread in threads:
        thread.join(timeout=30)
    assert isinstance(outcomes["clash"], IntegrityError)
    stored = [n.originator_id for n in recorder.select_notifications(start=None, limit=100)]
    for name, order_ids in [("leader", ("lead",)), ("fresh", ("f1", "f2")), ("last", ("l1",))]:
        assert [r.notification.id for r in outcomes[name]], name
        assert all(Payment.create_id("stripe", o) in stored for o in order_ids)
    assert Payment.create_id("stripe", "c1") not in stored
    assert stored.count(Payment.create_id("stripe", "taken")) == 1


STARTING = 4


def test_processes_starting_together_on_an_empty_schema_all_start(database_url: str) -> None:
    """`ledger serve` and `ledger project` (or several workers) may start at once on a new
    database: creating the tables, types and append function concurrently must not fail."""
    settings = Settings(_env_file=None, database_url=database_url)
    # Four at once: each opens a pool per view and the store's own, and the test server's
    # max_connections (100) is shared with what the rest of the suite leaves open.
    start = threading.Barrier(STARTING)
    errors: list[BaseException] = []

    def open_everything() -> None:
        start.wait()
        try:
            ledger = PaymentLedger(env=settings.eventsourcing_env())
            models = ReadModels(settings)
            models.close()
            ledger.close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=open_everything) for _ in range(STARTING)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
