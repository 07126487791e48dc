"""Settlement over HTTP: trainers' profiles, the double-entry journal and its trial balance,
on both stores (CONTRACT.md, "Money owed")."""

from __future__ import annotations

import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_trainer_token
from ledger.application import PaymentLedger, PaymentOrder
from ledger.payment import Payment
from ledger.settings import Settings
from ledger.settlement_desk import SettlementDesk
from ledger.settlement_profile import SettlementProfile
from ledger.statement import Statement
from ledger.statement_desk import StatementDesk
from projections.runtime import ReadModels
from tests.api.test_audit_cli import ledger_cli
from tests.api.test_checkout import assert_error, payment_body
from tests.api.test_webhooks_stripe import live_server
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}


def set_profile(
    client: TestClient, trainer_id: str, headers: dict[str, str] = ADMIN, **body: Any
) -> Any:
    return client.put(
        f"/api/admin/trainers/{trainer_id}/settlement-profile", json=body, headers=headers
    )


def test_a_profile_is_set_changed_and_the_same_terms_append_nothing(
    client: TestClient, ledger: PaymentLedger
) -> None:
    first = set_profile(client, "trainer-9", tax_type="individual")
    assert first.status_code == 200, first.text
    body = first.json()
    assert {k: body[k] for k in ("trainer_id", "commission_bps", "tax_type")} == {
        "trainer_id": "trainer-9",
        "commission_bps": 1500,  # omitted: LEDGER_COMMISSION_BPS
        "tax_type": "individual",
    }
    assert body["effective_at"] and body["position"] == 1
    again = set_profile(client, "trainer-9", commission_bps=1500, tax_type="individual")
    assert again.status_code == 200 and again.json()["position"] == 1
    changed = set_profile(client, "trainer-9", commission_bps=1000, tax_type="business")
    assert (changed.json()["commission_bps"], changed.json()["tax_type"]) == (1000, "business")
    assert event_topics(ledger) == ["Set", "Changed"]


@pytest.mark.parametrize(
    "body",
    [
        {"commission_bps": 10_001, "tax_type": "individual"},
        {"commission_bps": -1, "tax_type": "individual"},
        {"commission_bps": "1500", "tax_type": "individual"},
        {"commission_bps": 15.0, "tax_type": "individual"},
        {"commission_bps": 1500, "tax_type": "company"},
        {"commission_bps": 1500},
        {"tax_type": "business", "effective_at": "2026-01-01"},
    ],
)
def test_bad_profiles_are_422_and_append_nothing(
    client: TestClient, ledger: PaymentLedger, body: dict[str, Any]
) -> None:
    assert_error(set_profile(client, "trainer-9", **body), 422)
    assert event_topics(ledger) == []


def test_a_bad_trainer_id_is_422_and_appends_nothing(
    client: TestClient, ledger: PaymentLedger
) -> None:
    for trainer_id in ("..", "tr%00ainer", "x" * 201):
        answer = set_profile(client, trainer_id, tax_type="business")
        assert answer.status_code in (404, 422), answer.text
    assert_error(set_profile(client, "x" * 201, tax_type="business"), 422)
    assert event_topics(ledger) == []


def test_only_an_admin_sets_a_profile(client: TestClient, ledger: PaymentLedger) -> None:
    assert_error(set_profile(client, "trainer-9", AUDITOR, tax_type="business"), 403, "forbidden")
    assert_error(set_profile(client, "trainer-9", {}, tax_type="business"), 401)
    assert event_topics(ledger) == []


# --- the journal --------------------------------------------------------------------------

TRAINER = "trainer-9"
PAYABLE = f"trainer:{TRAINER}:payable"
TOSS, COMMISSION, VAT = "provider:toss", "platform:commission", "platform:vat_payable"
WITHHOLDING, CASH = "tax:withholding_payable", "platform:cash"


