"""Rows a batch reads and changes in memory, written back once when the batch ends.

A handler takes the current row of the aggregate its event belongs to, computes the new one
in Python and puts it back; counters (the revenue buckets) receive amounts to add. When the
batch ends, each table gets one upsert for all of its changed rows. A rebuild's page of
1,000 events, or a runner's queue of them, thus costs a few statements per table instead of
one to four per event (benchmarks/README.md, change 6).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from psycopg.types.json import Jsonb

from projections.text import read_row, stored_row, to_column

Row = dict[str, Any]


@dataclass(frozen=True)
class KeyedTable:
    """A table with one row per key: an aggregate's id, or (`by_aggregate` False) a key
    that handlers derive (a trainer's statement, a refund), announced with `Rows.expect`."""

    name: str
    key: str
    columns: tuple[str, ...]
    by_aggregate: bool = True


@dataclass(frozen=True)
class CounterTable:
    """Sums under a composite key. `amounts[0]` counts members: a row left with none is
    deleted, so a bucket exists only while something is in it."""

    name: str
    keys: tuple[str, ...]
    amounts: tuple[str, ...]


class RowStore(Protocol):
    """What a view's backend does for `Rows`, inside the batch's transaction."""

    def select_rows(self, table: KeyedTable, keys: Sequence[str]) -> list[Row]: ...

    def upsert_rows(self, table: KeyedTable, rows: Sequence[Row]) -> None: ...

    def add_to_counters(self, table: CounterTable, rows: Sequence[Row]) -> None: ...


class Rows:
    """One batch's view of its tables: rows read once, changed in memory, written at the end.

    `expected` holds the keys the batch's events belong to, so that the first row read from
    a table keyed by aggregate fetches all of them in one query; keys of other tables are
    announced with `expect` before they are asked for. A key neither expected nor announced
    is fetched when asked for (one query each: the slow path a rebuild must not take).
    Handlers see text as the events hold it; the stores get its stored form
    (projections/text.py), so no character an event may carry can fail a batch.
    """

    def __init__(self, store: RowStore, expected: Iterable[str] = ()) -> None:
        self._store = store
        self.expected = frozenset(expected)
        self._announced: dict[str, set[str]] = {}  # keys to fetch with the next miss
        self._cached: dict[str, dict[str, Row | None]] = {}
        self._changed: dict[KeyedTable, dict[str, Row]] = {}
        self._sums: dict[CounterTable, dict[tuple[Any, ...], list[int]]] = {}

    def get(self, table: KeyedTable, key: str) -> Row | None:
        """The row as this batch sees it (None if there is none). Change it only via `put`."""
        cached = self._cache(table)
        if key not in cached:
            wanted = sorted(({key} | self._announced.pop(table.name, set())) - cached.keys())
            stored = self._store.select_rows(table, [to_column(k) for k in wanted])
            found = {row[table.key]: row for row in map(read_row, stored)}
            cached.update((k, found.get(k)) for k in wanted)
        row = cached[key]
        return dict(row) if row is not None else None

    def expect(self, table: KeyedTable, keys: Iterable[str]) -> None:
        """Fetch these keys' rows together, with the next one asked for that is not read yet."""
        cached = self._cache(table)
        self._announced.setdefault(table.name, set()).update(k for k in keys if k not in cached)

    def read(self, table: KeyedTable) -> list[Row]:
        """The rows of `table` this batch has read or put so far (copies)."""
        return [dict(row) for row in self._cached.get(table.name, {}).values() if row is not None]

    def put(self, table: KeyedTable, row: Row) -> None:
        """`row` holds every column of `table` (and nothing else)."""
        key = row[table.key]
        self._cache(table)[key] = row
        self._changed.setdefault(table, {})[key] = row

    def _cache(self, table: KeyedTable) -> dict[str, Row | None]:
        cached = self._cached.get(table.name)
        if cached is None:
            cached = self._cached[table.name] = {}
            if table.by_aggregate:
                self._announced[table.name] = set(self.expected)
        return cached

    def add(self, table: CounterTable, key: tuple[Any, ...], *amounts: int) -> None:
        sums = self._sums.setdefault(table, {}).setdefault(key, [0] * len(table.amounts))
        for i, amount in enumerate(amounts):
            sums[i] += amount

    def flush(self) -> None:
        """Write every changed row and every non-zero sum (the batch then records its
        position, in the same transaction)."""
        for keyed, rows in self._changed.items():
            self._store.upsert_rows(keyed, [stored_row(row) for row in rows.values()])
        for counter, sums in self._sums.items():
            deltas = [
                stored_row(
                    dict(zip((*counter.keys, *counter.amounts), (*key, *amounts), strict=True))
                )
                for key, amounts in sums.items()
                if any(amounts)
            ]
            if deltas:
                self._store.add_to_counters(counter, deltas)
        self._changed.clear()
        self._sums.clear()


class SQLiteRowStore:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def select_rows(self, table: KeyedTable, keys: Sequence[str]) -> list[Row]:
        self._cursor.execute(
            f"SELECT {', '.join(table.columns)} FROM {table.name} "
            f"WHERE {table.key} IN (SELECT value FROM json_each(?))",
            (json.dumps(list(keys)),),
        )
        return [dict(row) for row in self._cursor.fetchall()]

    def upsert_rows(self, table: KeyedTable, rows: Sequence[Row]) -> None:
        self._cursor.executemany(_upsert_sql(table, f"VALUES ({_named(table.columns)})"), rows)

    def add_to_counters(self, table: CounterTable, rows: Sequence[Row]) -> None:
        columns = (*table.keys, *table.amounts)
        self._cursor.executemany(_add_sql(table, f"VALUES ({_named(columns)})"), rows)
        matches = " AND ".join(f"{k} = :{k}" for k in table.keys)
        self._cursor.executemany(
            f"DELETE FROM {table.name} WHERE {matches} AND {table.amounts[0]} = 0", rows
        )


class PostgresRowStore:
    """A batch's rows travel as one JSON array, typed by the table's own row type."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def select_rows(self, table: KeyedTable, keys: Sequence[str]) -> list[Row]:
        self._cursor.execute(
            f"SELECT {', '.join(table.columns)} FROM {table.name} WHERE {table.key} = ANY(%s)",
            (list(keys),),
        )
        return [dict(row) for row in self._cursor.fetchall()]

    def upsert_rows(self, table: KeyedTable, rows: Sequence[Row]) -> None:
        source = _from_json(table.name, table.columns)
        self._cursor.execute(_upsert_sql(table, source), (Jsonb(rows),))

    def add_to_counters(self, table: CounterTable, rows: Sequence[Row]) -> None:
        deltas = Jsonb(rows)
        source = _from_json(table.name, (*table.keys, *table.amounts))
        self._cursor.execute(_add_sql(table, source), (deltas,))
        matches = " AND ".join(f"t.{k} = d.{k}" for k in table.keys)
        self._cursor.execute(
            f"DELETE FROM {table.name} AS t USING jsonb_populate_recordset(NULL::{table.name}, %s) "
            f"AS d WHERE {matches} AND t.{table.amounts[0]} = 0",
            (deltas,),
        )


def _named(columns: Sequence[str]) -> str:
    return ", ".join(f":{c}" for c in columns)


def _from_json(table: str, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(columns)} FROM jsonb_populate_recordset(NULL::{table}, %s)"


@lru_cache(maxsize=64)
def _upsert_sql(table: KeyedTable, source: str) -> str:
    """Insert the rows of `source`, or replace every column of the row with the same key."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.columns if c != table.key)
    return (
        f"INSERT INTO {table.name} ({', '.join(table.columns)}) {source} "
        f"ON CONFLICT ({table.key}) DO UPDATE SET {updates}"
    )


@lru_cache(maxsize=64)
def _add_sql(table: CounterTable, source: str) -> str:
    """Add the amounts of `source` to the rows with the same keys (new keys start at zero)."""
    sums = ", ".join(f"{a} = {table.name}.{a} + excluded.{a}" for a in table.amounts)
    return (
        f"INSERT INTO {table.name} ({', '.join((*table.keys, *table.amounts))}) {source} "
        f"ON CONFLICT ({', '.join(table.keys)}) DO UPDATE SET {sums}"
    )
