"""The outbox: one row per (message, channel) to send, and every attempt's outcome.

Messages are events (ledger/message.py); the outbox feeder (projections/outbox.py) queues
each one's deliveries in the same transaction as its position, once (`ON CONFLICT DO
NOTHING`, so a rebuild that feeds the history again queues nothing new). What happened to a
delivery is not in the events: it lives here, in the event store's own database, like the
webhook inbox, and `ledger rebuild` leaves it alone.

Statuses: `pending` (not tried yet, or a resend asked for), `failed` (the last attempt
failed; `next_attempt_at` says when again), `sent`, `skipped` (nothing to send on that
channel: `last_error` says why) and `dead` (the last attempt failed, or the failure was
permanent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.tables import StoreTables

WAITING = ("pending", "failed")
COLUMNS = (
    "seq", "delivery_id", "message_id", "channel", "kind", "recipient_role", "recipient_id",
    "booking_id", "payment_id", "facts", "decided_at", "position", "status", "attempts",
    "last_error", "next_attempt_at", "sent_at", "remote_id",
)  # fmt: skip
ATTEMPT_COLUMNS = ("delivery_id", "attempt", "at", "status", "error")


def outbox_ddl(postgres: bool) -> tuple[str, ...]:
    serial = "BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
    return (
        "CREATE TABLE IF NOT EXISTS outbox_deliveries ("
        f" seq {serial}, delivery_id TEXT NOT NULL UNIQUE, message_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, kind TEXT NOT NULL, recipient_role TEXT NOT NULL,"
        " recipient_id TEXT NOT NULL, booking_id TEXT, payment_id TEXT,"
        " facts TEXT NOT NULL, decided_at TEXT NOT NULL, position BIGINT NOT NULL,"
        " status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
        " next_attempt_at TEXT, sent_at TEXT, remote_id TEXT)",
        "CREATE INDEX IF NOT EXISTS outbox_waiting ON outbox_deliveries (channel, seq)"
        " WHERE status IN ('pending', 'failed')",
        "CREATE INDEX IF NOT EXISTS outbox_by_message ON outbox_deliveries (message_id)",
        "CREATE INDEX IF NOT EXISTS outbox_by_booking ON outbox_deliveries (booking_id)",
        "CREATE TABLE IF NOT EXISTS outbox_attempts ("
        " delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, at TEXT NOT NULL,"
        " status TEXT NOT NULL, error TEXT, PRIMARY KEY (delivery_id, attempt))",
    )


ENQUEUE_SQL = (
    "INSERT INTO outbox_deliveries (delivery_id, message_id, channel, kind, recipient_role,"
    " recipient_id, booking_id, payment_id, facts, decided_at, position, status, last_error)"
    " VALUES (:delivery_id, :message_id, :channel, :kind, :recipient_role, :recipient_id,"
    " :booking_id, :payment_id, :facts, :decided_at, :position, :status, :last_error)"
    " ON CONFLICT (delivery_id) DO NOTHING"
)


UPDATE_SQL = (
    "UPDATE outbox_deliveries SET status = :status, attempts = :n, last_error = :error,"
    " next_attempt_at = :retry, sent_at = COALESCE(:sent_at, sent_at),"
    " remote_id = COALESCE(:remote, remote_id) WHERE delivery_id = :id"
)
ATTEMPT_SQL = (
    "INSERT INTO outbox_attempts (delivery_id, attempt, at, status, error)"
    " VALUES (:id, :n, :at, :status, :error)"
)


def delivery_key(message_id: str, channel: str) -> str:
    return f"{message_id}:{channel}"


def facts_text(facts: dict[str, Any]) -> str:
    # ASCII escapes: NUL and lone surrogates in a name survive both stores.
    return json.dumps(facts, sort_keys=True, ensure_ascii=True)


@dataclass(frozen=True)
class Attempt:
    """One attempt's outcome, as the worker records it."""

    status: str  # sent, failed, dead or skipped
    error: str | None = None
    next_attempt_at: datetime | None = None
    remote_id: str | None = None  # the far side's id (an SMS sid)

    @property
    def sent_nothing(self) -> bool:
        """Skipped before anything went out (no contact, no channel): nothing to repeat."""
        return self.status == "skipped"


