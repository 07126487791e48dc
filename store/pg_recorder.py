"""The PostgreSQL event recorder, with each append in one round trip.

Selected by topic in `ledger.settings.postgres_env`; nothing in the domain imports it.

The library's recorder appends in a client-side transaction: BEGIN, LOCK TABLE ... IN
EXCLUSIVE MODE, NOTIFY, INSERT (sync), then COMMIT from the client. The lock is what keeps
notification ids in commit order (a reader never passes a gap that is filled later), but it
stays held while the server waits for the client's COMMIT — and under load that client is a
Python thread waiting for the GIL. Measured (benchmarks/README.md): at 16 connections the
lock holder spent most of its time "idle in transaction".

Here the same statements run inside one server-side function called in autocommit mode:
lock, notify, insert and the commit happen without waiting for the client, in one round
trip. Same table, same lock, same ids, same NOTIFY channel; a duplicate id or version still
raises IntegrityError, and nothing is committed with it.

Saves made concurrently in one process are appended together (store/group_commit.py): the
lock is held and the WAL flushed once per group instead of once per save.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from store.batching import BatchingPostgresSubscription
from store.ddl import schema_creation_lock
from store.group_commit import GroupCommit

Row = tuple[Any, int, str, bytes]  # originator id, version, topic, state

# The events arrive as four arrays, one per column: psycopg sends those in binary, where an
# array of the library's composite type was rendered as text by Python code (a third of the
# bulk loader's time, measured with py-spy).
_FUNCTION = (
    "CREATE OR REPLACE FUNCTION {schema}.{function}("
    "ids {id_type}[], versions bigint[], topics text[], states bytea[]) "
    "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
    "BEGIN "
    "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
    # Held until the statement's implicit transaction commits: ids stay in commit order.
    "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
    "  NOTIFY {channel}; "
    "  RETURN QUERY INSERT INTO {schema}.{table} "
    "    (originator_id, originator_version, topic, state) "
    "    SELECT * FROM unnest(ids, versions, topics, states) "
    "    RETURNING notification_id; "
    "END; $BODY$"
)


class OneRoundTripRecorder(PostgresApplicationRecorder):
    """PostgresApplicationRecorder whose appends are one autocommit statement, shared by
    concurrent saves (group commit)."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        function = f"{events_table_name}_append"
        self.check_identifier_length(function)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL(_FUNCTION).format(
                schema=schema,
                function=Identifier(function),
                id_type=Identifier(self.datastore.originator_id_type),
                lock_timeout=self.datastore.lock_timeout,
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self.append_statement = SQL(
            "SELECT notification_id FROM {schema}.{function}(%b, %b, %b, %b) AS notification_id"
        ).format(schema=schema, function=Identifier(function))
        # Concurrent saves of this process share statements (store/group_commit.py).
        self.group_commit: GroupCommit[Row] = GroupCommit(self._append)

    def create_table(self) -> None:
        with schema_creation_lock(self.datastore):
            super().create_table()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        return self.group_commit.append(self._rows(stored_events))

    @staticmethod
    def _rows(stored_events: Sequence[StoredEvent]) -> list[Row]:
        return [(e.originator_id, e.originator_version, e.topic, e.state) for e in stored_events]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _append(self, rows: Sequence[Row]) -> list[int]:
        columns = [list(column) for column in zip(*rows, strict=True)]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # the statement is its own transaction
            curs.execute(self.append_statement, columns, prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return BatchingPostgresSubscription(recorder=self, gt=gt, topics=topics)