def toss_paid(client: TestClient, order_id: str, amount: int, trainer_id: str = TRAINER) -> str:
    """A KRW payment confirmed through the fake Toss; its payment id."""
    body = payment_body(
        order_id=order_id, booking_id=f"b-{order_id}", amount=amount, trainer_id=trainer_id
    )
    created = client.post("/api/payments", json=body)
    assert created.status_code == 201, created.text
    confirm = {"paymentKey": f"tpk_{order_id}", "orderId": order_id, "amount": amount}
    assert client.post("/api/payments/toss/confirm", json=confirm).status_code == 200
    return str(created.json()["payment_id"])


def admin_refund(client: TestClient, payment_id: str, amount: int, key: str) -> None:
    answer = client.post(
        f"/api/admin/payments/{payment_id}/refunds",
        json={"reason": "customer cancelled the session", "amount": amount},
        headers={**ADMIN, "Idempotency-Key": key},
    )
    assert answer.status_code == 201, answer.text


def head(ledger: PaymentLedger) -> int:
    return ledger.recorder.max_notification_id() or 0


def journal(client: TestClient, ledger: PaymentLedger, **params: Any) -> list[dict[str, Any]]:
    """Every entry (all pages), once the journal has every stored event."""
    items: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        query = {"min_position": head(ledger), "after": after, "limit": 2, **params}
        page = client.get("/api/admin/journal", params=query, headers=AUDITOR)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        after = page.json()["next_after"]
    return items


def balances(client: TestClient, ledger: PaymentLedger) -> dict[str, dict[str, int]]:
    answer = client.get(
        "/api/admin/balances", params={"min_position": head(ledger)}, headers=AUDITOR
    )
    assert answer.status_code == 200, answer.text
    accounts: dict[str, dict[str, int]] = answer.json()["accounts"]
    return accounts


def postings(entry: dict[str, Any]) -> dict[str, int]:
    assert {p["currency"] for p in entry["postings"]} == {"KRW"}
    return {p["account"]: p["amount"] for p in entry["postings"]}


def assert_trial_balance(accounts: dict[str, dict[str, int]]) -> None:
    totals: dict[str, int] = {}
    for by_currency in accounts.values():
        for currency, balance in by_currency.items():
            totals[currency] = totals.get(currency, 0) + balance
    assert totals and all(total == 0 for total in totals.values()), totals


def test_the_contracts_worked_example_to_the_won(client: TestClient, ledger: PaymentLedger) -> None:
    first = toss_paid(client, "order-1", 100_000)
    second = toss_paid(client, "order-2", 50_000)
    admin_refund(client, first, 20_000, "refund-1")

    entries = journal(client, ledger)
    assert [(e["kind"], e["payment_id"], e["statement_id"]) for e in entries] == [
        ("completion", first, None),
        ("completion", second, None),
        ("refund", first, None),
    ]
    assert [postings(e) for e in entries] == [
        {TOSS: 100_000, PAYABLE: -83_500, COMMISSION: -15_000, VAT: -1_500},
        {TOSS: 50_000, PAYABLE: -41_750, COMMISSION: -7_500, VAT: -750},
        {TOSS: -20_000, PAYABLE: 16_700, COMMISSION: 3_000, VAT: 300},
    ]
    positions = [e["position"] for e in entries]
    assert positions == sorted(positions) and len(set(e["entry_id"] for e in entries)) == 3
    assert balances(client, ledger) == {
        TOSS: {"KRW": 130_000},
        PAYABLE: {"KRW": -108_550},  # the contract's "before tax"
        COMMISSION: {"KRW": -19_500},
        VAT: {"KRW": -1_950},
    }
    only_vat = journal(client, ledger, account=VAT, after=positions[0])
    assert [e["position"] for e in only_vat] == positions[1:]


