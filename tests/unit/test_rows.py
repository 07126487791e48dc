"""A batch's rows: read in one query, changed in memory, written once per table."""

from __future__ import annotations

from collections.abc import Sequence

from projections.rows import CounterTable, KeyedTable, Row, Rows

PAYMENTS = KeyedTable("payments", "id", ("id", "status"))
BUCKETS = CounterTable("buckets", ("day",), ("count", "net"))


class InMemoryStore:
    """A table store in memory that records each statement a batch makes."""

    def __init__(self, rows: dict[str, Row]) -> None:
        self.rows = rows
        self.selects: list[list[str]] = []
        self.upserts: list[list[Row]] = []
        self.additions: list[list[Row]] = []

    def select_rows(self, table: KeyedTable, keys: Sequence[str]) -> list[Row]:
        self.selects.append(list(keys))
        return [dict(self.rows[k]) for k in keys if k in self.rows]

    def upsert_rows(self, table: KeyedTable, rows: Sequence[Row]) -> None:
        self.upserts.append(list(rows))

    def add_to_counters(self, table: CounterTable, rows: Sequence[Row]) -> None:
        self.additions.append(list(rows))


def test_the_rows_a_batch_expects_are_read_in_one_query_and_written_in_one() -> None:
    store = InMemoryStore({"a": {"id": "a", "status": "pending"}})
    rows = Rows(store, expected={"a", "b", "c"})
    rows.put(PAYMENTS, {"id": "b", "status": "pending"})  # created in this batch
    for key in ("a", "b"):
        row = rows.get(PAYMENTS, key)
        assert row is not None
        rows.put(PAYMENTS, {**row, "status": "completed"})
    assert rows.get(PAYMENTS, "c") is None
    assert store.selects == [["a", "c"]]  # once, and not for the row the batch created
    rows.flush()
    assert store.upserts == [
        [{"id": "b", "status": "completed"}, {"id": "a", "status": "completed"}]
    ]


def test_a_key_the_batch_did_not_expect_is_still_read() -> None:
    store = InMemoryStore({"z": {"id": "z", "status": "failed"}})
    rows = Rows(store, expected={"a"})
    assert rows.get(PAYMENTS, "z") == {"id": "z", "status": "failed"}
    assert store.selects == [["a", "z"]]


def test_a_row_read_is_a_copy_until_it_is_put_back() -> None:
    rows = Rows(InMemoryStore({"a": {"id": "a", "status": "pending"}}))
    first = rows.get(PAYMENTS, "a")
    assert first is not None
    first["status"] = "changed without put"
    assert rows.get(PAYMENTS, "a") == {"id": "a", "status": "pending"}


def test_counter_changes_that_cancel_out_are_not_written() -> None:
    store = InMemoryStore({})
    rows = Rows(store)
    rows.add(BUCKETS, ("2026-12-01",), 1, 500)  # a payment enters a bucket...
    rows.add(BUCKETS, ("2026-12-01",), -1, -500)  # ...and leaves it in the same batch
    rows.add(BUCKETS, ("2026-12-02",), 1, 700)
    rows.flush()
    assert store.additions == [[{"day": "2026-12-02", "count": 1, "net": 700}]]
