"""A batch's rows: read in one query, changed in memory, written once per table."""

from __future__ import annotations

from collections.abc import Sequence

from projections.rows import CounterTable, KeyedTable, Row, Rows

PAYMENTS = KeyedTable("payments", "id", ("id", "status"))
RATES = KeyedTable("rates", "trainer", ("trainer", "bps"), by_aggregate=False)
BUCKETS = CounterTable("buckets", ("day",), ("count", "net"))


class InMemoryStore:
    """A table store in memory that records each statement a batch makes."""

    def __init__(self, rows: dict[str, Row]) -> None:
        self.rows = rows
        self.selects: list[list[str]] = []
        self.tables: list[str] = []
        self.upserts: list[list[Row]] = []
        self.additions: list[list[Row]] = []

    def select_rows(self, table: KeyedTable, keys: Sequence[str]) -> list[Row]:
        self.selects.append(list(keys))
        self.tables.append(table.name)
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


def test_keys_announced_for_a_derived_table_are_read_together_with_the_first_miss() -> None:
    # A rebuild's page touches many trainers: one query for all of them, not one each.
    store = InMemoryStore({"t1": {"trainer": "t1", "bps": 1500}})
    rows = Rows(store, expected={"payment-1", "payment-2"})
    rows.expect(RATES, ["t1", "t2", "t3"])
    assert rows.get(RATES, "t2") is None
    assert rows.get(RATES, "t1") == {"trainer": "t1", "bps": 1500}
    assert rows.get(RATES, "t3") is None
    # The aggregate ids are not looked for in a table not keyed by them.
    assert store.selects == [["t1", "t2", "t3"]]


def test_rows_read_lists_what_the_batch_has_read_or_put() -> None:
    store = InMemoryStore({"a": {"id": "a", "status": "pending"}})
    rows = Rows(store, expected={"a", "gone"})
    rows.put(PAYMENTS, {"id": "b", "status": "pending"})
    rows.get(PAYMENTS, "a")
    assert sorted(r["id"] for r in rows.read(PAYMENTS)) == ["a", "b"]
