"""What every read model shares: rows and tracking written in one transaction per batch of
events (handlers change rows through `change()`, see projections/rows.py), one SQL text for
both stores, and the drop used by rebuilds.

A view is an `eventsourcing` TrackingRecorder, so the library's ProjectionRunner drives
it and `wait()` gives read-your-writes. SQL is written once with `:name` parameters and
portable types; the PostgreSQL backend rewrites the parameters to psycopg's style.
"""

from __future__ import annotations

import re
import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, ClassVar

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from projections.rows import PostgresRowStore, Rows, RowStore, SQLiteRowStore
from projections.text import read_row, stored_row
from store.ddl import schema_creation_lock

Params = Mapping[str, Any]
Statement = tuple[str, Params]

_NAMED_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=512)
def _psycopg_style(sql: str) -> str:
    """`:name` → `%(name)s` (and a literal % doubled); cached, the texts repeat per event."""
    return _NAMED_PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class Batch:
    """Consecutive events being applied to one view in one transaction."""

    def __init__(self, cursor: Any, rows: Rows, events: Sequence[Any] = ()) -> None:
        self.cursor = cursor
        self.rows = rows
        self.events = events  # the batch's domain events, for views that announce keys
        self.application_name = ""
        self.first: int | None = None
        self.last: int | None = None
        self.state: dict[str, Any] = {}  # what a view keeps between a batch's events

    def note(self, tracking: Tracking) -> None:
        position = tracking.notification_id
        if self.last is not None and position <= self.last:
            raise IntegrityError(f"event {position} arrived after {self.last} in one batch")
        if self.first is None:
            self.first, self.application_name = position, tracking.application_name
        self.last = position


