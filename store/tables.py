"""Tables of the service's own in the event store's database (the webhook inbox, the
outbox, the contacts): one SQL text for both stores, one transaction per call, on the
ledger's schema, and their creation one process at a time.

SQL is written with `:name` parameters (SQLite's style); on PostgreSQL they become
psycopg's `%(name)s`. Strings go through projections/text.py's stored form, so text a
database refuses (NUL) survives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from projections.text import read_row, stored_row
from store.ddl import schema_creation_lock

_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=128)
def pg_sql(sql: str) -> str:
    """`:name` → psycopg's `%(name)s`."""
    return _NAMED.sub(r"%(\1)s", sql)


class StoreTables:
    """Base of a store of tables beside the events (SQLite or PostgreSQL)."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)

    def _create(self, statements: Iterable[str]) -> None:
        if isinstance(self.datastore, PostgresDatastore):
            # One process at a time creates a PostgreSQL schema's tables (store/ddl.py).
            with schema_creation_lock(self.datastore), self._cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
            return
        with self._cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._cursor() as cursor:
            self._run(cursor, sql, params)
            return [read_row(row) for row in cursor.fetchall()]

    def _run(self, cursor: Any, sql: str, params: dict[str, Any]) -> None:
        cursor.execute(pg_sql(sql) if self.postgres else sql, stored_row(params))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            if isinstance(self.datastore, PostgresDatastore):
                cursor.execute(
                    SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema))
                )
            yield cursor