def test_a_profile_change_applies_only_to_payments_completed_after_it(
    client: TestClient, ledger: PaymentLedger
) -> None:
    before = toss_paid(client, "order-1", 100_000)
    assert set_profile(client, TRAINER, commission_bps=1000, tax_type="business").status_code == 200
    after = toss_paid(client, "order-2", 100_000)
    other = toss_paid(client, "order-3", 10_000, trainer_id="trainer-8")
    assert set_profile(client, TRAINER, commission_bps=2000, tax_type="business").status_code == 200
    admin_refund(client, before, 10_000, "refund-1")  # at its sale's rate, 15 %
    admin_refund(client, after, 10_000, "refund-2")  # at its sale's rate, 10 %
    latest = toss_paid(client, "order-4", 100_000)

    by_kind = [
        (e["kind"], e["payment_id"], postings(e)[COMMISSION]) for e in journal(client, ledger)
    ]
    assert by_kind == [
        ("completion", before, -15_000),
        ("completion", after, -10_000),
        ("completion", other, -1_500),  # no profile: LEDGER_COMMISSION_BPS
        ("refund", before, 1_500),
        ("refund", after, 1_000),
        ("completion", latest, -20_000),
    ]


def test_a_full_refund_after_partial_ones_nets_every_account_to_zero(
    client: TestClient, ledger: PaymentLedger
) -> None:
    payment = toss_paid(client, "order-1", 100_011)
    for n in range(3):
        admin_refund(client, payment, 33_337, f"refund-{n}")
    entries = journal(client, ledger)
    assert [e["kind"] for e in entries] == ["completion", "refund", "refund", "refund"]
    # 100,011 → C 15,002 (15,001.65), V 1,500; each third, 33,337 → C 5,001 (5,000.55), V 500:
    # three of those would reverse 15,003, so the last takes what remains, 5,000.
    assert [postings(e) for e in entries] == [
        {TOSS: 100_011, PAYABLE: -83_509, COMMISSION: -15_002, VAT: -1_500},
        {TOSS: -33_337, PAYABLE: 27_836, COMMISSION: 5_001, VAT: 500},
        {TOSS: -33_337, PAYABLE: 27_836, COMMISSION: 5_001, VAT: 500},
        {TOSS: -33_337, PAYABLE: 27_837, COMMISSION: 5_000, VAT: 500},
    ]
    for entry in entries:
        assert sum(p["amount"] for p in entry["postings"]) == 0
    accounts = balances(client, ledger)
    assert accounts == {a: {"KRW": 0} for a in (TOSS, PAYABLE, COMMISSION, VAT)}


def test_the_journal_rejects_bad_queries_and_only_admins_and_auditors_read_it(
    client: TestClient, settings: Settings
) -> None:
    assert_error(client.get("/api/admin/journal", params={"limit": 0}, headers=ADMIN), 422)
    assert_error(client.get("/api/admin/journal", params={"after": -1}, headers=ADMIN), 422)
    trainer = {"Authorization": f"Bearer {issue_trainer_token(settings, TRAINER)}"}
    assert_error(client.get("/api/admin/balances", headers=trainer), 403)
    assert client.get("/api/admin/balances", headers=ADMIN).json() == {"accounts": {}}


# --- provider truth, an independent fold, a rebuild ------------------------------------------

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def paid(ledger: PaymentLedger, order_id: str, amount: int, **kwargs: Any) -> UUID:
    """A payment completed through the ledger's commands (as the provider adapters call them)."""
    trainer_id = kwargs.pop("trainer_id", TRAINER)
    currency, provider = kwargs.pop("currency", "KRW"), kwargs.pop("provider", "toss")
    order = PaymentOrder(
        order_id,
        f"b-{order_id}",
        "c-1",
        "Kim",
        trainer_id,
        "2026-12-05",
        amount,
        currency,
        provider,
    )
    payment_id = ledger.initiate(order).payment_id
    ledger.complete(payment_id, f"pk-{order_id}", "card", NOW, **kwargs)
    return payment_id


