"""Wakes the leader's inbox processor when any process stores a delivery (PostgreSQL).

The webhook route wakes the processor of its own process; a delivery answered by a worker
that does not lead (`ledger serve --workers N`, or `ledger serve --no-projections` beside
`ledger project`) reaches the leader as the NOTIFY its INSERT sends (store/inbox.py). A
thread LISTENs on one connection of its own; when that connection is lost it reconnects,
and wakes every lane once listening again, for what was stored meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

log = logging.getLogger("ledger.inbox")

WAIT_SECONDS = 1.0  # how soon `stop` is noticed
RETRY_MAX_SECONDS = 30.0


class InboxWakeListener:
    """`start(on_delivery)`: `on_delivery(provider)` for each delivery stored, until `stop`.
    `on_delivery(None)` means "any provider" (after a reconnection)."""

    def __init__(self, datastore: PostgresDatastore, channel: str) -> None:
        given = datastore.pool.kwargs
        assert isinstance(given, dict)  # the library passes a dict
        self._connect_kwargs = {k: v for k, v in given.items() if k != "row_factory"}
        self._channel = channel
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_delivery: Callable[[str | None], None]) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(
            target=self._run, args=(on_delivery,), name="inbox-listen", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(WAIT_SECONDS * 5)
            self._thread = None

    def _interrupt(self) -> None:
        """Wake the listening thread now rather than at its next timeout: a process (or a
        test's app) stops without waiting a second for it."""
        try:
            with psycopg.connect(**self._connect_kwargs, autocommit=True) as conn:
                conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
        except psycopg.Error:
            pass  # the store is away: the thread notices within WAIT_SECONDS

    def _run(self, on_delivery: Callable[[str | None], None]) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                with self._listening() as conn:
                    failures = 0
                    on_delivery(None)
                    self._relay(conn, on_delivery)
            except Exception as error:  # the store is away: the processor's poll goes on
                failures += 1
                delay = min(WAIT_SECONDS * 2**failures, RETRY_MAX_SECONDS)
                log.warning("inbox listener lost its connection (%s: %s); again in %.0f s",
                            type(error).__name__, error, delay)  # fmt: skip
                self._stopped.wait(delay)

    def _listening(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(**self._connect_kwargs, autocommit=True)
        conn.execute(SQL("LISTEN {0}").format(Identifier(self._channel)))
        return conn

    def _relay(
        self, conn: psycopg.Connection[Any], on_delivery: Callable[[str | None], None]
    ) -> None:
        while not self._stopped.is_set():
            for notice in conn.notifies(timeout=WAIT_SECONDS):
                if self._stopped.is_set():
                    return  # the generator would wait out its timeout
                on_delivery(notice.payload)
