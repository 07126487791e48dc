"""The library's PostgreSQL factory, whose datastore gives up once when the store is gone.

Selected by topic (PERSISTENCE_MODULE) in `ledger.settings.postgres_env`.

The pool waits POSTGRES_CONNECT_TIMEOUT for a connection, then raises PoolTimeout, which
the library wraps in the OperationalError that its `@retry` decorators (and ours in
store/pg_recorder.py) retry ten times: during an outage a request waited ten pool
timeouts, far beyond the 10 s Toss allows a webhook. A retry helps when a pooled
connection turns out dead (it is discarded, the next attempt gets a fresh one), not when
no connection came within the timeout. So that case raises the pool's own PoolTimeout,
which no retry decorator catches; the API answers it 503 (api/outage.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eventsourcing.persistence import OperationalError
from eventsourcing.postgres import PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg import Connection
from psycopg.rows import DictRow
from psycopg_pool import PoolTimeout


class FailFastDatastore(PostgresDatastore):
    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        try:
            with super().get_connection() as conn:
                yield conn
        except OperationalError as error:
            if isinstance(error.__cause__, PoolTimeout):
                raise error.__cause__ from None
            raise


class FailFastPostgresFactory(PostgresFactory):
    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # The library builds its datastore inline; the subclass only overrides a method.
        self.datastore.__class__ = FailFastDatastore
        timeout = self.env.get(self.POSTGRES_CONNECT_TIMEOUT)
        if timeout and isinstance(self.datastore.pool.kwargs, dict):
            # The same bound for the pool's own connection attempts (libpq's default is to
            # wait for the operating system, minutes for an unreachable host).
            self.datastore.pool.kwargs["connect_timeout"] = int(timeout)