def test_provider_truth_moves_the_journal(client: TestClient, ledger: PaymentLedger) -> None:
    captured = paid(ledger, "captured", 10_000, captured_amount=9_000)
    reversed_ = paid(ledger, "reversed", 20_000)
    ledger.await_deposit(reversed_, "pk-reversed", "secret", reason="deposit error")
    failed = paid(ledger, "failed", 30_000)
    ledger.refund(failed, "re_1", 10_000, "customer asked")
    ledger.fail_refund(failed, "re_1", "the bank refused it")
    lost = paid(ledger, "lost", 40_000)
    ledger.refund(lost, "re_2", 10_000, "customer asked")
    ledger.open_dispute(lost, "dp_1", 40_000, "fraudulent")
    ledger.close_dispute(lost, "dp_1", "lost", 40_000)  # takes the 30,000 not refunded
    won = paid(ledger, "won", 5_000)
    ledger.open_dispute(won, "dp_2", 5_000, "not received")
    ledger.close_dispute(won, "dp_2", "won", 5_000)

    entries = [(e["kind"], e["payment_id"], postings(e)) for e in journal(client, ledger)]
    sale_40k = {TOSS: 40_000, PAYABLE: -33_400, COMMISSION: -6_000, VAT: -600}
    assert entries == [
        (
            "completion",
            str(captured),
            {TOSS: 9_000, PAYABLE: -7_515, COMMISSION: -1_350, VAT: -135},
        ),
        (
            "completion",
            str(reversed_),
            {TOSS: 20_000, PAYABLE: -16_700, COMMISSION: -3_000, VAT: -300},
        ),
        (
            "completion_reversed",
            str(reversed_),
            {TOSS: -20_000, PAYABLE: 16_700, COMMISSION: 3_000, VAT: 300},
        ),
        (
            "completion",
            str(failed),
            {TOSS: 30_000, PAYABLE: -25_050, COMMISSION: -4_500, VAT: -450},
        ),
        ("refund", str(failed), {TOSS: -10_000, PAYABLE: 8_350, COMMISSION: 1_500, VAT: 150}),
        (
            "refund_failed",
            str(failed),
            {TOSS: 10_000, PAYABLE: -8_350, COMMISSION: -1_500, VAT: -150},
        ),
        ("completion", str(lost), sale_40k),
        ("refund", str(lost), {TOSS: -10_000, PAYABLE: 8_350, COMMISSION: 1_500, VAT: 150}),
        ("chargeback", str(lost), {TOSS: -30_000, PAYABLE: 25_050, COMMISSION: 4_500, VAT: 450}),
        ("completion", str(won), {TOSS: 5_000, PAYABLE: -4_175, COMMISSION: -750, VAT: -75}),
    ]
    accounts = balances(client, ledger)
    assert accounts[TOSS] == {"KRW": 9_000 + 30_000 + 5_000}
    assert_trial_balance(accounts)


