"""Which process runs the leader's jobs: the projection runners, the webhook inbox's processor
and the reconciliation loop.

On PostgreSQL, whichever process holds a session advisory lock named after the store's schema
(`ledger serve --workers N` starts N candidates, `ledger project` is one more): the others serve
requests only, and try again every LOCK_RETRY_SECONDS, so that one takes over when the leader
stops. The lock lives on one pooled connection held for as long as the process leads; if that
connection breaks, the lock is gone with it, so the processor and the reconciliation loop stop
before another process can take them (the projections keep running: a view applies each event
once whoever runs it). On SQLite there is one process, and it leads.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from eventsourcing.postgres import PostgresDatastore

from api.deps import Services
from api.reconcile import ReconcileLoop, reconcile_loop

log = logging.getLogger("ledger.leader")

LOCK_RETRY_SECONDS = 2.0
LEAD_ENV = "LEDGER_SERVE_LEAD"  # `ledger serve --workers N --no-projections` sets it to 0
STOP_WAIT_SECONDS = 15.0


class Lock(Protocol):
    def acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...


class OneProcess:
    """SQLite: the store is a file one process serves."""

    def acquire(self) -> bool:
        return True

    def held(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of the store's pool."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.key = f"ledger-leader:{datastore.schema}"
        self._conn: Any = None

    def acquire(self) -> bool:
        conn = self.datastore.pool.getconn()
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.key,)).fetchone()
        except Exception:
            self.datastore.pool.putconn(conn)
            raise
        if row is not None and next(iter(row.values())):
            self._conn = conn
            return True
        self.datastore.pool.putconn(conn)
        return False

    def held(self) -> bool:
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self.key,))
        except Exception:  # a broken connection holds no lock any more
            log.warning("leader lock: connection lost before release")
        self.datastore.pool.putconn(conn)


def lock_for(services: Services) -> Lock:
    datastore = services.inbox.datastore
    return AdvisoryLock(datastore) if isinstance(datastore, PostgresDatastore) else OneProcess()


class Leadership:
    """Runs the leader's jobs while this process holds the lock."""

    def __init__(self, services: Services, lock: Lock | None = None) -> None:
        self.services = services
        self.lock = lock or lock_for(services)
        self.leading = False
        self._projecting = False
        self._reconciling: ReconcileLoop | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)

    def start(self) -> None:
        """Try once now (so that a lone process leads from its first request), then keep
        trying in the background."""
        self._attempt()
        self._thread.start()

    def stop(self) -> None:
        """Stop the processor and the loop and give up the lock (the caller closes the
        read models, which stops the projections)."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT_SECONDS)
        self._resign()

    def _run(self) -> None:
        while not self._stopped.wait(LOCK_RETRY_SECONDS):
            self._attempt()

    def _attempt(self) -> None:
        try:
            if not self.leading and self.lock.acquire():
                self._lead()
            elif self.leading and not self.lock.held():
                log.error("leader lock lost (its connection broke): stepping down")
                self._resign()
        except Exception as error:  # the store is away: try again later
            log.warning("leadership: %s: %s", type(error).__name__, error)

    def _lead(self) -> None:
        log.info(
            "leader: this process runs projections, the webhook inbox, the outbox, reconciliation"
        )
        self.leading = True
        if not self._projecting:
            self.services.read_models.start()
            self._projecting = True
        self.services.inbox_processor.start()
        self.services.outbox_worker.start()
        self._reconciling = reconcile_loop(self.services)
        self._reconciling.start()

    def _resign(self) -> None:
        if not self.leading:
            return
        self.leading = False
        if self._reconciling is not None:
            self._reconciling.stop()
        self.services.inbox_processor.stop()
        self.services.outbox_worker.stop()
        self.lock.release()
