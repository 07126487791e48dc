"""Settlement at scale (issue 13, "Done when"): a seeded random history of 2,000 payments
over six months, with refunds (partial, full, awkward, failing later), lost and won
disputes, reversals, profile changes, closes and payouts, and refunds after payout. The
trial balance sums to zero per currency and equals a fold of the stored events that shares
no code with the projections; every paid statement's payout is what the journal paid.

Written through `PaymentLedger.save` in bulk (aggregates built with their own methods, as
the commands would) and through the settlement and statement desks, not over HTTP: on
this 2-core machine 2,000 payments over HTTP would take minutes per store.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from ledger.order import OrderClaim
from ledger.payment import Payment
from ledger.reactions import trainer_notices
from ledger.settlement_profile import SettlementProfile
from ledger.statement import Statement
from tests.api.test_journal import ADMIN

PAYMENTS = 2_000
MONTHS = [date(2025, m, 1) for m in range(1, 7)]  # six past months: every one has ended
TRAINERS = [f"t-{n}" for n in range(1, 7)]
CHUNK = 60  # payments per save: one transaction
COMMISSION_BPS, VAT_BPS, WITHHOLDING_BPS = 1500, 1000, 330  # the settings' defaults
COMMISSION, VAT = "platform:commission", "platform:vat_payable"
WITHHOLDING, CASH = "tax:withholding_payable", "platform:cash"


def half_up(amount: int, bps: int) -> int:
    """amount * bps / 10,000 rounded half up, for amount >= 0: this test's own arithmetic."""
    whole, rest = divmod(amount * bps, 10_000)
    return whole + (1 if 2 * rest >= 10_000 else 0)


# --- the history --------------------------------------------------------------------------


