"""What each payment has posted so far, shared by the views that split money (the journal,
the statements): the rate in force per trainer, each payment's sale and what was given back,
each refund's reversal.

Every view keeps its own three tables (`{prefix}_rates`, `{prefix}_payments`,
`{prefix}_refunds`), so each is rebuilt alone; the arithmetic is ledger/settlement.py's.
A handler calls one method per event inside its `change()`; each returns the split the
event moves (with the payment's row), or None when it moves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from eventsourcing.persistence import Tracking

from ledger.payment import Payment
from ledger.settlement import NOTHING, Split, refund_split, sale_split
from ledger.settlement_profile import SettlementProfile
from ledger.status import chargeback
from projections.base import Batch
from projections.rows import KeyedTable, Row

SPLIT_COLUMNS = (
    "sale_amount",
    "sale_commission",
    "sale_vat",
    "back_amount",
    "back_commission",
    "back_vat",
)
Moved = tuple[Row, Split]
# The payment and profile events a SplitBook follows.
EVENTS = (
    SettlementProfile.Set, SettlementProfile.Changed, Payment.Initiated,
    Payment.AmountDiscrepancyRecorded, Payment.Completed, Payment.Refunded,
    Payment.DisputeClosed, Payment.RefundFailed, Payment.CompletionReversed,
)  # fmt: skip
# When each money-moving event moved the money (Movement.at).
MOVED_AT = {
    Payment.Completed: "approved_at", Payment.Refunded: "refunded_at",
    Payment.DisputeClosed: "closed_at", Payment.RefundFailed: "failed_at",
    Payment.CompletionReversed: "reversed_at",
}  # fmt: skip
Handler = TypeVar("Handler", bound=Callable[..., None])


def for_each_event(dispatcher: Any) -> Callable[[Handler], Handler]:
    """Register the decorated handler of a `singledispatchmethod` for each of EVENTS."""

    def register(handler: Handler) -> Handler:
        for event_class in EVENTS:
            dispatcher.register(event_class)(handler)
        return handler

    return register


@dataclass(frozen=True)
class Movement:
    """What one event moved: `sign` times `split` of the payment's money (sign -1: given
    back), as entry `kind` at `at`."""

    kind: str  # completion, refund, chargeback, refund_failed, completion_reversed
    payment: Row
    split: Split
    at: datetime
    sign: int


def split_of(row: Row, prefix: str) -> Split:
    return Split(row[f"{prefix}_amount"], row[f"{prefix}_commission"], row[f"{prefix}_vat"])


def set_split(row: Row, prefix: str, split: Split) -> None:
    row[f"{prefix}_amount"] = split.amount
    row[f"{prefix}_commission"] = split.commission
    row[f"{prefix}_vat"] = split.vat


@dataclass(frozen=True)
class SplitBook:
    """The split bookkeeping of one view, in tables named after `prefix`."""

    prefix: str

    @property
    def rates(self) -> KeyedTable:
        columns = ("profile_id", "trainer_id", "commission_bps", "tax_type", "position")
        return KeyedTable(f"{self.prefix}_rates", "profile_id", columns, by_aggregate=False)

    @property
    def payments(self) -> KeyedTable:
        columns = ("payment_id", "trainer_id", "provider", "currency", "amount")
        return KeyedTable(
            f"{self.prefix}_payments",
            "payment_id",
            (*columns, "commission_bps", "vat_bps", *SPLIT_COLUMNS),
        )

    @property
    def refunds(self) -> KeyedTable:
        columns = ("refund_key", "amount", "commission", "vat", "failed")
        return KeyedTable(f"{self.prefix}_refunds", "refund_key", columns, by_aggregate=False)

    @property
    def table_names(self) -> tuple[str, str, str]:
        return (self.rates.name, self.payments.name, self.refunds.name)

    @property
    def ddl(self) -> tuple[str, ...]:
        p = self.prefix
        return (
            f"CREATE TABLE IF NOT EXISTS {p}_rates ("
            " profile_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL,"
            " commission_bps BIGINT NOT NULL, tax_type TEXT NOT NULL, position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {p}_payments ("
            " payment_id TEXT PRIMARY KEY, trainer_id TEXT NOT NULL, provider TEXT NOT NULL,"
            " currency TEXT NOT NULL, amount BIGINT NOT NULL, commission_bps BIGINT,"
            " vat_bps BIGINT, sale_amount BIGINT NOT NULL, sale_commission BIGINT NOT NULL,"
            " sale_vat BIGINT NOT NULL, back_amount BIGINT NOT NULL,"
            " back_commission BIGINT NOT NULL, back_vat BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {p}_refunds ("
            " refund_key TEXT PRIMARY KEY, amount BIGINT NOT NULL, commission BIGINT NOT NULL,"
            " vat BIGINT NOT NULL, failed BIGINT NOT NULL)",
        )

    def apply(
        self, batch: Batch, event: Any, tracking: Tracking, default_bps: int, vat_bps: int
    ) -> Movement | None:
        """Follow one of EVENTS; the money it moved, if any."""
        self.parties(batch)
        if isinstance(event, SettlementProfile.Set):
            self.profile_set(batch, event, tracking)
        elif isinstance(event, SettlementProfile.Changed):
            self.profile_changed(batch, event, tracking)
        elif isinstance(event, Payment.Initiated):
            self.initiated(batch, event)
        elif isinstance(event, Payment.AmountDiscrepancyRecorded):
            self.captured(batch, event)
        elif isinstance(event, Payment.Completed):
            moved = self.completed(batch, event, default_bps, vat_bps)
            return _movement("completion", moved, event.approved_at, 1)
        elif isinstance(event, Payment.Refunded):
            return _movement("refund", self.refunded(batch, event), event.refunded_at, -1)
        elif isinstance(event, Payment.DisputeClosed):
            return _movement("chargeback", self.charged_back(batch, event), event.closed_at, -1)
        elif isinstance(event, Payment.RefundFailed):
            moved = self.refund_failed(batch, event)
            return _movement("refund_failed", moved, event.failed_at, 1)
        elif isinstance(event, Payment.CompletionReversed):
            moved = self.completion_reversed(batch, event)
            return _movement("completion_reversed", moved, event.reversed_at, -1)
        return None

    def parties(self, batch: Batch) -> dict[str, tuple[str, str]]:
        """Payment id → (trainer, currency) of every payment the batch's events touch. The
        first call of a batch reads their rows in one query and announces their trainers'
        rates, so that a rebuild's page costs one query per table, not one per trainer."""
        key = f"{self.prefix}_parties"
        known: dict[str, tuple[str, str]] | None = batch.state.get(key)
        if known is None:
            if batch.rows.expected:
                batch.rows.get(self.payments, next(iter(batch.rows.expected)))
            known = {p["payment_id"]: (p["trainer_id"], p["currency"])
                     for p in batch.rows.read(self.payments)}  # fmt: skip
            for e in batch.events:
                if isinstance(e, Payment.Initiated):
                    known[str(e.originator_id)] = (e.trainer_id, e.currency)
            trainers = {trainer for trainer, _ in known.values()}
            batch.rows.expect(self.rates, map(_profile_id, trainers))
            batch.state[key] = known
        return known

    def movements(self, batch: Batch) -> list[tuple[tuple[str, str], datetime]]:
        """(trainer, currency) and moment of each money-moving event of the batch."""
        parties = self.parties(batch)
        return [
            (parties[str(e.originator_id)], getattr(e, MOVED_AT[type(e)]))
            for e in batch.events
            if type(e) in MOVED_AT and str(e.originator_id) in parties
        ]

    # --- rates in force: keyed by the profile's id, which the trainer's id gives ---------

    def profile_set(self, batch: Batch, event: SettlementProfile.Set, tracking: Tracking) -> None:
        rate = {"profile_id": str(event.originator_id), "trainer_id": event.trainer_id}
        self._put_rate(batch, rate, event, tracking)

    def profile_changed(
        self, batch: Batch, event: SettlementProfile.Changed, tracking: Tracking
    ) -> None:
        rate = batch.rows.get(self.rates, str(event.originator_id))
        if rate is not None:
            self._put_rate(batch, rate, event, tracking)

    def tax_type(self, batch: Batch, trainer_id: str) -> str:
        """The trainer's tax type in force (no profile: individual)."""
        rate = batch.rows.get(self.rates, _profile_id(trainer_id))
        return str(rate["tax_type"]) if rate is not None else "individual"

    def _put_rate(self, batch: Batch, rate: Row, event: Any, tracking: Tracking) -> None:
        rate |= {
            "commission_bps": event.commission_bps,
            "tax_type": event.tax_type,
            "position": tracking.notification_id,
        }
        batch.rows.put(self.rates, rate)

    # --- payments -----------------------------------------------------------------------

    def payment(self, batch: Batch, event: Any) -> Row | None:
        return batch.rows.get(self.payments, str(event.originator_id))

    def initiated(self, batch: Batch, event: Any) -> None:
        payment: Row = {
            "payment_id": str(event.originator_id),
            "trainer_id": event.trainer_id,
            "provider": event.provider,
            "currency": event.currency,
            "amount": event.amount,
            "commission_bps": None,
            "vat_bps": None,
            **dict.fromkeys(SPLIT_COLUMNS, 0),
        }
        batch.rows.put(self.payments, payment)

    def captured(self, batch: Batch, event: Any) -> None:
        # Saved just before Completed: the sale is what the provider captured.
        payment = self.payment(batch, event)
        if payment is not None:
            payment["amount"] = event.captured_amount
            batch.rows.put(self.payments, payment)

    def completed(self, batch: Batch, event: Any, default_bps: int, vat_bps: int) -> Moved | None:
        """The sale, at the trainer's rate in force now (no profile: `default_bps`)."""
        payment = self.payment(batch, event)
        if payment is None:
            return None
        profile_id = _profile_id(payment["trainer_id"])
        rate = batch.rows.get(self.rates, profile_id)
        bps = rate["commission_bps"] if rate is not None else default_bps
        sale = sale_split(payment["amount"], bps, vat_bps)
        payment |= {"commission_bps": bps, "vat_bps": vat_bps}
        set_split(payment, "sale", sale)
        set_split(payment, "back", NOTHING)
        batch.rows.put(self.payments, payment)
        return payment, sale

    def refunded(self, batch: Batch, event: Any) -> Moved | None:
        """What a refund reverses (NOTHING when nothing was posted to give back)."""
        payment = self.payment(batch, event)
        if payment is None:
            return None
        split = self._give_back(batch, payment, event.amount)
        refund = {
            "refund_key": _refund_key(payment, event.refund_id),
            "amount": split.amount,
            "commission": split.commission,
            "vat": split.vat,
            "failed": 0,
        }
        batch.rows.put(self.refunds, refund)
        return payment, split

    def charged_back(self, batch: Batch, event: Any) -> Moved | None:
        """A dispute lost: a refund of what it took (won or warning_closed: None)."""
        payment = self.payment(batch, event)
        if payment is None or event.outcome != "lost":
            return None  # won or closed with a warning: the money stays
        left = payment["sale_amount"] - payment["back_amount"]
        taken = chargeback(event.amount, left)  # as the aggregate counts it
        return payment, self._give_back(batch, payment, taken)

    def refund_failed(self, batch: Batch, event: Any) -> Moved | None:
        """The refund never left: exactly what it reversed comes back."""
        payment = self.payment(batch, event)
        if payment is None:
            return None
        refund = batch.rows.get(self.refunds, _refund_key(payment, event.refund_id))
        if refund is None or refund["failed"]:
            return None  # not one this view reversed, or failed before
        split = Split(refund["amount"], refund["commission"], refund["vat"])
        set_split(payment, "back", split_of(payment, "back") - split)
        batch.rows.put(self.payments, payment)
        batch.rows.put(self.refunds, {**refund, "failed": 1})
        return payment, split

    def completion_reversed(self, batch: Batch, event: Any) -> Moved | None:
        """The provider took the completion back: what remains of the sale."""
        payment = self.payment(batch, event)
        if payment is None:
            return None
        remains = split_of(payment, "sale") - split_of(payment, "back")
        set_split(payment, "sale", NOTHING)
        set_split(payment, "back", NOTHING)
        batch.rows.put(self.payments, payment)
        return payment, remains

    def _give_back(self, batch: Batch, payment: Row, amount: int) -> Split:
        """Reverse `amount` of the sale (a refund or a chargeback); returns what it reversed."""
        sale, back = split_of(payment, "sale"), split_of(payment, "back")
        if sale.amount <= 0 or amount <= 0:
            return NOTHING  # nothing was posted to give back
        split = refund_split(amount, sale, back, payment["commission_bps"], payment["vat_bps"])
        set_split(payment, "back", back + split)
        batch.rows.put(self.payments, payment)
        return split


def _movement(kind: str, moved: Moved | None, at: datetime, sign: int) -> Movement | None:
    return None if moved is None else Movement(kind, moved[0], moved[1], at, sign)


@lru_cache(maxsize=4096)  # a uuid5 per event otherwise
def _profile_id(trainer_id: str) -> str:
    return str(SettlementProfile.create_id(trainer_id))


def _refund_key(payment: Row, refund_id: str) -> str:
    return f"{payment['payment_id']}:{refund_id}"