def random_history(
    ledger: PaymentLedger,
    desk: SettlementDesk,
    seed: int,
    count: int,
    statements: StatementDesk | None = None,
) -> None:
    """Payments, profile changes, refunds (some failing later), disputes, reversals and
    captured amounts that differ, in a random order of trainers and currencies; with
    `statements`, three periods closed along the way and most of them paid."""
    rng = random.Random(seed)
    for n in range(count):
        if statements is not None and n and n % (count // 4) == 0:
            close_and_pay(statements, rng, CLOSING_DAYS[n // (count // 4) - 1])
        if rng.random() < 0.15:
            desk.set_profile(
                rng.choice(TRAINERS),
                rng.choice([None, 0, 990, 1234, 3333]),
                rng.choice(["individual", "business"]),
            )
        currency, provider = rng.choice([("KRW", "toss"), ("USD", "stripe"), ("KRW", "stripe")])
        amount = rng.randint(1, 300_000)
        captured = rng.randint(1, amount) if rng.random() < 0.1 else None
        payment_id = paid(
            ledger,
            f"o-{seed}-{n}",
            amount,
            trainer_id=rng.choice(TRAINERS),
            currency=currency,
            provider=provider,
            captured_amount=captured,
        )
        if rng.random() < 0.08:
            ledger.await_deposit(payment_id, f"pk-{n}", "secret", reversed_at=NOW)
            continue
        refunds = []
        for r in range(rng.choice([0, 0, 1, 2, 3])):
            left = ledger.get_payment(payment_id).refundable_amount
            if left > 0:
                share = left if rng.random() < 0.3 else rng.randint(1, left)
                ledger.refund(payment_id, f"re-{n}-{r}", share, "asked", NOW)
                refunds.append(f"re-{n}-{r}")
        if refunds and rng.random() < 0.3:
            ledger.fail_refund(payment_id, rng.choice(refunds), "failed", NOW)
        if rng.random() < 0.15:
            ledger.open_dispute(payment_id, f"dp-{n}", amount, "fraud", NOW)
            outcome = rng.choice(["lost", "won", "warning_closed"])
            ledger.close_dispute(payment_id, f"dp-{n}", outcome, rng.randint(1, amount), NOW)


TRAINERS = ("t-1", "t-2", "t-3")
# The last days of the periods random_history closes (every event is dated NOW, 1 December
# 2026, so after December closes the movements land in the next open statement).
CLOSING_DAYS = (date(2026, 12, 31), date(2027, 1, 31), date(2027, 2, 28))


def close_and_pay(statements: StatementDesk, rng: random.Random, period_end: date) -> None:
    closing = statements.close(period_end, period_end + timedelta(days=1))
    for statement_id in closing.closed:
        if rng.random() < 0.7:
            statements.pay(UUID(statement_id), f"transfer-{statement_id[:8]}")


def fold_balances(
    ledger: PaymentLedger, commission_bps: int = 1500, vat_bps: int = 1000
) -> dict[str, dict[str, int]]:
    """The trial balance straight from the stored events, with its own arithmetic (decimal
    half-up rounding), sharing nothing with the projection."""

    def rounded(amount: int, bps: int) -> int:
        return int((Decimal(amount) * bps / 10_000).quantize(Decimal(1), ROUND_HALF_UP))

    rates: dict[str, int] = {}
    trainer_of: dict[UUID, str] = {}
    closed: dict[UUID, Statement.Closed] = {}
    sales: dict[UUID, dict[str, Any]] = {}
    totals: dict[tuple[str, str], int] = defaultdict(int)

    def post(sale: dict[str, Any], a: int, c: int, v: int, sign: int) -> None:
        for account, amount in (
            (f"provider:{sale['provider']}", a),
            (f"trainer:{sale['trainer']}:payable", -(a - c - v)),
            (COMMISSION, -c),
            (VAT, -v),
        ):
            totals[(account, sale["currency"])] += sign * amount

    def give_back(sale: dict[str, Any], amount: int) -> tuple[int, int, int]:
        a, c, v = sale["split"]
        ra, rc, rv = sale["back"]
        if ra + amount >= a:
            split = (a - ra, c - rc, v - rv)
        else:
            cr = rounded(amount, sale["bps"])
            split = (amount, cr, rounded(cr, vat_bps))
        sale["back"] = tuple(x + y for x, y in zip(sale["back"], split, strict=True))
        post(sale, *split, sign=-1)
        return split

    stored = ledger.recorder.select_notifications(start=None, limit=1_000_000)
    for event in map(ledger.mapper.to_domain_event, stored):
        sale = sales.get(event.originator_id, {})
        if isinstance(event, SettlementProfile.Set):
            trainer_of[event.originator_id] = event.trainer_id
            rates[event.trainer_id] = event.commission_bps
        elif isinstance(event, SettlementProfile.Changed):
            rates[trainer_of[event.originator_id]] = event.commission_bps
        elif isinstance(event, Payment.Initiated):
            sales[event.originator_id] = {
                "trainer": event.trainer_id,
                "currency": event.currency,
                "provider": event.provider,
                "amount": event.amount,
            }
        elif isinstance(event, Payment.AmountDiscrepancyRecorded):
            sale["amount"] = event.captured_amount
        elif isinstance(event, Payment.Completed):
            bps = rates.get(sale["trainer"], commission_bps)
            c = rounded(sale["amount"], bps)
            sale |= {
                "bps": bps,
                "split": (sale["amount"], c, rounded(c, vat_bps)),
                "back": (0, 0, 0),
                "refunds": {},
            }
            post(sale, *sale["split"], sign=1)
        elif isinstance(event, Payment.Refunded):
            sale["refunds"][event.refund_id] = give_back(sale, event.amount)
        elif isinstance(event, Payment.RefundFailed):
            split = sale["refunds"][event.refund_id]
            sale["back"] = tuple(x - y for x, y in zip(sale["back"], split, strict=True))
            post(sale, *split, sign=1)
        elif isinstance(event, Payment.DisputeClosed) and event.outcome == "lost":
            left = sale["split"][0] - sale["back"][0]
            if min(event.amount, left) > 0:
                give_back(sale, min(event.amount, left))
        elif isinstance(event, Payment.CompletionReversed):
            remains = [x - y for x, y in zip(sale["split"], sale["back"], strict=True)]
            post(sale, *remains, sign=-1)
            sale |= {"split": (0, 0, 0), "back": (0, 0, 0)}
        elif isinstance(event, Statement.Closed | Statement.PaidOut):
            if isinstance(event, Statement.Closed):
                closed[event.originator_id] = event
            close = closed[event.originator_id]
            moved = close.withholding if event is close else close.payout_amount
            to = WITHHOLDING if event is close else CASH
            totals[(f"trainer:{close.trainer_id}:payable", close.currency)] += moved
            totals[(to, close.currency)] -= moved
    accounts: dict[str, dict[str, int]] = {}
    for (account, currency), balance in sorted(totals.items()):
        accounts.setdefault(account, {})[currency] = balance
    return accounts


def test_balances_equal_an_independent_fold_of_the_stored_events(
    client: TestClient, ledger: PaymentLedger
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    random_history(ledger, services.settlement, seed=13, count=120, statements=services.statements)
    accounts = balances(client, ledger)
    folded = fold_balances(ledger)
    assert set(accounts) == set(folded)
    for account, by_currency in folded.items():
        assert accounts[account] == by_currency, account
    assert_trial_balance(accounts)
    assert {"KRW", "USD"} <= {c for by_currency in accounts.values() for c in by_currency}
    assert accounts[WITHHOLDING] and accounts[CASH]  # closes and payouts took part
    for entry in journal(client, ledger, limit=500):
        sums: dict[str, int] = defaultdict(int)
        for posting in entry["postings"]:
            sums[posting["currency"]] += posting["amount"]
        assert set(sums.values()) == {0}, entry


def test_ledger_rebuild_reproduces_the_journal(database_url: str, fake: FakeProviders) -> None:
    settings = make_settings(database_url, fake)
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        ledger = services.ledger
        payment = toss_paid(client, "order-1", 99_999)
        admin_refund(client, payment, 33_333, "refund-1")
        random_history(
            ledger, services.settlement, seed=7, count=40, statements=services.statements
        )
        before_balances = balances(client, ledger)
        before = services.read_models.journal.dump()
    assert before["journal_entries"] and before["journal_postings"]

    result = ledger_cli(database_url, "rebuild", "--projection", "journal")
    assert result.returncode == 0, result.stderr
    read_models = ReadModels(settings)
    try:
        assert read_models.journal.dump() == before
    finally:
        read_models.close()
    assert before_balances == {
        a: {
            row["currency"]: row["balance"]
            for row in before["journal_balances"]
            if row["account"] == a
        }
        for a in before_balances
    }


def test_admins_setting_a_profile_at_once_each_get_one_outcome(
    settings: Settings, fake: FakeProviders
) -> None:
    terms = [(bps, tax) for bps in (900, 1100, 1300, 1700) for tax in ("individual", "business")]
    with live_server(settings) as (base_url, ledger):

        def put(job: tuple[int, str]) -> httpx.Response:
            return httpx.put(
                f"{base_url}/api/admin/trainers/{TRAINER}/settlement-profile",
                json={"commission_bps": job[0], "tax_type": job[1]},
                headers=ADMIN,
                timeout=30,
            )

        with ThreadPoolExecutor(max_workers=len(terms)) as pool:
            answers = list(pool.map(put, terms))
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        # Each answer is its own terms (each was decided on the latest version): no lost
        # update, one event per request.
        assert [(a.json()["commission_bps"], a.json()["tax_type"]) for a in answers] == terms
        assert event_topics(ledger) == ["Set"] + ["Changed"] * (len(terms) - 1)
        assert len({a.json()["position"] for a in answers}) == len(terms)  # one event each
