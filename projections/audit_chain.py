"""The audit hash chain: a follower of the event store that links every event, once, in
commit order (see ledger/audit.py for what is hashed).

It is a projection like the others, so `ledger serve`/`ledger project` keep it current and
appends never pay for hashing. Each link reads the stored event's own bytes (not the decoded
domain event, which upcasting could change) and the previous hash, then writes the new link
and the tracking position in one transaction. Notification ids are committed in order
(PostgreSQL's recorder takes a table lock to insert; SQLite has one writer), so following
them is following commit order, also under concurrent writers.

It is not rebuilt by default: re-hashing the current events would launder any tampering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import Environment

from ledger.application import PaymentLedger
from ledger.audit import GENESIS, link_hash, record
from ledger.settings import Settings
from projections.base import PostgresView, SQLiteView, View

NAME = "audit_chain"
_CHAIN_COLUMNS = "position, event_id, hash, prev_hash"
_LOOKAHEAD = 500  # stored events read at once while chaining a batch


class AuditChainView(View):
    table_names = ("audit_chain",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS audit_chain ("
        # event_id is not UNIQUE on purpose: if someone deletes an aggregate's last event
        # and the version is written again, the chain keeps linking; verify reports the hole.
        " position BIGINT PRIMARY KEY, event_id TEXT NOT NULL,"
        " hash TEXT NOT NULL, prev_hash TEXT NOT NULL)",
    )
    # The event store's table and position column, which differ per backend.
    events_table: ClassVar[str]
    position_column: ClassVar[str]

    def link(self, tracking: Tracking) -> None:
        """Hash the event at `tracking`'s position onto the chain, with the tracking."""
        with self.change(tracking) as batch:
            # One read of the head per batch and of the events per page of them.
            position, state = tracking.notification_id, batch.state
            if "head" not in state:
                state["head"], state["rows"] = self._head(batch.cursor), {}
            rows = state["rows"]
            if position not in rows:
                rows.clear()
                rows.update(self._event_rows(batch.cursor, position, _LOOKAHEAD))
            state["head"] = self._append(
                batch.cursor, position, rows.pop(position, None), state["head"]
            )

    def _head(self, cursor: Any) -> str:
        head = self._fetch(
            cursor, "SELECT hash FROM audit_chain ORDER BY position DESC LIMIT 1", {}
        )
        return str(head[0]["hash"]) if head else GENESIS

    def _append(
        self, cursor: Any, position: int, row: dict[str, Any] | None, prev_hash: str
    ) -> str:
        if row is None:
            raise LookupError(f"event {position} vanished before it was chained")
        item = self.to_record(row)
        link = {
            "position": item["position"],
            "event_id": item["event_id"],
            "hash": link_hash(prev_hash, item),
            "prev_hash": prev_hash,
        }
        self._execute(
            cursor,
            "INSERT INTO audit_chain (position, event_id, hash, prev_hash) "
            "VALUES (:position, :event_id, :hash, :prev_hash)",
            link,
        )
        return str(link["hash"])

    def _event_rows(self, cursor: Any, position: int, limit: int) -> dict[int, dict[str, Any]]:
        """Stored events from `position` on, at most `limit`, by position."""
        sql = (
            f"SELECT {self.position_column} AS position, originator_id, originator_version, "
            f"topic, state FROM {self.events_table} WHERE {self.position_column} >= :position "
            f"ORDER BY {self.position_column} LIMIT :limit"
        )
        rows = self._fetch(cursor, sql, {"position": position, "limit": limit})
        return {int(row["position"]): row for row in rows}

    def _fetch(self, cursor: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._execute(cursor, sql, params)
        return [dict(row) for row in cursor.fetchall()]

    @staticmethod
    def to_record(row: dict[str, Any]) -> dict[str, Any]:
        return record(
            int(row["position"]),
            row["originator_id"],
            int(row["originator_version"]),
            str(row["topic"]),
            bytes(row["state"]),
        )

    def aggregate_records(self, aggregate_id: UUID) -> list[dict[str, Any]]:
        """Every stored event of one aggregate, oldest first, with its position."""
        sql = (
            f"SELECT {self.position_column} AS position, originator_id, originator_version, "
            f"topic, state FROM {self.events_table} WHERE originator_id = :id "
            "ORDER BY originator_version"
        )
        rows = self.query(sql, {"id": self._aggregate_key(aggregate_id)})
        return [self.to_record(row) for row in rows]

    def links_after(self, after: int, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
        """Chain rows with `after < position <= upto`, in order, at most `limit`."""
        params: dict[str, Any] = {"after": after, "limit": limit}
        bound = ""
        if upto is not None:
            bound, params["upto"] = " AND position <= :upto", upto
        return self.query(
            f"SELECT {_CHAIN_COLUMNS} FROM audit_chain WHERE position > :after{bound} "
            "ORDER BY position LIMIT :limit",
            params,
        )

    def links_at(self, positions: Sequence[int]) -> dict[int, dict[str, Any]]:
        if not positions:
            return {}
        names = {f"p{i}": p for i, p in enumerate(positions)}
        rows = self.query(
            f"SELECT {_CHAIN_COLUMNS} FROM audit_chain "
            f"WHERE position IN ({', '.join(':' + n for n in names)})",
            names,
        )
        return {int(row["position"]): row for row in rows}

    def chained_up_to(self) -> int:
        """The position the chain has processed (events after it are not chained yet)."""
        return self.max_tracking_id(PaymentLedger.name) or 0

    @staticmethod
    def _aggregate_key(aggregate_id: UUID) -> Any:
        return aggregate_id


class SQLiteAuditChainView(AuditChainView, SQLiteView):
    view_name = NAME
    events_table = "stored_events"
    position_column = "rowid"

    @staticmethod
    def _aggregate_key(aggregate_id: UUID) -> Any:
        return aggregate_id.hex  # the library stores UUIDs as hex text on SQLite


class PostgresAuditChainView(AuditChainView, PostgresView):
    events_table = f"{PaymentLedger.name.lower()}_events"  # the library's naming
    position_column = "notification_id"


class AuditChainProjection(Projection[AuditChainView]):
    name = NAME
    # `ledger rebuild` leaves it alone unless explicitly told (see api/cli.py).
    rebuild_by_default: ClassVar[bool] = False
    views: ClassVar[dict[str, type[AuditChainView]]] = {
        "sqlite": SQLiteAuditChainView,
        "postgres": PostgresAuditChainView,
    }

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.link(tracking)  # every event, whatever its type


def open_view(settings: Settings) -> AuditChainView:
    """The chain's view alone (for `ledger verify`/`export`, without running projections)."""
    backend = "postgres" if settings.is_postgres else "sqlite"
    # One connection is plenty for a command that reads a page at a time.
    env = {**settings.eventsourcing_env(), "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"}
    factory = InfrastructureFactory.construct(env=Environment(NAME, env))
    view = factory.tracking_recorder(AuditChainProjection.views[backend])
    assert isinstance(view, AuditChainView)
    return view
