"""The webhook route's one write, from the event loop: store a verified delivery, once.

On PostgreSQL an asyncio connection pool of its own sends the same `INSERT … ON CONFLICT
DO NOTHING` (with its NOTIFY) that `WebhookInbox.receive` sends, so acknowledging a delivery
costs no thread hop (a worker thread would wait for the GIL that the processor and
projections hold). On SQLite, whose driver has no asyncio API, the synchronous inbox runs
in a worker thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anyio import to_thread
from eventsourcing.postgres import PostgresDatastore
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from store.inbox import PG_INSERT_SQL, Received, WebhookInbox, delivery_id, delivery_row
from store.tables import pg_sql

# Deliveries wait for a connection rather than open more: the pool bounds what ingest
# takes of the server's max_connections, per process.
POOL_MIN, POOL_MAX = 1, 8


class InboxReceiver:
    """`await receive(...)`: the delivery is committed when it returns."""

    def __init__(self, inbox: WebhookInbox, pool_max: int = POOL_MAX) -> None:
        self.inbox = inbox
        self._pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        if isinstance(inbox.datastore, PostgresDatastore):
            self._pool = _async_pool(inbox.datastore, pool_max)

    async def open(self) -> None:
        if self._pool is not None:
            await self._pool.open(wait=False)  # a store that is down now may be up later

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def receive(
        self, provider: str, event_id: str, event_type: str | None, body: bytes, at: datetime
    ) -> Received:
        if self._pool is None:
            return await to_thread.run_sync(
                self.inbox.receive, provider, event_id, event_type, body, at
            )
        key = delivery_id(provider, event_id)
        params = delivery_row(key, provider, event_id, event_type, body, at, self.inbox.channel)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(pg_sql(PG_INSERT_SQL), params, prepare=True)
            inserted = await cursor.fetchone()
        return Received(key, fresh=inserted is not None)


def _async_pool(
    datastore: PostgresDatastore, pool_max: int
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """The datastore's connection settings, in autocommit, on the ledger's schema."""
    given = datastore.pool.kwargs
    assert isinstance(given, dict)  # the library passes a dict
    kwargs = {k: v for k, v in given.items() if k != "row_factory"}
    kwargs.update(autocommit=True, options=f"-c search_path={datastore.schema}")
    return AsyncConnectionPool(
        kwargs=kwargs,
        min_size=POOL_MIN,
        max_size=pool_max,
        open=False,
        timeout=datastore.pool.timeout,
    )
