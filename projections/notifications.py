"""The trainer inbox: one row per notification sent to a trainer, with its read state.

Sending and reading are both events (`TrainerNotification.Sent`, `.MarkedRead`), so the
inbox can be rebuilt from history like every other read model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.notification import TrainerNotification
from projections.base import PostgresView, SQLiteView, View
from projections.rows import KeyedTable

COLUMNS = (
    "notification_id", "trainer_id", "booking_id", "payment_id", "title", "message",
    "sent_at", "read_at", "position",
)  # fmt: skip
INBOX = KeyedTable("trainer_notifications", "notification_id", COLUMNS)
_ITEM = "notification_id, title, message, sent_at, read_at, position"


class NotificationsView(View):
    table_names = ("trainer_notifications",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS trainer_notifications ("
        " notification_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL, booking_id TEXT NOT NULL,"
        " payment_id TEXT NOT NULL, title TEXT NOT NULL, message TEXT NOT NULL,"
        " sent_at TEXT NOT NULL, read_at TEXT, position BIGINT NOT NULL UNIQUE)",
        "CREATE INDEX IF NOT EXISTS trainer_notifications_inbox"
        " ON trainer_notifications (trainer_id, position)",
        # Unread-only inboxes stay cheap however much a trainer has already read.
        "CREATE INDEX IF NOT EXISTS trainer_notifications_unread"
        " ON trainer_notifications (trainer_id, position) WHERE read_at IS NULL",
        "CREATE INDEX IF NOT EXISTS trainer_notifications_booking"
        " ON trainer_notifications (booking_id)",
    )

    def inbox(
        self,
        trainer_id: str,
        *,
        unread_only: bool = False,
        limit: int = 50,
        before: int | None = None,
    ) -> list[dict[str, Any]]:
        """A trainer's notifications, newest first; `before` is a position (exclusive).

        Items are `{notification_id, title, message, sent_at, read, position}`.
        """
        clauses = ["trainer_id = :trainer_id"]
        params: dict[str, Any] = {"trainer_id": trainer_id, "limit": limit}
        if unread_only:
            clauses.append("read_at IS NULL")
        if before is not None:
            clauses.append("position < :before")
            params["before"] = before
        rows = self.query(
            f"SELECT {_ITEM} FROM trainer_notifications WHERE {' AND '.join(clauses)} "
            "ORDER BY position DESC LIMIT :limit",
            params,
        )
        return [{**_item(row), "position": row["position"]} for row in rows]

    def for_booking(self, booking_id: str) -> list[dict[str, Any]]:
        """A booking's notifications in the order sent: `{notification_id, title, message,
        sent_at, read}`, so an admin sees whether the trainer was told (and has read it)."""
        rows = self.query(
            f"SELECT {_ITEM} FROM trainer_notifications WHERE booking_id = :booking_id "
            "ORDER BY position",
            {"booking_id": booking_id},
        )
        return [_item(row) for row in rows]

    def dump(self) -> list[dict[str, Any]]:
        return self.query(
            f"SELECT {', '.join(COLUMNS)} FROM trainer_notifications ORDER BY notification_id"
        )


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": row["notification_id"],
        "title": row["title"],
        "message": row["message"],
        "sent_at": row["sent_at"],
        "read": row["read_at"] is not None,
    }


class SQLiteNotificationsView(NotificationsView, SQLiteView):
    view_name = "notifications"


class PostgresNotificationsView(NotificationsView, PostgresView):
    pass


class NotificationsProjection(Projection[NotificationsView]):
    name = "notifications"
    views: ClassVar[dict[str, type[NotificationsView]]] = {
        "sqlite": SQLiteNotificationsView,
        "postgres": PostgresNotificationsView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    @process_event.register
    def _(self, domain_event: TrainerNotification.Sent, tracking: Tracking) -> None:
        row = {
            "notification_id": str(domain_event.originator_id),
            "trainer_id": domain_event.trainer_id,
            "booking_id": domain_event.booking_id,
            "payment_id": str(domain_event.payment_id),
            "title": domain_event.title,
            "message": domain_event.message,
            "sent_at": domain_event.timestamp.isoformat(),
            "read_at": None,
            "position": tracking.notification_id,
        }
        with self.view.change(tracking) as batch:
            batch.rows.put(INBOX, row)

    @process_event.register
    def _(self, domain_event: TrainerNotification.MarkedRead, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            row = batch.rows.get(INBOX, str(domain_event.originator_id))
            if row is not None:
                batch.rows.put(INBOX, {**row, "read_at": domain_event.read_at.isoformat()})
