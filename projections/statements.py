"""Statements (CONTRACT.md, "Money owed"): one per trainer, currency and settlement period,
with a line per money movement, split at the journal's rates and rounding
(projections/splits.py).

A sale goes to the period of its completion's business day (LEDGER_TIMEZONE), a refund or
chargeback to its own day's. Open statements fill as events arrive; closed and paid ones are
frozen, so a movement whose period is closed lands in the trainer's next open statement for
that currency (a clawback), created when needed. A refund that failed later is a `refund`
line of minus what it reversed; a completion the provider took back, a `sale` line of minus
what remained. On `Statement.Closed` the statement takes the event's figures; lines applied
after the position those were read at (a refund racing the close) move to the next open
statement, with a negative result carried into it as `carried_in`.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.application import PaymentLedger
from ledger.payment import Payment
from ledger.settlement import NOTHING
from ledger.statement import (
    Period,
    Statement,
    business_day,
    next_period,
    period_of,
    statement_id,
)
from projections.base import Batch, PostgresView, SQLiteView, View
from projections.rows import KeyedTable, Row
from projections.splits import Movement, SplitBook, for_each_event

BOOK = SplitBook("statement")
FIGURES = ("gross_sales", "refunds", "commission", "vat", "carried_in")
SUMMARY = (
    "statement_id", "trainer_id", "currency", "period_start", "period_end", "status",
    *FIGURES, "withholding", "payout_amount", "paid_reference",
)  # fmt: skip
STATEMENTS = KeyedTable("statements", "statement_id", (*SUMMARY, "created_position"))
LINE_FIELDS = ("payment_id", "order_id", "kind", "amount", "commission", "vat", "at")
LINES = KeyedTable(
    "statement_lines",
    "line_id",
    ("line_id", "statement_id", "position", *LINE_FIELDS),
    by_aggregate=False,
)
ORDERS = KeyedTable("statement_orders", "payment_id", ("payment_id", "order_id"))
# The journal's entry kind → the statement line's kind and sign.
LINE_KINDS = {
    "completion": ("sale", 1),
    "refund": ("refund", 1),
    "chargeback": ("chargeback", 1),
    "refund_failed": ("refund", -1),
    "completion_reversed": ("sale", -1),
}


class StatementsView(View):
    """Statements and their lines; `zone` and `period` are set by ReadModels from settings."""

    zone: ZoneInfo = ZoneInfo("Asia/Seoul")
    period: Period = "monthly"
    commission_bps: int = 1500
    vat_bps: int = 1000
    table_names = (*BOOK.table_names, "statements", "statement_lines", "statement_orders")
    ddl = (
        *BOOK.ddl,
        "CREATE TABLE IF NOT EXISTS statements ("
        " statement_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL, currency TEXT NOT NULL,"
        " period_start TEXT NOT NULL, period_end TEXT NOT NULL, status TEXT NOT NULL,"
        " gross_sales BIGINT NOT NULL, refunds BIGINT NOT NULL, commission BIGINT NOT NULL,"
        " vat BIGINT NOT NULL, carried_in BIGINT NOT NULL, withholding BIGINT NOT NULL,"
        " payout_amount BIGINT NOT NULL, paid_reference TEXT,"
        " created_position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS statements_trainer"
        " ON statements (trainer_id, created_position)",
        "CREATE INDEX IF NOT EXISTS statements_open ON statements (status, period_end)",
        "CREATE TABLE IF NOT EXISTS statement_lines ("
        " line_id TEXT PRIMARY KEY, statement_id TEXT NOT NULL, position BIGINT NOT NULL,"
        " payment_id TEXT NOT NULL, order_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " amount BIGINT NOT NULL, commission BIGINT NOT NULL, vat BIGINT NOT NULL,"
        " at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS statement_lines_statement"
        " ON statement_lines (statement_id, position)",
        "CREATE TABLE IF NOT EXISTS statement_orders ("
        " payment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL)",
    )

    def page(
        self,
        *,
        trainer_id: str | None = None,
        status: str | None = None,
        period_start: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Statements without lines, newest first (by the position that opened them)."""
        where = ["1 = 1"]
        for column, value in (
            ("trainer_id", trainer_id),
            ("status", status),
            ("period_start", period_start),
        ):
            if value is not None:
                where.append(f"{column} = :{column}")
        if before is not None:
            where.append("created_position < :before")
        params = {
            "trainer_id": trainer_id,
            "status": status,
            "period_start": period_start,
            "before": before,
            "limit": limit,
        }
        return self.query(
            f"SELECT {', '.join(STATEMENTS.columns)} FROM statements"
            f" WHERE {' AND '.join(where)} ORDER BY created_position DESC LIMIT :limit",
            params,
        )

    def statement(self, statement_id: str) -> dict[str, Any] | None:
        """One statement with its lines in position order; None if there is none."""
        rows = self.query(
            f"SELECT {', '.join(SUMMARY)} FROM statements WHERE statement_id = :id",
            {"id": statement_id},
        )
        if not rows:
            return None
        lines = self.query(
            f"SELECT {', '.join(LINE_FIELDS)} FROM statement_lines"
            " WHERE statement_id = :id ORDER BY position",
            {"id": statement_id},
        )
        return {**rows[0], "lines": lines}

    def closable(self, period_end: str) -> tuple[list[dict[str, Any]], int]:
        """Open statements whose period ended on or before `period_end`, and the view's
        position they were read at (one statement, so one snapshot on either store)."""
        rows = self.query(
            f"SELECT {', '.join(SUMMARY)},"
            f" (SELECT MAX(notification_id) FROM {self.tracking_table}"
            " WHERE application_name = :app) AS as_of"
            " FROM statements WHERE status = 'open' AND period_end <= :end"
            " ORDER BY period_start, trainer_id, currency",
            {"end": period_end, "app": PaymentLedger.name},
        )
        as_of = rows[0].pop("as_of") if rows else 0
        for row in rows[1:]:
            row.pop("as_of")
        return rows, int(as_of or 0)

    def balance(self, trainer_id: str) -> dict[str, dict[str, int]]:
        """currency → {unsettled (open, before tax), payable (closed), paid_out (paid)}."""
        rows = self.query(
            "SELECT currency, status,"
            " CAST(SUM(carried_in + gross_sales - refunds - commission - vat) AS BIGINT)"
            " AS before_tax, CAST(SUM(payout_amount) AS BIGINT) AS payout"
            " FROM statements WHERE trainer_id = :trainer GROUP BY currency, status",
            {"trainer": trainer_id},
        )
        result: dict[str, dict[str, int]] = {}
        for row in rows:
            sums = result.setdefault(row["currency"], dict.fromkeys(_BALANCE_OF.values(), 0))
            value = row["before_tax"] if row["status"] == "open" else row["payout"]
            sums[_BALANCE_OF[row["status"]]] += int(value)
        return result

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        keys = {"statement_rates": "profile_id", "statement_payments": "payment_id"}
        keys |= {"statement_refunds": "refund_key", "statements": "statement_id"}
        keys |= {"statement_lines": "line_id", "statement_orders": "payment_id"}
        return {t: self.query(f"SELECT * FROM {t} ORDER BY {k}") for t, k in keys.items()}

    def lines_after(self, batch: Batch, statement: str, position: int) -> list[str]:
        """Inside a batch: the ids of the statement's lines applied after `position`."""
        batch.rows.flush()  # the batch's own lines, so that the query sees them
        self._execute(
            batch.cursor,
            "SELECT line_id FROM statement_lines"
            " WHERE statement_id = :id AND position > :after ORDER BY position",
            {"id": statement, "after": position},
        )
        return [str(dict(row)["line_id"]) for row in batch.cursor.fetchall()]


