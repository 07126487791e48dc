"""The outbox feeder: queues each decided message's deliveries, once (store/outbox.py).

A projection like the others, so a message is queued in the same transaction as the
feeder's position: none lost, none queued twice. Its table is the outbox's, not a read
model: a rebuild drops only the feeder's position, and feeding the history again queues
nothing new (`ON CONFLICT DO NOTHING`); the deliveries' states stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.message import CUSTOMER, Message
from projections.base import Batch, PostgresView, SQLiteView, View
from store.outbox import ENQUEUE_SQL, delivery_key, facts_text, outbox_ddl

# Trainers can be reached on every channel; customers have no push subscription.
ROUTES = {"trainer": ("email", "sms", "push"), CUSTOMER: ("email", "sms")}


class OutboxView(View):
    table_names: ClassVar[tuple[str, ...]] = ()  # the outbox outlives rebuilds
    kept_tables: ClassVar[tuple[str, ...]] = ("outbox_deliveries",)
    on_queued: Callable[[], None] | None = None  # the worker's wake-up, in the leader
    unconfigured: frozenset[str] = frozenset()  # channels without settings here

    def committed(self, batch: Batch) -> None:
        if batch.state.get("queued") and self.on_queued is not None:
            self.on_queued()


class SQLiteOutboxView(OutboxView, SQLiteView):
    view_name = "outbox"
    ddl = outbox_ddl(postgres=False)


class PostgresOutboxView(OutboxView, PostgresView):
    ddl = outbox_ddl(postgres=True)


def deliveries(
    event: Message.Decided, position: int, unconfigured: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """One row per channel; one this deployment has not configured is `skipped` at once,
    so that the worker never handles it (a webhook's completion queues three)."""
    message_id = str(event.originator_id)
    return [
        {
            "delivery_id": delivery_key(message_id, channel),
            "message_id": message_id,
            "channel": channel,
            "kind": event.kind,
            "recipient_role": event.recipient_role,
            "recipient_id": event.recipient_id,
            "booking_id": event.booking_id,
            "payment_id": str(event.payment_id) if event.payment_id else None,
            "facts": facts_text(event.facts),
            "decided_at": event.timestamp.isoformat(),
            "position": position,
            "status": "skipped" if channel in unconfigured else "pending",
            "last_error": "not_configured" if channel in unconfigured else None,
        }
        for channel in ROUTES.get(event.recipient_role, ())
    ]


class OutboxProjection(Projection[OutboxView]):
    name = "outbox"
    views: ClassVar[dict[str, type[OutboxView]]] = {
        "sqlite": SQLiteOutboxView,
        "postgres": PostgresOutboxView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    @process_event.register
    def _(self, domain_event: Message.Decided, tracking: Tracking) -> None:
        rows = deliveries(domain_event, tracking.notification_id, self.view.unconfigured)
        with self.view.change(tracking) as batch:
            for row in rows:
                self.view.execute(batch, ENQUEUE_SQL, row)
            if any(row["status"] == "pending" for row in rows):
                batch.state["queued"] = True
