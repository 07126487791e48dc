"""The double-entry journal (CONTRACT.md, "Money owed"): every money movement of a payment
becomes one entry whose postings sum to zero per currency, and a trial balance per account.

Debits are positive, credits negative. A completion of A splits it at the trainer's rate in
force at that event's position (its settlement profile, else LEDGER_COMMISSION_BPS) and
LEDGER_VAT_BPS: provider +A, trainer payable -(A-C-V), commission -C, VAT -V. A refund or a
lost dispute reverses in proportion at the sale's rates; the one that takes the payment to
fully returned reverses exactly what remains (ledger/settlement.py). What each payment has
posted is kept (`journal_payments`, `journal_refunds`), so a reversal knows what remains and
a failed refund posts back exactly what it took.

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
from ledger.payment import Payment
from ledger.settlement import NOTHING, Split, refund_split, sale_split
from ledger.settlement_profile import SettlementProfile
from ledger.status import chargeback
from projections.base import Batch, PostgresView, SQLiteView, View
from projections.rows import CounterTable, KeyedTable, Row

COMMISSION, VAT = "platform:commission", "platform:vat_payable"
SPLIT_COLUMNS = (
    "sale_amount",
    "sale_commission",
    "sale_vat",
    "back_amount",
    "back_commission",
    "back_vat",
)
RATES = KeyedTable(
    "journal_rates",
    "profile_id",
    ("profile_id", "trainer_id", "commission_bps", "tax_type", "position"),
)
PAYMENTS = KeyedTable(
    "journal_payments",
    "payment_id",
    (
        "payment_id",
        "trainer_id",
        "provider",
        "currency",
        "amount",
        "commission_bps",
        "vat_bps",
        *SPLIT_COLUMNS,
    ),
)
REFUNDS = KeyedTable(
    "journal_refunds", "refund_key", ("refund_key", "amount", "commission", "vat", "failed")
)
ENTRY_COLUMNS = ("entry_id", "position", "at", "kind", "payment_id", "statement_id")
ENTRIES = KeyedTable("journal_entries", "entry_id", ENTRY_COLUMNS)
POSTING_COLUMNS = ("posting_id", "entry_id", "position", "line", "account", "currency", "amount")
POSTINGS = KeyedTable("journal_postings", "posting_id", POSTING_COLUMNS)
# (account, currency) → postings made to it (never back to zero, so a row stays) and balance.
BALANCES = CounterTable("journal_balances", ("account", "currency"), ("postings", "balance"))


class JournalView(View):
    """Entries, postings and balances; the default rates are set by ReadModels from settings."""

    commission_bps: int = 1500
    vat_bps: int = 1000
    table_names = (
        "journal_rates",
        "journal_payments",
        "journal_refunds",
        "journal_entries",
        "journal_postings",
        "journal_balances",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS journal_rates ("
        " profile_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL,"
        " commission_bps BIGINT NOT NULL, tax_type TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS journal_payments ("
        " payment_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL, provider TEXT NOT NULL,"
        " currency TEXT NOT NULL, amount BIGINT NOT NULL, commission_bps BIGINT,"
        " vat_bps BIGINT, sale_amount BIGINT NOT NULL, sale_commission BIGINT NOT NULL,"
        " sale_vat BIGINT NOT NULL, back_amount BIGINT NOT NULL,"
        " back_commission BIGINT NOT NULL, back_vat BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS journal_refunds ("
        " refund_key TEXT PRIMARY KEY, amount BIGINT NOT NULL, commission BIGINT NOT NULL,"
        " vat BIGINT NOT NULL, failed BIGINT NOT NULL)",
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
        }
        return {t: self.query(f"SELECT * FROM {t} ORDER BY {o}") for t, o in order.items()}


class SQLiteJournalView(JournalView, SQLiteView):
    view_name = "journal"


class PostgresJournalView(JournalView, PostgresView):
    pass


def _split(row: Row, prefix: str) -> Split:
    return Split(row[f"{prefix}_amount"], row[f"{prefix}_commission"], row[f"{prefix}_vat"])


def _set_split(row: Row, prefix: str, split: Split) -> None:
    row[f"{prefix}_amount"] = split.amount
    row[f"{prefix}_commission"] = split.commission
    row[f"{prefix}_vat"] = split.vat


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

    # --- rates in force: keyed by the profile's id, which the trainer's id gives ---------

    @process_event.register
    def _(self, domain_event: SettlementProfile.Set, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            rate = {
                "profile_id": str(domain_event.originator_id),
                "trainer_id": domain_event.trainer_id,
            }
            _put_rate(batch, rate, domain_event, tracking)

    @process_event.register
    def _(self, domain_event: SettlementProfile.Changed, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            rate = batch.rows.get(RATES, str(domain_event.originator_id))
            if rate is not None:
                _put_rate(batch, rate, domain_event, tracking)

    # --- payments -----------------------------------------------------------------------

    @process_event.register
    def _(self, domain_event: Payment.Initiated, tracking: Tracking) -> None:
        payment: Row = {
            "payment_id": str(domain_event.originator_id),
            "trainer_id": domain_event.trainer_id,
            "provider": domain_event.provider,
            "currency": domain_event.currency,
            "amount": domain_event.amount,
            "commission_bps": None,
            "vat_bps": None,
            **dict.fromkeys(SPLIT_COLUMNS, 0),
        }
        with self.view.change(tracking) as batch:
            batch.rows.put(PAYMENTS, payment)

    @process_event.register
    def _(self, domain_event: Payment.AmountDiscrepancyRecorded, tracking: Tracking) -> None:
        # Saved just before Completed: the sale is what the provider captured.
        with self.view.change(tracking) as batch:
            payment = self._payment(batch, domain_event)
            if payment is not None:
                payment["amount"] = domain_event.captured_amount
                batch.rows.put(PAYMENTS, payment)

    @process_event.register
    def _(self, domain_event: Payment.Completed, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            payment = self._payment(batch, domain_event)
            if payment is None:
                return
            profile_id = str(SettlementProfile.create_id(payment["trainer_id"]))
            rate = batch.rows.get(RATES, profile_id)
            bps = rate["commission_bps"] if rate is not None else self.view.commission_bps
            sale = sale_split(payment["amount"], bps, self.view.vat_bps)
            payment |= {"commission_bps": bps, "vat_bps": self.view.vat_bps}
            _set_split(payment, "sale", sale)
            _set_split(payment, "back", NOTHING)
            batch.rows.put(PAYMENTS, payment)
            at = domain_event.approved_at
            _post(batch, tracking, "completion", payment, at, sale_postings(payment, sale))

    @process_event.register
    def _(self, domain_event: Payment.Refunded, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            payment = self._payment(batch, domain_event)
            if payment is None:
                return
            split = self._give_back(
                batch, tracking, payment, domain_event.amount, "refund", domain_event.refunded_at
            )
            refund = {
                "refund_key": _refund_key(payment, domain_event.refund_id),
                "amount": split.amount,
                "commission": split.commission,
                "vat": split.vat,
                "failed": 0,
            }
            batch.rows.put(REFUNDS, refund)

    @process_event.register
    def _(self, domain_event: Payment.DisputeClosed, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            payment = self._payment(batch, domain_event)
            if payment is None or domain_event.outcome != "lost":
                return  # won or closed with a warning: the money stays
            left = payment["sale_amount"] - payment["back_amount"]
            taken = chargeback(domain_event.amount, left)  # as the aggregate counts it
            self._give_back(batch, tracking, payment, taken, "chargeback", domain_event.closed_at)

    @process_event.register
    def _(self, domain_event: Payment.RefundFailed, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            payment = self._payment(batch, domain_event)
            if payment is None:
                return
            refund = batch.rows.get(REFUNDS, _refund_key(payment, domain_event.refund_id))
            if refund is None or refund["failed"]:
                return  # not one the journal reversed, or failed before
            # The refund never left: post back exactly what it reversed.
            split = Split(refund["amount"], refund["commission"], refund["vat"])
            _set_split(payment, "back", _split(payment, "back") - split)
            batch.rows.put(PAYMENTS, payment)
            batch.rows.put(REFUNDS, {**refund, "failed": 1})
            postings = sale_postings(payment, split)
            _post(batch, tracking, "refund_failed", payment, domain_event.failed_at, postings)

    @process_event.register
    def _(self, domain_event: Payment.CompletionReversed, tracking: Tracking) -> None:
        with self.view.change(tracking) as batch:
            payment = self._payment(batch, domain_event)
            if payment is None:
                return
            remains = _split(payment, "sale") - _split(payment, "back")
            _set_split(payment, "sale", NOTHING)
            _set_split(payment, "back", NOTHING)
            batch.rows.put(PAYMENTS, payment)
            postings = sale_postings(payment, remains, sign=-1)
            at = domain_event.reversed_at
            _post(batch, tracking, "completion_reversed", payment, at, postings)

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _payment(batch: Batch, domain_event: Any) -> Row | None:
        return batch.rows.get(PAYMENTS, str(domain_event.originator_id))

    @staticmethod
    def _give_back(
        batch: Batch, tracking: Tracking, payment: Row, amount: int, kind: str, at: Any
    ) -> Split:
        """Reverse `amount` of the sale (a refund or a chargeback); returns what it reversed."""
        sale, back = _split(payment, "sale"), _split(payment, "back")
        if sale.amount <= 0 or amount <= 0:
            return NOTHING  # nothing was posted to give back
        split = refund_split(amount, sale, back, payment["commission_bps"], payment["vat_bps"])
        _set_split(payment, "back", back + split)
        batch.rows.put(PAYMENTS, payment)
        _post(batch, tracking, kind, payment, at, sale_postings(payment, split, sign=-1))
        return split


def _put_rate(batch: Batch, rate: Row, domain_event: Any, tracking: Tracking) -> None:
    rate |= {
        "commission_bps": domain_event.commission_bps,
        "tax_type": domain_event.tax_type,
        "position": tracking.notification_id,
    }
    batch.rows.put(RATES, rate)


def _refund_key(payment: Row, refund_id: str) -> str:
    return f"{payment['payment_id']}:{refund_id}"


def _post(
    batch: Batch,
    tracking: Tracking,
    kind: str,
    payment: Row,
    at: Any,
    postings: Sequence[tuple[str, int]],
) -> None:
    """One entry of this event's postings (none: no entry), and the balances they move."""
    if not postings:
        return
    if sum(amount for _, amount in postings) != 0:
        raise AssertionError(f"unbalanced {kind} entry at {tracking.notification_id}")
    position = tracking.notification_id
    entry_id = str(stable_id(f"journal-entry:{position}"))
    currency = payment["currency"]
    entry = {
        "entry_id": entry_id,
        "position": position,
        "at": at.isoformat(),
        "kind": kind,
        "payment_id": payment["payment_id"],
        "statement_id": None,
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
