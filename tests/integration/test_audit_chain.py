"""The audit hash chain against real stores: linking in commit order, catching tampering
done directly in the database, exports that verify offline. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from itertools import pairwise
from urllib.parse import parse_qs, urlparse
from uuid import UUID

import psycopg
import pytest

from ledger.application import PaymentLedger, PaymentOrder
from ledger.audit import GENESIS, verify_export
from ledger.settings import Settings
from projections.audit_chain import NAME as CHAIN
from projections.audit_log import AuditLog
from projections.runtime import ReadModels

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
WAIT_SECONDS = 10.0


def order(i: int, provider: str = "toss", amount: int = 15000) -> PaymentOrder:
    return PaymentOrder(
        order_id=f"order-{i}", booking_id=f"booking-{i}", customer_id="cust-1",
        customer_name="김민수", trainer_id="trainer-1", booking_date="2026-12-01",
        amount=amount, currency="KRW", provider=provider,
    )  # fmt: skip


def scripted_run(ledger: PaymentLedger) -> dict[str, UUID]:
    """A completed-then-partly-refunded payment, a failed one, a cancelled one."""
    paid = ledger.initiate(order(1)).payment_id
    ledger.complete(paid, "pk-1", "card", NOW)
    ledger.refund(paid, "r-1", 5000, "customer asked", NOW)
    failed = ledger.initiate(order(2, "stripe")).payment_id
    ledger.fail(failed, "card_declined", "Your card was declined.", NOW)
    cancelled = ledger.initiate(order(3)).payment_id
    ledger.cancel(cancelled, "expired", NOW)
    return {"paid": paid, "failed": failed, "cancelled": cancelled}


def head(ledger: PaymentLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


def positions_of(ledger: PaymentLedger) -> list[int]:
    return [n.id for n in ledger.recorder.select_notifications(start=None, limit=1_000_000)]


# --- reaching into the database, as a dishonest operator would --------------------------


def _sql(
    database_url: str, statement: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """Run one statement on the event store's table, outside the application."""
    if database_url.startswith("sqlite"):
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn, conn:
            sql = statement.format(table="stored_events", position="rowid").replace("%s", "?")
            return conn.execute(sql, params).fetchall()
    parsed = urlparse(database_url)
    schema = parse_qs(parsed.query)["schema"][0]
    with psycopg.connect(parsed._replace(query="").geturl(), autocommit=True) as conn:
        table = f"{schema}.paymentledger_events"
        sql = statement.format(table=table, position="notification_id")
        cursor = conn.execute(sql, params)  # type: ignore[call-overload]
        return cursor.fetchall() if cursor.description else []


def stored_state(database_url: str, position: int) -> bytes:
    rows = _sql(database_url, "SELECT state FROM {table} WHERE {position} = %s", (position,))
    return bytes(rows[0][0])  # type: ignore[arg-type]


def alter_event(database_url: str, position: int, old: bytes, new: bytes) -> None:
    state = stored_state(database_url, position)
    assert old in state
    _sql(
        database_url,
        "UPDATE {table} SET state = %s WHERE {position} = %s",
        (state.replace(old, new, 1), position),
    )


def delete_event(database_url: str, position: int) -> None:
    _sql(database_url, "DELETE FROM {table} WHERE {position} = %s", (position,))


def swap_events(database_url: str, first: int, second: int) -> None:
    a, b = stored_state(database_url, first), stored_state(database_url, second)
    _sql(database_url, "UPDATE {table} SET state = %s WHERE {position} = %s", (b, first))
    _sql(database_url, "UPDATE {table} SET state = %s WHERE {position} = %s", (a, second))


def tamper(database_url: str, kind: str, positions: list[int]) -> int:
    """Alter, delete or swap stored events; returns the position verify must name."""
    if kind == "alter":
        alter_event(database_url, positions[0], b'"amount":15000', b'"amount":1500')
        return positions[0]
    if kind == "delete":
        delete_event(database_url, positions[3])
        return positions[3]
    swap_events(database_url, positions[4], positions[6])
    return positions[4]


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[PaymentLedger, ReadModels]]:
    """The ledger and running projections (the chain follower among them)."""
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    read_models = ReadModels(settings)
    read_models.start()
    yield ledger, read_models
    read_models.close()
    ledger.close()