_BALANCE_OF = {"open": "unsettled", "closed": "payable", "paid": "paid_out"}


class SQLiteStatementsView(StatementsView, SQLiteView):
    view_name = "statements"


class PostgresStatementsView(StatementsView, PostgresView):
    pass


class StatementsProjection(Projection[StatementsView]):
    name = "statements"
    views: ClassVar[dict[str, type[StatementsView]]] = {
        "sqlite": SQLiteStatementsView,
        "postgres": PostgresStatementsView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    # Profiles (rates in force) and payments: each money movement is one line.
    @for_each_event(process_event)
    def _money(self, domain_event: Any, tracking: Tracking) -> None:
        view = self.view
        with view.change(tracking) as batch:
            if isinstance(domain_event, Payment.Initiated):
                order = {"payment_id": str(domain_event.originator_id)}
                batch.rows.put(ORDERS, order | {"order_id": domain_event.order_id})
            self._announce(batch)
            moved = BOOK.apply(batch, domain_event, tracking, view.commission_bps, view.vat_bps)
            if moved is not None and moved.split != NOTHING:
                self._line(batch, tracking, moved)

    @process_event.register
    def _(self, domain_event: Statement.Closed, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            self._close(batch, tracking, domain_event)

    @process_event.register
    def _(self, domain_event: Statement.PaidOut, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            row = batch.rows.get(STATEMENTS, str(domain_event.originator_id))
            if row is not None:
                row |= {"status": "paid", "paid_reference": domain_event.reference}
                batch.rows.put(STATEMENTS, row)

    # --- helpers -------------------------------------------------------------------------

    def _announce(self, batch: Batch) -> None:
        """Once per batch: the open statements its lines may go to, read in one query."""
        if batch.state.get("statements_announced"):
            return
        period, zone = self.view.period, self.view.zone
        ids = {
            _statement_key(trainer, currency, period_of(business_day(at, zone), period)[0])
            for (trainer, currency), at in BOOK.movements(batch)
        }
        batch.rows.expect(STATEMENTS, ids)
        batch.state["statements_announced"] = True

    def _line(self, batch: Batch, tracking: Tracking, moved: Movement) -> None:
        """A line of what `moved` moved, in the open statement for the day it happened."""
        payment, split = moved.payment, moved.split
        # A refund is a positive refund line; what comes back (a failed refund, a sale
        # taken back) is a negative line of the kind it reverses.
        kind, sign = LINE_KINDS[moved.kind]
        day = business_day(moved.at, self.view.zone)
        start = period_of(day, self.view.period)[0]
        statement = _open(batch, self.view.period, payment["trainer_id"], payment["currency"],
                          start, tracking.notification_id)  # fmt: skip
        order = batch.rows.get(ORDERS, payment["payment_id"])
        line = {
            "line_id": str(tracking.notification_id),
            "statement_id": statement["statement_id"],
            "position": tracking.notification_id,
            "payment_id": payment["payment_id"],
            "order_id": order["order_id"] if order is not None else "",
            "kind": kind,
            "amount": sign * split.amount,
            "commission": sign * split.commission,
            "vat": sign * split.vat,
            "at": moved.at.isoformat(),
        }
        batch.rows.put(LINES, line)
        _count(statement, line)
        batch.rows.put(STATEMENTS, statement)

    def _close(self, batch: Batch, tracking: Tracking, event: Statement.Closed) -> None:
        """Freeze the statement with the event's figures; what it held beyond them (lines
        applied after `as_of_position`) and a negative result go to the next one."""
        sid = str(event.originator_id)
        row = batch.rows.get(STATEMENTS, sid) or _new(
            sid, event.trainer_id, event.currency, event.period_start, event.period_end,
            tracking.notification_id,
        )  # fmt: skip
        figures = {name: getattr(event, name) for name in (*FIGURES, "withholding")}
        result = event.carried_in + event.gross_sales - event.refunds - event.commission
        result -= event.vat + event.withholding
        carry = min(0, result) + row["carried_in"] - event.carried_in
        late = self.view.lines_after(batch, sid, event.as_of_position)
        row |= figures | {"status": "closed", "payout_amount": event.payout_amount}
        batch.rows.put(STATEMENTS, row)
        if not late and not carry:
            return
        start = next_period(date.fromisoformat(event.period_start), self.view.period)[0]
        following = _open(batch, self.view.period, event.trainer_id, event.currency,
                          start, tracking.notification_id)  # fmt: skip
        following["carried_in"] += carry
        for line_id in late:
            line = batch.rows.get(LINES, line_id)
            assert line is not None
            batch.rows.put(LINES, {**line, "statement_id": following["statement_id"]})
            _count(following, line)
        batch.rows.put(STATEMENTS, following)


def _open(
    batch: Batch, period: Period, trainer_id: str, currency: str, start: date, position: int
) -> Row:
    """The trainer's open statement for the period starting at `start`, or, if that one is
    closed or paid, for the first period after it that is not: created when missing."""
    while True:
        sid = _statement_key(trainer_id, currency, start)
        row = batch.rows.get(STATEMENTS, sid)
        if row is None:
            first, last = period_of(start, period)
            return _new(sid, trainer_id, currency, first.isoformat(), last.isoformat(), position)
        if row["status"] == "open":
            return row
        start = next_period(start, period)[0]


@lru_cache(maxsize=4096)  # a uuid5 per line otherwise
def _statement_key(trainer_id: str, currency: str, start: date) -> str:
    return str(statement_id(trainer_id, currency, start))


def _new(sid: str, trainer: str, currency: str, start: str, end: str, position: int) -> Row:
    return {
        "statement_id": sid,
        "trainer_id": trainer,
        "currency": currency,
        "period_start": start,
        "period_end": end,
        "status": "open",
        **dict.fromkeys(FIGURES, 0),
        "withholding": 0,
        "payout_amount": 0,
        "paid_reference": None,
        "created_position": position,
    }


def _count(statement: Row, line: Row) -> None:
    """Add a line to an open statement's figures (commission and VAT net of reversals)."""
    sign = 1 if line["kind"] == "sale" else -1
    statement["gross_sales" if sign == 1 else "refunds"] += line["amount"]
    statement["commission"] += sign * line["commission"]
    statement["vat"] += sign * line["vat"]
