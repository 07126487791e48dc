"""The double-entry journal (CONTRACT.md, "Money owed"): every money movement of a payment
becomes one entry whose postings sum to zero per currency, and a trial balance per account.

Debits are positive, credits negative. A completion of A splits it at the trainer's rate in
force at that event's position (its settlement profile, else LEDGER_COMMISSION_BPS) and
LEDGER_VAT_BPS: provider +A, trainer payable -(A-C-V), commission -C, VAT -V. A refund or a
lost dispute reverses in proportion at the sale's rates; the one that takes the payment to
fully returned reverses exactly what remains (ledger/settlement.py). What each payment has
posted is kept (`journal_payments`, `journal_refunds`, projections/splits.py), so a reversal
knows what remains and a failed refund posts back exactly what it took. A statement closed
with withholding W posts trainer payable +W, `tax:withholding_payable` -W; its payout posts
trainer payable +payout, `platform:cash` -payout (both with the statement's id).

The defaults are read when events are applied: after changing LEDGER_COMMISSION_BPS or
LEDGER_VAT_BPS, `ledger rebuild --projection journal` re-posts trainers without a profile at
the new rates. Set a profile to pin a trainer's rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.ids import stable_id
from ledger.provider_fee import ProviderFee
from ledger.settlement import Split
from ledger.statement import Statement
from projections.base import Batch, PostgresView, SQLiteView, View
from projections.rows import CounterTable, KeyedTable, Row
from projections.splits import SplitBook, for_each_event

COMMISSION, VAT = "platform:commission", "platform:vat_payable"
WITHHOLDING, CASH = "tax:withholding_payable", "platform:cash"
FEES = "provider_fees"
BOOK = SplitBook("journal")  # rates in force, what each payment and refund posted
ENTRY_COLUMNS = ("entry_id", "position", "at", "kind", "payment_id", "statement_id")
ENTRIES = KeyedTable("journal_entries", "entry_id", ENTRY_COLUMNS)
# A closed statement's payout, posted when it is paid.
STATEMENTS = KeyedTable(
    "journal_statements", "statement_id", ("statement_id", "trainer_id", "currency", "payout")
)
POSTING_COLUMNS = ("posting_id", "entry_id", "position", "line", "account", "currency", "amount")
POSTINGS = KeyedTable("journal_postings", "posting_id", POSTING_COLUMNS)
# (account, currency) → postings made to it (never back to zero, so a row stays) and balance.
BALANCES = CounterTable("journal_balances", ("account", "currency"), ("postings", "balance"))


class JournalView(View):
    """Entries, postings and balances; the default rates are set by ReadModels from settings."""

    commission_bps: int = 1500
    vat_bps: int = 1000
    table_names = (
        *BOOK.table_names,
        "journal_entries",
        "journal_postings",
        "journal_balances",
        "journal_statements",
    )
    ddl = (
        *BOOK.ddl,
        "CREATE TABLE IF NOT EXISTS journal_entries ("
        " entry_id TEXT PRIMARY KEY, position BIGINT NOT NULL UNIQUE, at TEXT NOT NULL,"
        " kind TEXT NOT NULL, payment_id TEXT, statement_id TEXT)",
        "CREATE TABLE IF NOT EXISTS journal_postings ("
        " posting_id TEXT PRIMARY KEY, entry_id TEXT NOT NULL, position BIGINT NOT NULL,"
        " line BIGINT NOT NULL, account TEXT NOT NULL, currency TEXT NOT NULL,"
        " amount BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS journal_postings_position ON journal_postings (position)",
        "CREATE INDEX IF NOT EXISTS journal_postings_account"
        " ON journal_postings (account, position)",
        "CREATE TABLE IF NOT EXISTS journal_balances ("
        " account TEXT NOT NULL, currency TEXT NOT NULL, postings BIGINT NOT NULL,"
        " balance BIGINT NOT NULL, PRIMARY KEY (account, currency))",
        "CREATE TABLE IF NOT EXISTS journal_statements ("
        " statement_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL, currency TEXT NOT NULL,"
        " payout BIGINT NOT NULL)",
    )

    def entries(
        self, *, account: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Entries in position order after `after` (exclusive), each with its postings;
        with `account`, only entries posting to it."""
        where = "position > :after"
        if account is not None:
            where += (
                " AND position IN (SELECT position FROM journal_postings"
                " WHERE account = :account AND position > :after)"
            )
        entries = self.query(
            f"SELECT {', '.join(ENTRY_COLUMNS)} FROM journal_entries WHERE {where}"
            " ORDER BY position LIMIT :limit",
            {"after": after, "account": account, "limit": limit},
        )
        if not entries:
            return []
        postings = self.query(
            "SELECT position, account, currency, amount FROM journal_postings"
            " WHERE position >= :first AND position <= :last ORDER BY position, line",
            {"first": entries[0]["position"], "last": entries[-1]["position"]},
        )
        by_position: dict[int, list[dict[str, Any]]] = {e["position"]: [] for e in entries}
        for posting in postings:
            lines = by_position.get(posting.pop("position"))
            if lines is not None:
                lines.append(posting)
        return [{**entry, "postings": by_position[entry["position"]]} for entry in entries]

    def balances(self) -> dict[str, dict[str, int]]:
        """The trial balance: account → currency → balance."""
        accounts: dict[str, dict[str, int]] = {}
        rows = self.query(
            "SELECT account, currency, balance FROM journal_balances ORDER BY account, currency"
        )
        for row in rows:
            accounts.setdefault(row["account"], {})[row["currency"]] = row["balance"]
        return accounts

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        order = {
            "journal_rates": "profile_id",
            "journal_payments": "payment_id",
            "journal_refunds": "refund_key",
            "journal_entries": "position",
            "journal_postings": "posting_id",
            "journal_balances": "account, currency",
            "journal_statements": "statement_id",
        }
        return {t: self.query(f"SELECT * FROM {t} ORDER BY {o}") for t, o in order.items()}


