"""One process at a time creates a schema's tables, types and functions.

`CREATE ... IF NOT EXISTS` is not safe concurrently in PostgreSQL: two sessions creating
the same table or type both pass the check and one fails on the catalog's unique index,
and two `CREATE OR REPLACE FUNCTION` fail with "tuple concurrently updated". That happens
when `ledger serve` and `ledger project` (or several workers) start together on a new
database, so creation takes a session advisory lock named after the schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.postgres import PostgresDatastore


@contextmanager
def schema_creation_lock(datastore: PostgresDatastore) -> Iterator[None]:
    key = f"ledger-ddl:{datastore.schema}"
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