def _attempt_row(row: dict[str, Any], attempt: Attempt, at: datetime) -> dict[str, Any]:
    return {
        "id": row["delivery_id"], "n": int(row["attempts"]) + 1, "at": at.isoformat(),
        "status": attempt.status, "error": attempt.error,
        "retry": attempt.next_attempt_at.isoformat() if attempt.next_attempt_at else None,
        "sent_at": at.isoformat() if attempt.status == "sent" else None,
        "remote": attempt.remote_id,
    }  # fmt: skip


class Outbox(StoreTables):
    """The outbox tables on the ledger's datastore (SQLite or PostgreSQL)."""

    def create_tables(self) -> None:
        self._create(outbox_ddl(self.postgres))

    def due(self, channel: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """The channel's deliveries to try now, in the order queued."""
        return self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM outbox_deliveries"
            " WHERE status IN ('pending', 'failed') AND channel = :channel"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
            " ORDER BY seq LIMIT :limit",
            {"channel": channel, "now": now.isoformat(), "limit": limit},
        )

    def next_due_at(self, channel: str) -> datetime | None:
        rows = self._rows(
            "SELECT MIN(next_attempt_at) AS at FROM outbox_deliveries"
            " WHERE status = 'failed' AND channel = :channel",
            {"channel": channel},
        )
        at = rows[0]["at"] if rows else None
        return datetime.fromisoformat(at) if at else None

    def record(self, row: dict[str, Any], attempt: Attempt, at: datetime) -> None:
        """An attempt's outcome: the delivery's state and the attempt's line, together."""
        self.record_many([(row, attempt)], at)

    def record_many(self, outcomes: list[tuple[dict[str, Any], Attempt]], at: datetime) -> None:
        """Several attempts' outcomes in one transaction."""
        with self._cursor() as cursor:
            for row, attempt in outcomes:
                params = _attempt_row(row, attempt, at)
                self._run(cursor, UPDATE_SQL, params)
                self._run(cursor, ATTEMPT_SQL, params)

    def resend(self, message_id: str) -> int:
        """Send the message again on every channel, now; returns how many deliveries."""
        # RETURNING counts them: the library's SQLite cursor has no rowcount.
        return len(self._rows(
            "UPDATE outbox_deliveries SET status = 'pending', next_attempt_at = NULL"
            " WHERE message_id = :id RETURNING delivery_id",
            {"id": message_id},
        ))  # fmt: skip

    def page(
        self, status: str | None, channel: str | None, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        """Newest first; `before` is the previous page's last `seq`."""
        return self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM outbox_deliveries"
            " WHERE (CAST(:status AS TEXT) IS NULL OR status = :status)"
            " AND (CAST(:channel AS TEXT) IS NULL OR channel = :channel)"
            " AND (CAST(:before AS BIGINT) IS NULL OR seq < :before)"
            " ORDER BY seq DESC LIMIT :limit",
            {"status": status, "channel": channel, "before": before, "limit": limit},
        )

    def of_message(self, message_id: str) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM outbox_deliveries WHERE message_id = :id"
            " ORDER BY seq",
            {"id": message_id},
        )

    def of_booking(self, booking_id: str) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT {', '.join(COLUMNS)} FROM outbox_deliveries WHERE booking_id = :id"
            " ORDER BY seq",
            {"id": booking_id},
        )

    def attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        return self._rows(
            f"SELECT {', '.join(ATTEMPT_COLUMNS)} FROM outbox_attempts"
            " WHERE delivery_id = :id ORDER BY attempt",
            {"id": delivery_id},
        )