class SQLiteJournalView(JournalView, SQLiteView):
    view_name = "journal"


class PostgresJournalView(JournalView, PostgresView):
    pass


def sale_postings(payment: Row, split: Split, sign: int = 1) -> list[tuple[str, int]]:
    """A sale's postings (sign -1: its reversal). Zero postings are left out."""
    lines = [
        (f"provider:{payment['provider']}", split.amount),
        (f"trainer:{payment['trainer_id']}:payable", -split.payable),
        (COMMISSION, -split.commission),
        (VAT, -split.vat),
    ]
    return [(account, sign * amount) for account, amount in lines if amount]


class JournalProjection(Projection[JournalView]):
    name = "journal"
    views: ClassVar[dict[str, type[JournalView]]] = {
        "sqlite": SQLiteJournalView,
        "postgres": PostgresJournalView,
    }

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.write(tracking, [])  # not ours; keep the position moving

    # Profiles (rates in force) and payments: each money movement is one entry.
    @for_each_event(process_event)
    def _money(self, domain_event: Any, tracking: Tracking) -> None:
        view = self.view
        with view.change(tracking) as batch:
            moved = BOOK.apply(batch, domain_event, tracking, view.commission_bps, view.vat_bps)
            if moved is not None:
                payment = moved.payment
                postings = sale_postings(payment, moved.split, moved.sign)
                _post(batch, tracking, moved.kind, moved.at, postings, payment["currency"],
                      payment["payment_id"])  # fmt: skip

    # --- statements: the withholding at close, the payout -----------------------------

    @process_event.register
    def _(self, domain_event: Statement.Closed, tracking: Tracking) -> None:
        statement_id = str(domain_event.originator_id)
        trainer, currency = domain_event.trainer_id, domain_event.currency
        withheld = domain_event.withholding
        with self.view.change(tracking) as batch:
            batch.rows.put(
                STATEMENTS,
                {
                    "statement_id": statement_id,
                    "trainer_id": trainer,
                    "currency": currency,
                    "payout": domain_event.payout_amount,
                },
            )
            postings = [(f"trainer:{trainer}:payable", withheld), (WITHHOLDING, -withheld)]
            _post(
                batch,
                tracking,
                "withholding",
                domain_event.closed_at,
                postings if withheld else [],
                currency,
                statement_id=statement_id,
            )

    @process_event.register
    def _(self, domain_event: Statement.PaidOut, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            statement = batch.rows.get(STATEMENTS, str(domain_event.originator_id))
            if statement is None:
                return
            paid = statement["payout"]
            postings = [(f"trainer:{statement['trainer_id']}:payable", paid), (CASH, -paid)]
            _post(
                batch,
                tracking,
                "payout",
                domain_event.paid_at,
                postings if paid else [],
                statement["currency"],
                statement_id=statement["statement_id"],
            )

    # --- provider fees: what a provider kept, from its settlement report --------------

    @process_event.register
    def _(self, domain_event: ProviderFee.Recorded, tracking: Tracking) -> None:
        fee = domain_event.fee
        provider = f"provider:{domain_event.provider}"
        payment_id = domain_event.payment_id
        with self.view.change(tracking) as batch:
            _post(
                batch,
                tracking,
                "provider_fee",
                domain_event.timestamp,
                [(FEES, fee), (provider, -fee)] if fee else [],
                domain_event.currency,
                str(payment_id) if payment_id is not None else None,
            )


def _post(
    batch: Batch,
    tracking: Tracking,
    kind: str,
    at: Any,
    postings: Sequence[tuple[str, int]],
    currency: str,
    payment_id: str | None = None,
    statement_id: str | None = None,
) -> None:
    """One entry of this event's postings (none: no entry), and the balances they move."""
    if not postings:
        return
    if sum(amount for _, amount in postings) != 0:
        raise AssertionError(f"unbalanced {kind} entry at {tracking.notification_id}")
    position = tracking.notification_id
    entry_id = str(stable_id(f"journal-entry:{position}"))
    entry = {
        "entry_id": entry_id,
        "position": position,
        "at": at.isoformat(),
        "kind": kind,
        "payment_id": payment_id,
        "statement_id": statement_id,
    }
    batch.rows.put(ENTRIES, entry)
    for line, (account, amount) in enumerate(postings):
        batch.rows.put(
            POSTINGS,
            {
                "posting_id": f"{entry_id}:{line}",
                "entry_id": entry_id,
                "position": position,
                "line": line,
                "account": account,
                "currency": currency,
                "amount": amount,
            },
        )
        batch.rows.add(BALANCES, (account, currency), 1, amount)