@dataclass
class History:
    ledger: PaymentLedger
    services: Any
    rng: random.Random
    paid: list[Payment] = field(default_factory=list)  # completed, kept for later refunds
    unpaid: list[str] = field(default_factory=list)  # closed statements not paid yet
    count: int = 0

    def month(self, start: date, payments: int) -> None:
        """`payments` new payments dated in the month, refunds of older ones, then the
        month closed and most statements paid."""
        for first in range(0, payments, CHUNK):
            if self.rng.random() < 0.5:
                self.change_profile()
            changed = [self.payment(start) for _ in range(min(CHUNK, payments - first))]
            changed += self.late_refunds(start, len(changed) // 6)
            self.save(changed)
        self.close(start)

    def payment(self, start: date) -> Payment:
        rng, n = self.rng, self.count
        self.count += 1
        currency, provider = rng.choice([("KRW", "toss"), ("KRW", "stripe"), ("USD", "stripe")])
        awkward = [99_999, 100_011, 33_333, 1, 3, 10_005] if currency == "KRW" else [1, 3, 999]
        amount = rng.choice(awkward) if rng.random() < 0.2 else rng.randint(50, 400_000)
        payment = Payment(
            order_id=f"o-{n}", booking_id=f"b-{n}", customer_id=f"c-{n % 97}",
            customer_name="Kim", trainer_id=rng.choice(TRAINERS), booking_date="2025-07-01",
            amount=amount, currency=currency, provider=provider,
        )  # fmt: skip
        at = moment(start, rng)
        if rng.random() < 0.07:
            payment.fail("CARD_DECLINED", "declined", at)
            return payment
        captured = rng.randint(1, amount) if rng.random() < 0.05 else None
        payment.complete(f"pk-{n}", "card", at, captured_amount=captured)
        if rng.random() < 0.03:
            payment.await_deposit(f"pk-{n}", "secret", reversed_at=at + timedelta(hours=1))
            return payment
        self.refunds(payment, at, rng.choice([0, 0, 0, 1, 2, 3]))
        if rng.random() < 0.06:
            self.dispute(payment, at + timedelta(hours=3))
        self.paid.append(payment)
        return payment

    def refunds(self, payment: Payment, at: datetime, count: int) -> None:
        """Partial refunds (thirds, random shares, a remainder), some failing later."""
        for r in range(count):
            left = payment.refundable_amount
            if left <= 0 or payment.status == "disputed":
                return
            third = max(1, payment.amount // 3)
            share = self.rng.choice([left, min(left, third), self.rng.randint(1, left)])
            refund_id = f"re-{payment.order_id}-{len(payment.refund_ids)}"
            payment.refund(refund_id, share, "asked", at + timedelta(minutes=r + 1))
            if self.rng.random() < 0.1:
                payment.fail_refund(refund_id, "bank refused", at + timedelta(minutes=r + 30))

    def dispute(self, payment: Payment, at: datetime) -> None:
        key = f"dp-{payment.order_id}-{len(payment.closed_dispute_ids)}"
        if payment.open_dispute(key, payment.amount, "fraudulent", at):
            outcome = self.rng.choice(["lost", "lost", "won", "warning_closed"])
            taken = self.rng.choice([payment.amount, self.rng.randint(1, payment.amount)])
            payment.close_dispute(key, outcome, taken, at + timedelta(days=1))

    def late_refunds(self, start: date, count: int) -> list[Payment]:
        """Refunds of earlier months' payments, dated in this month: clawbacks when their
        statement was closed or paid."""
        older = [p for p in self.paid if p.completed_at and p.completed_at.date() < start]
        picked = self.rng.sample(older, min(count, len(older)))
        for payment in picked:
            at = moment(start, self.rng)
            self.refunds(payment, at, self.rng.choice([1, 1, 2]))
            if self.rng.random() < 0.1:
                self.dispute(payment, at + timedelta(hours=2))
        return picked

    def save(self, payments: list[Payment]) -> None:
        aggregates: list[Any] = []
        for payment in payments:
            if payment.version == len(payment.pending_events):  # new: initiate's claim
                aggregates.append(OrderClaim.of(payment))
            aggregates += [payment, *trainer_notices(payment)]
        self.ledger.save(*aggregates)

    def change_profile(self) -> None:
        trainer = self.rng.choice(TRAINERS)
        bps = self.rng.choice([None, 0, 990, 1234, 1500, 3333, 10_000])
        tax_type = self.rng.choice(["individual", "business"])
        self.services.settlement.set_profile(trainer, bps, tax_type)

    def close(self, start: date) -> None:
        end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        closed = self.services.statements.close(end, end + timedelta(days=1)).closed
        waiting, self.unpaid = self.unpaid + closed, []
        for statement_id in waiting:
            if self.rng.random() < 0.75:
                self.services.statements.pay(UUID(statement_id), f"transfer-{statement_id[:8]}")
            else:
                self.unpaid.append(statement_id)


def moment(start: date, rng: random.Random) -> datetime:
    """A moment of the month starting at `start`, in Seoul's business hours (so in that
    month in UTC and in Seoul), a refund or dispute after it staying in the month."""
    day = start + timedelta(days=rng.randint(0, 24))
    return datetime(day.year, day.month, day.day, rng.randint(0, 8), rng.randint(0, 59), tzinfo=UTC)


# --- the independent fold ----------------------------------------------------------------


@dataclass
class Sale:
    trainer: str
    currency: str
    provider: str
    amount: int
    bps: int = 0
    split: tuple[int, int, int] = (0, 0, 0)  # amount, commission, VAT posted by the sale
    back: tuple[int, int, int] = (0, 0, 0)  # what refunds and chargebacks reversed
    refunds: dict[str, tuple[int, int, int]] = field(default_factory=dict)


@dataclass
class Fold:
    """The journal's balances, from the stored events, with this file's arithmetic."""

    totals: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    rates: dict[str, tuple[int, str]] = field(default_factory=dict)  # trainer → bps, tax
    trainer_of: dict[UUID, str] = field(default_factory=dict)  # profile id → trainer
    sales: dict[UUID, Sale] = field(default_factory=dict)
    closed: dict[UUID, Statement.Closed] = field(default_factory=dict)
    paid_out: dict[UUID, int] = field(default_factory=dict)

    def add(self, account: str, currency: str, amount: int) -> None:
        if amount:  # the journal posts no zero amounts, so an account may not appear
            self.totals[(account, currency)] += amount

    def post(self, sale: Sale, moved: tuple[int, int, int], sign: int) -> None:
        a, c, v = moved
        for account, amount in (
            (f"provider:{sale.provider}", a),
            (f"trainer:{sale.trainer}:payable", -(a - c - v)),
            (COMMISSION, -c),
            (VAT, -v),
        ):
            self.add(account, sale.currency, sign * amount)

    def give_back(self, sale: Sale, amount: int) -> tuple[int, int, int]:
        """A refund reverses in proportion; the one reaching the sale reverses the rest."""
        (a, c, v), (ba, bc, bv) = sale.split, sale.back
        if ba + amount >= a:
            moved = (a - ba, c - bc, v - bv)
        else:
            commission = half_up(amount, sale.bps)
            moved = (amount, commission, half_up(commission, VAT_BPS))
        sale.back = (ba + moved[0], bc + moved[1], bv + moved[2])
        self.post(sale, moved, -1)
        return moved

    def apply(self, event: Any) -> None:
        sale = self.sales.get(event.originator_id)
        if isinstance(event, SettlementProfile.Set):
            self.trainer_of[event.originator_id] = event.trainer_id
        if isinstance(event, SettlementProfile.Set | SettlementProfile.Changed):
            trainer = self.trainer_of[event.originator_id]
            self.rates[trainer] = (event.commission_bps, event.tax_type)
        elif isinstance(event, Payment.Initiated):
            self.sales[event.originator_id] = Sale(
                event.trainer_id, event.currency, event.provider, event.amount
            )
        elif sale is not None:
            self.payment_event(sale, event)
        elif isinstance(event, Statement.Closed):
            self.statement_closed(event)
        elif isinstance(event, Statement.PaidOut):
            close = self.closed[event.originator_id]
            self.paid_out[event.originator_id] = close.payout_amount
            self.add(f"trainer:{close.trainer_id}:payable", close.currency, close.payout_amount)
            self.add(CASH, close.currency, -close.payout_amount)

    def payment_event(self, sale: Sale, event: Any) -> None:
        if isinstance(event, Payment.AmountDiscrepancyRecorded):
            sale.amount = event.captured_amount
        elif isinstance(event, Payment.Completed):
            sale.bps = self.rates.get(sale.trainer, (COMMISSION_BPS, ""))[0]
            commission = half_up(sale.amount, sale.bps)
            sale.split = (sale.amount, commission, half_up(commission, VAT_BPS))
            sale.back = (0, 0, 0)
            self.post(sale, sale.split, 1)
        elif isinstance(event, Payment.Refunded):
            sale.refunds[event.refund_id] = self.give_back(sale, event.amount)
        elif isinstance(event, Payment.RefundFailed):
            moved = sale.refunds.pop(event.refund_id)
            (ba, bc, bv), (ma, mc, mv) = sale.back, moved
            sale.back = (ba - ma, bc - mc, bv - mv)
            self.post(sale, moved, 1)
        elif isinstance(event, Payment.DisputeClosed) and event.outcome == "lost":
            taken = min(event.amount, sale.split[0] - sale.back[0])
            if taken > 0:
                self.give_back(sale, taken)
        elif isinstance(event, Payment.CompletionReversed):
            (a, c, v), (ba, bc, bv) = sale.split, sale.back
            self.post(sale, (a - ba, c - bc, v - bv), -1)
            sale.split = sale.back = (0, 0, 0)

    def statement_closed(self, event: Statement.Closed) -> None:
        """Withholding and payout checked from the statement's own figures."""
        tax_type = self.rates.get(event.trainer_id, (0, "individual"))[1]
        before_tax = event.carried_in + event.gross_sales - event.refunds
        before_tax -= event.commission + event.vat
        expected = half_up(max(0, before_tax), WITHHOLDING_BPS) if tax_type == "individual" else 0
        assert event.withholding == expected, (event.trainer_id, tax_type, before_tax)
        assert event.payout_amount == max(0, before_tax - expected)
        self.closed[event.originator_id] = event
        self.add(f"trainer:{event.trainer_id}:payable", event.currency, expected)
        self.add(WITHHOLDING, event.currency, -expected)

    def accounts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (account, currency), balance in sorted(self.totals.items()):
            out.setdefault(account, {})[currency] = balance
        return out


def stored_events(ledger: PaymentLedger) -> Iterator[Any]:
    start = 1
    while True:
        page = ledger.recorder.select_notifications(start=start, limit=5_000)
        if not page:
            return
        yield from map(ledger.mapper.to_domain_event, page)
        start = page[-1].id + 1


# --- the test -----------------------------------------------------------------------------


def journal_entries(read_models: Any) -> Iterator[dict[str, Any]]:
    after = 0
    while page := read_models.journal.entries(after=after, limit=500):
        yield from page
        after = page[-1]["position"]


def test_a_random_history_of_2000_payments_balances_and_equals_a_fold_of_its_events(
    client: TestClient,
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    ledger: PaymentLedger = services.ledger
    history = History(ledger, services, random.Random(2_000))
    for start in MONTHS:
        history.month(start, PAYMENTS // len(MONTHS) + (start == MONTHS[0]) * (PAYMENTS % 6))
    assert history.count == PAYMENTS
    head = ledger.recorder.max_notification_id() or 0
    services.read_models.wait(head, 60.0, ("journal", "statements"))

    fold = Fold()
    for event in stored_events(ledger):
        fold.apply(event)
    answer = client.get("/api/admin/balances", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    accounts = answer.json()["accounts"]
    assert accounts == fold.accounts()
    totals: dict[str, int] = defaultdict(int)
    for by_currency in accounts.values():
        for currency, balance in by_currency.items():
            totals[currency] += balance
    assert dict(totals) == {"KRW": 0, "USD": 0}

    assert accounts[WITHHOLDING] and accounts[CASH] and len(fold.paid_out) > 20
    assert {"individual", "business"} <= {tax for _, tax in fold.rates.values()}

    paid_by_journal: dict[str, int] = defaultdict(int)
    kinds: set[str] = set()
    for entry in journal_entries(services.read_models):
        kinds.add(entry["kind"])
        sums: dict[str, int] = defaultdict(int)
        for posting in entry["postings"]:
            sums[posting["currency"]] += posting["amount"]
        assert set(sums.values()) == {0}, entry
        if entry["kind"] == "payout":
            paid_by_journal[entry["statement_id"]] += sum(
                p["amount"] for p in entry["postings"] if p["account"].endswith(":payable")
            )
    statements = services.read_models.statements.page(limit=100_000)
    paid = {s["statement_id"]: s for s in statements if s["status"] == "paid"}
    assert set(paid) == {str(sid) for sid, amount in fold.paid_out.items()}
    for statement_id, statement in paid.items():
        assert paid_by_journal.get(statement_id, 0) == statement["payout_amount"], statement
    assert_statements_agree_with_the_fold(statements, fold)

    # The history took every path it was meant to.
    assert kinds == {"completion", "refund", "chargeback", "refund_failed",
                     "completion_reversed", "withholding", "payout"}  # fmt: skip
    assert any(s["carried_in"] < 0 for s in statements)
    assert clawbacks(services.read_models, paid) > 20


def clawbacks(read_models: Any, paid: dict[str, dict[str, Any]]) -> int:
    """Refund lines whose payment's sale is in another statement that was paid."""
    sold_in: dict[str, str] = {}
    back: list[tuple[str, str]] = []
    for statement_id in [s["statement_id"] for s in read_models.statements.page(limit=100_000)]:
        for line in read_models.statements.statement(statement_id)["lines"]:
            if line["kind"] == "sale":
                sold_in[line["payment_id"]] = statement_id
            else:
                back.append((line["payment_id"], statement_id))
    return sum(sold_in.get(p) in paid and sold_in[p] != s for p, s in back)


def assert_statements_agree_with_the_fold(statements: list[dict[str, Any]], fold: Fold) -> None:
    """Per trainer and currency, what the statements hold before tax, less what was
    withheld and paid out, is what the fold says the trainer is still owed; and what was
    carried into statements is what closed statements left negative."""
    owed: dict[tuple[str, str], int] = defaultdict(int)
    carried: dict[tuple[str, str], int] = defaultdict(int)
    for s in statements:
        key = (s["trainer_id"], s["currency"])
        owed[key] += s["gross_sales"] - s["refunds"] - s["commission"] - s["vat"]
        owed[key] -= s["withholding"] + (s["payout_amount"] if s["status"] == "paid" else 0)
        carried[key] += s["carried_in"]
        if s["status"] != "open":
            result = s["carried_in"] + s["gross_sales"] - s["refunds"] - s["commission"]
            carried[key] -= min(0, result - s["vat"] - s["withholding"])
    for (trainer, currency), amount in owed.items():
        assert -fold.totals.get((f"trainer:{trainer}:payable", currency), 0) == amount, trainer
    assert set(carried.values()) == {0}, carried
