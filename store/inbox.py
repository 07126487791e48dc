"""The webhook inbox: every verified delivery, stored before it is answered, applied after.

A table in the event store's own database (the same SQLite file, the same PostgreSQL
schema), so a delivery acknowledged to the provider survives a crash of the process that
answered it, and the processor (api/inbox.py) finds it after a restart. One row per
(provider, event id): a redelivery inserts nothing (`ON CONFLICT DO NOTHING`) and is
answered `duplicate`. The row then carries what applying it did (CONTRACT.md, "Provider
truth"): `accepted` until the processor takes it, then `applied`, `duplicate`,
`unchanged`, `rejected`, `ignored`, `parked`, `retrying` (with its next attempt) or
`failed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from ledger.ids import stable_id
from store.ddl import schema_creation_lock
from store.inbox_wake import InboxWakeListener
from store.tables import StoreTables, pg_sql

WAITING = ("accepted", "retrying")  # not applied yet: the processor's work
COLUMNS = (
    "seq", "delivery_id", "provider", "event_id", "type", "received_at", "processed_at",
    "outcome", "reason", "payment_id", "status", "position", "attempts", "next_attempt_at",
)  # fmt: skip


def delivery_id(provider: str, event_id: str) -> UUID:
    """The stable id of a provider's delivery: one per event, however often it comes."""
    return stable_id(f"inbox:{provider}:{event_id}")


@dataclass(frozen=True)
class Received:
    delivery_id: UUID
    fresh: bool  # False: this event was stored before (a redelivery)


@dataclass(frozen=True)
class Result:
    """What applying a delivery did, as the inbox records it."""

    outcome: str
    reason: str | None = None
    payment_id: str | None = None
    status: str | None = None  # the payment's, after the delivery
    position: int | None = None
    next_attempt_at: datetime | None = None


def _ddl(serial: str, blob: str) -> tuple[str, ...]:
    return (
        "CREATE TABLE IF NOT EXISTS webhook_inbox ("
        f" seq {serial}, delivery_id TEXT NOT NULL UNIQUE, provider TEXT NOT NULL,"
        " event_id TEXT NOT NULL, type TEXT, received_at TEXT NOT NULL, processed_at TEXT,"
        " outcome TEXT NOT NULL, reason TEXT, payment_id TEXT, status TEXT, position BIGINT,"
        f" attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT, body {blob} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS webhook_inbox_waiting ON webhook_inbox (provider, seq)"
        " WHERE outcome IN ('accepted', 'retrying')",
        "CREATE INDEX IF NOT EXISTS webhook_inbox_by_provider ON webhook_inbox (provider, seq)",
    )


_INSERT = (
    "INSERT INTO webhook_inbox (delivery_id, provider, event_id, type, received_at, outcome, body)"
    " VALUES (:id, :provider, :event, :type, :at, 'accepted', :body)"
    " ON CONFLICT (delivery_id) DO NOTHING"
)
INSERT_SQL = f"{_INSERT} RETURNING seq"
# On PostgreSQL a stored delivery also wakes the leader's processor wherever it runs (another
# worker, `ledger project`): a NOTIFY in the same statement, sent on commit, none for a
# redelivery. The processor's poll is the fallback for a notification missed.
PG_INSERT_SQL = (
    f"WITH stored AS ({_INSERT} RETURNING seq, provider)"
    " SELECT seq, pg_notify(:channel, provider) FROM stored"
)


def wake_channel(schema: str) -> str:
    """The NOTIFY channel of a schema's inbox (schemas may share a database)."""
    return f"{schema}.inbox"[:63]  # PostgreSQL's longest identifier


def delivery_row(
    key: UUID,
    provider: str,
    event_id: str,
    event_type: str | None,
    body: bytes,
    at: datetime,
    channel: str | None = None,
) -> dict[str, Any]:
    """The parameters of INSERT_SQL (PG_INSERT_SQL, with its channel) for one delivery."""
    return {"id": str(key), "provider": provider, "event": event_id, "type": event_type,
            "at": at.isoformat(), "body": body, "channel": channel}  # fmt: skip


RECORD_SQL = (
    "UPDATE webhook_inbox SET outcome = :outcome, reason = :reason,"
    " payment_id = COALESCE(:payment, payment_id), status = COALESCE(:status, status),"
    " position = COALESCE(:position, position), attempts = :attempts,"
    " processed_at = :at, next_attempt_at = :retry WHERE delivery_id = :id"
)


def _result_row(delivery: str, result: Result, attempts: int, at: datetime) -> dict[str, Any]:
    retry = result.next_attempt_at.isoformat() if result.next_attempt_at else None
    return {"id": delivery, "outcome": result.outcome, "reason": result.reason,
            "payment": result.payment_id, "status": result.status, "position": result.position,
            "attempts": attempts, "at": at.isoformat(), "retry": retry}  # fmt: skip


