"""What every read model shares: one SQL text for both stores, rows and tracking written
in one transaction, and the drop used by rebuilds.

A view is an `eventsourcing` TrackingRecorder, so the library's ProjectionRunner drives
it and `wait()` gives read-your-writes. SQL is written once with `:name` parameters and
portable types; the PostgreSQL backend rewrites the parameters to psycopg's style.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

Params = Mapping[str, Any]
Statement = tuple[str, Params]

_NAMED_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


class View(TrackingRecorder):
    """A read model: its tables (`ddl`), its writes (with tracking) and its reads."""

    table_names: ClassVar[tuple[str, ...]] = ()
    ddl: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def create_table(self) -> None: ...

    @abstractmethod
    def _transaction(self) -> Any: ...

    @abstractmethod
    def _execute(self, cursor: Any, sql: str, params: Params) -> None: ...

    @abstractmethod
    def _track(self, cursor: Any, tracking: Tracking) -> None: ...

    @property
    @abstractmethod
    def tracking_table(self) -> str: ...

    _batch_cursor: Any = None

    def write(self, tracking: Tracking, statements: Sequence[Statement]) -> None:
        """Apply one event: its row changes and its position, atomically.

        The tracking insert refuses a position already recorded, so an event processed
        twice rolls back instead of counting twice.
        """
        if self._batch_cursor is not None:
            self._apply(self._batch_cursor, tracking, statements)
            return
        with self._transaction() as cursor:
            self._apply(cursor, tracking, statements)

    def _apply(self, cursor: Any, tracking: Tracking, statements: Sequence[Statement]) -> None:
        for sql, params in statements:
            self._execute(cursor, sql, params)
        self._track(cursor, tracking)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many events' writes into one transaction (rebuilds; single thread only)."""
        with self._transaction() as cursor:
            self._batch_cursor = cursor
            try:
                yield
            finally:
                self._batch_cursor = None

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        with self._transaction() as cursor:
            self._execute(cursor, sql, params or {})
            return [dict(row) for row in cursor.fetchall()]

    def drop(self) -> None:
        """Remove this view's rows and position; `create_table()` makes it empty again."""
        with self._transaction() as cursor:
            for table in (*self.table_names, self.tracking_table):
                self._execute(cursor, f"DROP TABLE IF EXISTS {table}", {})


class SQLiteView(View, SQLiteTrackingRecorder):
    """SQLite backend. Each view has its own tracking table (the library shares one
    named `tracking` keyed by application, which cannot hold a position per view)."""

    view_name: ClassVar[str] = "view"

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        table = self.tracking_table
        self.insert_tracking_statement = (
            f"INSERT INTO {table} VALUES (:application_name, :notification_id) "
            "ON CONFLICT (application_name) DO UPDATE SET notification_id = :notification_id "
            f"WHERE {table}.notification_id < :notification_id RETURNING notification_id"
        )
        self.select_max_tracking_id_statement = (
            f"SELECT MAX(notification_id) FROM {table} WHERE application_name=?"
        )

    @property
    def tracking_table(self) -> str:
        return f"{self.view_name}_tracking"

    def construct_create_table_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.tracking_table} ("
            "application_name TEXT PRIMARY KEY, notification_id INTEGER)",
            *self.ddl,
        ]

    def create_table(self) -> None:
        self.create_table_statements = self.construct_create_table_statements()
        with self.datastore.transaction(commit=True) as cursor:
            self._create_table(cursor)

    def _create_table(self, c: Any) -> None:
        # Only our statements: the library's version migrates its shared `tracking` table.
        for statement in self.create_table_statements:
            c.execute(statement)

    def _check_has_multi_row_tracking_table(self, c: Any) -> None:
        return None

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            yield cursor

    def _execute(self, cursor: Any, sql: str, params: Params) -> None:
        cursor.execute(sql, params)

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)


class PostgresView(View, PostgresTrackingRecorder):
    """PostgreSQL backend: tables live in the store's schema beside the events."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(SQL(statement) for statement in self.ddl)  # type: ignore[misc]

    @property
    def tracking_table(self) -> str:
        return str(self.tracking_table_name)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            # Unqualified names in our SQL resolve to the store's schema.
            cursor.execute(
                SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema))
            )
            yield cursor

    def _execute(self, cursor: Any, sql: str, params: Params) -> None:
        cursor.execute(_NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%")), params)

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema))
            )
            for statement in self.sql_create_statements:
                cursor.execute(statement)