def audit(store: tuple[PaymentLedger, ReadModels]) -> AuditLog:
    ledger, read_models = store
    read_models.wait(head(ledger), WAIT_SECONDS, names=(CHAIN,))
    return AuditLog(ledger, read_models.audit_chain)


# --- the tests ------------------------------------------------------------------------


def test_every_event_is_linked_once_in_commit_order(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, _ = store
    scripted_run(ledger)
    items = list(audit(store).stream())
    assert [i["position"] for i in items] == positions_of(ledger)
    assert items[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in pairwise(items))
    assert len({i["hash"] for i in items}) == len(items)
    verdict = audit(store).verify()
    assert (verdict.ok, verdict.events_checked) == (True, len(items))
    assert verdict.head_hash == items[-1]["hash"]


def test_the_chain_catches_up_on_events_written_while_it_was_stopped(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    try:
        scripted_run(ledger)
        read_models = ReadModels(settings)
        read_models.start()
        try:
            verdict = audit((ledger, read_models)).verify()
            assert (verdict.ok, verdict.events_checked) == (True, len(positions_of(ledger)))
        finally:
            read_models.close()
    finally:
        ledger.close()


def test_events_newer_than_the_chain_are_not_yet_chained_not_tampered(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    read_models = ReadModels(settings)
    try:
        read_models.start()
        ledger.initiate(order(1))
        log = audit((ledger, read_models))
        read_models.stop()
        ledger.initiate(order(2))
        verdict = log.verify()
        # Each payment: its Initiated and its order's Claimed.
        assert (verdict.ok, verdict.events_checked, verdict.unchained) == (True, 2, 2)
        assert [i["hash"] is None for i in log.page(0, 10)] == [False, False, True, True]
    finally:
        read_models.close()
        ledger.close()


@pytest.mark.parametrize("kind", ["alter", "delete", "swap"])
def test_tampering_in_the_database_fails_verify_at_that_position(
    store: tuple[PaymentLedger, ReadModels], database_url: str, kind: str
) -> None:
    ledger, _ = store
    scripted_run(ledger)
    log = audit(store)
    assert log.verify().ok
    before = positions_of(ledger)
    bad = tamper(database_url, kind, before)
    verdict = log.verify()
    assert (verdict.ok, verdict.first_bad_position) == (False, bad)
    assert verdict.events_checked == before.index(bad)  # everything before it is intact


def test_concurrent_writers_still_give_one_valid_chain(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, _ = store

    def pay(i: int) -> None:
        payment_id = ledger.initiate(order(i)).payment_id
        ledger.complete(payment_id, f"pk-{i}", "card", NOW)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(pay, range(40)))
    log = audit(store)
    verdict = log.verify()
    # Per payment: Initiated, its order's Claimed, Completed, the trainer's Sent and the
    # message Decided for the outbox.
    assert verdict.ok and verdict.events_checked == len(positions_of(ledger)) == 200
    assert [i["position"] for i in log.stream()] == positions_of(ledger)


def test_an_export_verifies_offline_and_a_one_byte_edit_does_not(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, _ = store
    scripted_run(ledger)
    lines = [json.dumps(item, ensure_ascii=False) for item in audit(store).stream()]
    assert verify_export(lines).ok
    assert verify_export(lines).events_checked == len(lines)

    edited = list(lines)
    refund = next(i for i, line in enumerate(lines) if "Payment.Refunded" in line)
    edited[refund] = lines[refund].replace('"amount": 5000', '"amount": 5001')
    assert edited[refund] != lines[refund]
    verdict = verify_export(edited)
    assert (verdict.ok, verdict.first_bad_position) == (
        False,
        json.loads(lines[refund])["position"],
    )


def test_an_export_after_a_position_is_anchored_at_its_first_prev_hash(
    store: tuple[PaymentLedger, ReadModels],
) -> None:
    ledger, _ = store
    scripted_run(ledger)
    items = list(audit(store).stream())
    tail = [json.dumps(i) for i in audit(store).stream(after=items[2]["position"])]
    verdict = verify_export(tail)
    assert verdict.ok and verdict.events_checked == len(items) - 3
    assert json.loads(tail[0])["prev_hash"] == items[2]["hash"]