class WebhookInbox(StoreTables):
    """The inbox on the ledger's datastore (SQLite or PostgreSQL). Its rows keep strings as
    given (not projections/text.py's stored form): rows written before that form existed."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        super().__init__(datastore)
        self.channel = (
            wake_channel(datastore.schema) if isinstance(datastore, PostgresDatastore) else None
        )

    def wake_listener(self) -> InboxWakeListener | None:
        """What tells this process of deliveries other processes store (PostgreSQL only)."""
        if isinstance(self.datastore, PostgresDatastore) and self.channel:
            return InboxWakeListener(self.datastore, self.channel)
        return None

    def create_table(self) -> None:
        if self.postgres:
            assert isinstance(self.datastore, PostgresDatastore)
            with schema_creation_lock(self.datastore), self._cursor() as cursor:
                for statement in _ddl("BIGSERIAL PRIMARY KEY", "BYTEA"):
                    cursor.execute(statement)
            return
        with self._cursor() as cursor:
            for statement in _ddl("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"):
                cursor.execute(statement)

    def receive(
        self, provider: str, event_id: str, event_type: str | None, body: bytes, at: datetime
    ) -> Received:
        """Store a verified delivery, once: one INSERT, committed before the answer."""
        key = delivery_id(provider, event_id)
        row = delivery_row(key, provider, event_id, event_type, body, at, self.channel)
        inserted = self._rows(PG_INSERT_SQL if self.postgres else INSERT_SQL, row)
        return Received(key, fresh=bool(inserted))

    def due(self, now: datetime, limit: int, provider: str) -> list[dict[str, Any]]:
        """The provider's deliveries waiting to be applied (a retry only once its time has
        come), in the order received, with their bodies."""
        return self._rows(
            f"SELECT {', '.join(COLUMNS)}, body FROM webhook_inbox"
            " WHERE outcome IN ('accepted', 'retrying') AND provider = :provider"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
            " ORDER BY seq LIMIT :limit",
            {"now": now.isoformat(), "limit": limit, "provider": provider},
        )

    def next_due_at(self, provider: str) -> datetime | None:
        """When the provider's earliest retry waiting falls due (None: none is waiting)."""
        rows = self._rows(
            "SELECT MIN(next_attempt_at) AS at FROM webhook_inbox"
            " WHERE outcome = 'retrying' AND provider = :provider",
            {"provider": provider},
        )
        at = rows[0]["at"] if rows else None
        return datetime.fromisoformat(at) if at else None

    def waiting(self) -> int:
        """How many deliveries are stored and not applied yet (accepted or retrying)."""
        rows = self._rows(
            "SELECT COUNT(*) AS n FROM webhook_inbox WHERE outcome IN ('accepted', 'retrying')", {}
        )
        return int(rows[0]["n"])

    def record(self, delivery: str, result: Result, attempts: int, at: datetime) -> None:
        """The latest attempt's outcome (see `record_many`)."""
        self.record_many([(delivery, result, attempts)], at)

    def record_many(self, results: list[tuple[str, Result, int]], at: datetime) -> None:
        """Each delivery's latest attempt, in one transaction; the payment and the position
        an earlier attempt appended stay when this one appended nothing (a replay that was
        a duplicate)."""
        rows = [
            _result_row(delivery, result, attempts, at) for delivery, result, attempts in results
        ]
        with self._cursor() as cursor:
            cursor.executemany(pg_sql(RECORD_SQL) if self.postgres else RECORD_SQL, rows)

    def get(self, delivery: str) -> dict[str, Any] | None:
        rows = self._rows(
            f"SELECT {', '.join(COLUMNS)}, body FROM webhook_inbox WHERE delivery_id = :id",
            {"id": delivery},
        )
        return rows[0] if rows else None

    def page(
        self, provider: str | None, outcome: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        """Newest first; `before` is the previous page's last `seq`."""
        return self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM webhook_inbox"
            " WHERE (CAST(:provider AS TEXT) IS NULL OR provider = :provider)"
            " AND (CAST(:outcome AS TEXT) IS NULL OR outcome = :outcome)"
            " AND (CAST(:before AS BIGINT) IS NULL OR seq < :before)"
            " ORDER BY seq DESC LIMIT :limit",
            {"provider": provider, "outcome": outcome, "before": before, "limit": limit},
        )

    def _rows(self, sql: str, params: dict[str, Any], fetch: bool = True) -> list[dict[str, Any]]:
        with self._cursor() as cursor:
            cursor.execute(pg_sql(sql) if self.postgres else sql, params)
            if not fetch:
                return []
            return [_plain(dict(row)) for row in cursor.fetchall()]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    body = row.get("body")
    if isinstance(body, memoryview):
        row["body"] = body.tobytes()
    return row