class View(TrackingRecorder):
    """A read model: its tables (`ddl`), its writes (with tracking) and its reads."""

    table_names: ClassVar[tuple[str, ...]] = ()  # dropped and rebuilt from the events
    kept_tables: ClassVar[tuple[str, ...]] = ()  # written, never dropped (the outbox's)
    ddl: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The batch in progress belongs to the thread running it (a runner or a rebuild);
        # request threads reading the view never see it.
        self._local = threading.local()

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

    def write(self, tracking: Tracking, statements: Sequence[Statement]) -> None:
        """Apply one event: its row changes and its position, atomically.

        The tracking insert refuses a position already recorded, so an event processed
        twice rolls back instead of counting twice. Inside `batch()` the rows join the
        batch's transaction; outside one, the event is a batch of its own.
        """
        batch = self.current_batch()
        if batch is None:
            with self.batch():
                self.write(tracking, statements)
            return
        # Not through change(): every event a view does not use comes here, and a context
        # manager per event would cost ~5 % of a rebuild's CPU.
        self.join_batch(batch, tracking)
        for sql, params in statements:
            self._execute(batch.cursor, sql, stored_row(params))

    def execute(self, batch: Batch, sql: str, params: Params) -> None:
        """One statement in the batch's transaction (for rows no KeyedTable describes)."""
        self._execute(batch.cursor, sql, stored_row(params))

    def current_batch(self) -> Batch | None:
        return getattr(self._local, "batch", None)

    @contextmanager
    def change(self, tracking: Tracking) -> Iterator[Batch]:
        """One event's changes and its position, atomically: what a handler calls once.

        Yields the batch the event joins: the current one inside `batch()` (its rows are
        written when it ends), otherwise a batch of its own.
        """
        batch = self.current_batch()
        if batch is None:
            with self.batch() as own:
                self.join_batch(own, tracking)
                yield own
            return
        self.join_batch(batch, tracking)
        yield batch

    @contextmanager
    def batch(self, expected: Iterable[str] = (), events: Sequence[Any] = ()) -> Iterator[Batch]:
        """Apply many consecutive events in one transaction; the position is written for its
        first and last event, not per event.

        The runners use it for every run of available events, rebuilds for every page.
        The batch's first position is recorded before its rows, and only if the view's
        previous one is below it, so a batch that overlaps events already applied (a second
        runner, a restart racing the first) rolls back whole instead of applying any twice.
        `expected` and `events` let the first row read fetch every row the batch will need
        (projections/rows.py).
        """
        with self._transaction() as cursor, self._pipeline(cursor):
            self._relax_commit(cursor)
            batch = Batch(cursor, Rows(self._row_store(cursor), expected), events)
            self._local.batch = batch
            try:
                yield batch
                batch.rows.flush()
                self._track_batch(cursor, batch)
            finally:
                self._local.batch = None
        self.committed(batch)

    def committed(self, batch: Batch) -> None:
        """After a batch's transaction committed (the outbox wakes its worker here)."""

    def join_batch(self, batch: Batch, tracking: Tracking) -> None:
        if batch.first is None:
            # Claim the batch's first position before any row changes: a batch overlapping
            # events already applied is refused here, and on SQLite the transaction takes
            # the write lock before anything reads.
            self._track(batch.cursor, tracking)
        batch.note(tracking)

    def _track_batch(self, cursor: Any, batch: Batch) -> None:
        if batch.last != batch.first:
            self._execute(
                cursor,
                f"UPDATE {self.tracking_table} SET notification_id = :last "
                "WHERE application_name = :name",
                {"name": batch.application_name, "last": batch.last},
            )

    @contextmanager
    def _pipeline(self, cursor: Any) -> Iterator[None]:
        """Send a batch's statements without waiting for each answer (PostgreSQL)."""
        yield

    def _relax_commit(self, cursor: Any) -> None:
        """Let a batch's commit return before it is flushed to disk (PostgreSQL)."""

    @abstractmethod
    def _row_store(self, cursor: Any) -> RowStore: ...

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Rows as the events had their text (projections/text.py), for `params` given as
        the caller has it."""
        with self._transaction() as cursor:
            self._execute(cursor, sql, stored_row(params or {}))
            return [read_row(row) for row in cursor.fetchall()]

    def compact(self) -> None:
        """After a rebuild: give back the row versions the replay left behind and refresh
        the planner's statistics (PostgreSQL; SQLite updates rows in place)."""

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

    def _row_store(self, cursor: Any) -> RowStore:
        return SQLiteRowStore(cursor)


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
        cursor.execute(_psycopg_style(sql), params)

    @contextmanager
    def _pipeline(self, cursor: Any) -> Iterator[None]:
        # Row statements are sent back to back; only a fetch waits for the server.
        with cursor.connection.pipeline():
            yield

    def _track(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)

    def _relax_commit(self, cursor: Any) -> None:
        # Rows and position commit together, and the events are in the store (committed
        # synchronously): a server crash may lose the last fraction of a second of view
        # commits, rows and position alike, and the runner applies those events again.
        # Not waiting for the flush keeps view commits off the appends' WAL flushes.
        cursor.execute("SET LOCAL synchronous_commit TO off")

    def _row_store(self, cursor: Any) -> RowStore:
        return PostgresRowStore(cursor)

    def compact(self) -> None:
        # A replay rewrites the same few rows (revenue buckets) once per batch, thousands of
        # times: without this, stats reads scan the dead versions until autovacuum catches up;
        # the planner has no statistics for the new tables (measured at 1M payments: stats
        # 107 ms and a filtered page 1 s right after the rebuild; see benchmarks/README.md).
        with self.datastore.get_connection() as conn:
            assert conn.autocommit  # VACUUM cannot run in a transaction
            for table in self.table_names:
                conn.execute(
                    SQL("VACUUM (FULL, ANALYZE) {0}.{1}").format(
                        Identifier(self.datastore.schema), Identifier(table)
                    )
                )

    def create_table(self) -> None:
        with (
            schema_creation_lock(self.datastore),
            self.datastore.transaction(commit=True) as cursor,
        ):
            cursor.execute(
                SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema))
            )
            for statement in self.sql_create_statements:
                cursor.execute(statement)
