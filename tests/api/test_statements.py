"""Statements per trainer, period and currency; closing a period (withholding), payouts and
clawbacks, over HTTP on both stores (CONTRACT.md, "Money owed")."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_trainer_token
from api.routers.admin import current_time
from ledger.application import PaymentLedger, PaymentOrder
from ledger.settings import Settings
from ledger.statement_desk import StatementDesk
from projections.runtime import ReadModels
from tests.api.test_audit_cli import ledger_cli
from tests.api.test_checkout import assert_error
from tests.api.test_journal import (
    ADMIN,
    AUDITOR,
    CASH,
    PAYABLE,
    TRAINER,
    WITHHOLDING,
    admin_refund,
    assert_trial_balance,
    balances,
    head,
    journal,
    set_profile,
    toss_paid,
)
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.live import uvicorn_serving

SEOUL = ZoneInfo("Asia/Seoul")
NOV = datetime(2025, 11, 10, 3, 0, tzinfo=UTC)  # a past month: it has ended whenever this runs


def pin_clock(client: TestClient, now: datetime) -> None:
    client.app.dependency_overrides[current_time] = lambda: now  # type: ignore[attr-defined]


def statements(client: TestClient, ledger: PaymentLedger, **params: Any) -> list[dict[str, Any]]:
    """Every statement (all pages, with lines), once the views have every stored event."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"min_position": head(ledger), "limit": 2, **params}
        if cursor:
            query["cursor"] = cursor
        page = client.get("/api/admin/settlements", params=query, headers=AUDITOR)
        assert page.status_code == 200, page.text
        items += [statement(client, ledger, s["statement_id"]) for s in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return sorted(items, key=lambda s: (s["trainer_id"], s["currency"], s["period_start"]))


def statement(client: TestClient, ledger: PaymentLedger, statement_id: str) -> dict[str, Any]:
    answer = client.get(
        f"/api/admin/settlements/{statement_id}",
        params={"min_position": head(ledger)},
        headers=AUDITOR,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert_lines_agree(body)
    return body


def assert_lines_agree(s: dict[str, Any]) -> None:
    """A statement's figures are its lines' sums (commission and VAT net of reversals)."""
    sales = [line for line in s["lines"] if line["kind"] == "sale"]
    back = [line for line in s["lines"] if line["kind"] != "sale"]
    assert s["gross_sales"] == sum(line["amount"] for line in sales)
    assert s["refunds"] == sum(line["amount"] for line in back)
    for figure in ("commission", "vat"):
        assert s[figure] == sum(x[figure] for x in sales) - sum(x[figure] for x in back)
    if s["status"] != "open":
        before_tax = s["carried_in"] + s["gross_sales"] - s["refunds"] - s["commission"] - s["vat"]
        assert s["payout_amount"] == max(0, before_tax - s["withholding"])


def close(client: TestClient, period_end: str, headers: dict[str, str] = ADMIN) -> Any:
    return client.post(
        "/api/admin/settlements/close", json={"period_end": period_end}, headers=headers
    )


def pay(client: TestClient, statement_id: str, reference: str) -> Any:
    return client.post(
        f"/api/admin/settlements/{statement_id}/payout",
        json={"reference": reference},
        headers=ADMIN,
    )


def figures(s: dict[str, Any]) -> dict[str, Any]:
    keys = ("gross_sales", "refunds", "commission", "vat", "carried_in", "withholding")
    return {k: s[k] for k in (*keys, "payout_amount", "status")}


def paid(ledger: PaymentLedger, order_id: str, amount: int, at: datetime, **kwargs: Any) -> UUID:
    """A payment completed at `at` through the ledger's commands."""
    trainer_id = kwargs.pop("trainer_id", TRAINER)
    currency, provider = kwargs.pop("currency", "KRW"), kwargs.pop("provider", "toss")
    order = PaymentOrder(
        order_id, f"b-{order_id}", "c-1", "Kim", trainer_id, "2025-11-05", amount, currency,
        provider,
    )  # fmt: skip
    payment_id = ledger.initiate(order).payment_id
    ledger.complete(payment_id, f"pk-{order_id}", "card", at, **kwargs)
    return payment_id


# --- the worked example, closed and paid --------------------------------------------------


def test_the_contracts_worked_example_is_closed_withheld_and_paid(
    client: TestClient, ledger: PaymentLedger
) -> None:
    first = toss_paid(client, "order-1", 100_000)
    toss_paid(client, "order-2", 50_000)
    admin_refund(client, first, 20_000, "refund-1")
    today = datetime.now(SEOUL).date()
    month_end = (today.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)

    [open_] = statements(client, ledger)
    assert (open_["trainer_id"], open_["currency"], open_["status"]) == (TRAINER, "KRW", "open")
    assert (open_["period_start"], open_["period_end"]) == (
        today.replace(day=1).isoformat(),
        month_end.isoformat(),
    )
    assert [(x["kind"], x["amount"], x["commission"], x["vat"]) for x in open_["lines"]] == [
        ("sale", 100_000, 15_000, 1_500),
        ("sale", 50_000, 7_500, 750),
        ("refund", 20_000, 3_000, 300),
    ]
    assert_error(close(client, month_end.isoformat()), 400, "period_not_ended")
    trainer = client.get(f"/api/trainers/{TRAINER}/balance", headers=ADMIN)
    assert trainer.json() == {"KRW": {"unsettled": 108_550, "payable": 0, "paid_out": 0}}

    pin_clock(client, datetime.combine(month_end + timedelta(days=1), datetime.min.time(), SEOUL))
    closed = close(client, month_end.isoformat())
    assert closed.status_code == 200, closed.text
    assert closed.json()["closed"] == [open_["statement_id"]]
    [done] = statements(client, ledger)
    assert figures(done) == {
        "gross_sales": 150_000, "refunds": 20_000, "commission": 19_500, "vat": 1_950,
        "carried_in": 0, "withholding": 3_582, "payout_amount": 104_968, "status": "closed",
    }  # fmt: skip
    assert close(client, month_end.isoformat()).json()["closed"] == []  # nothing new

    sid = done["statement_id"]
    answer = pay(client, sid, "bank-transfer-1")
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["paid_reference"]) == ("paid", "bank-transfer-1")
    topics = event_topics(ledger)
    assert topics.count("Closed") == 1 and topics.count("PaidOut") == 1
    assert pay(client, sid, "bank-transfer-1").status_code == 200  # the same: no new event
    assert_error(pay(client, sid, "bank-transfer-2"), 409)
    assert event_topics(ledger) == topics

    entries = [e for e in journal(client, ledger) if e["statement_id"] == sid]
    assert [(e["kind"], {p["account"]: p["amount"] for p in e["postings"]}) for e in entries] == [
        ("withholding", {PAYABLE: 3_582, WITHHOLDING: -3_582}),
        ("payout", {PAYABLE: 104_968, CASH: -104_968}),
    ]
    accounts = balances(client, ledger)
    assert accounts[PAYABLE] == {"KRW": 0}
    assert (accounts[WITHHOLDING], accounts[CASH]) == ({"KRW": -3_582}, {"KRW": -104_968})
    assert_trial_balance(accounts)
    trainer = client.get(f"/api/trainers/{TRAINER}/balance", headers=ADMIN)
    assert trainer.json() == {"KRW": {"unsettled": 0, "payable": 0, "paid_out": 104_968}}


def test_a_refund_after_payout_is_a_clawback_and_the_negative_carries_forward(
    client: TestClient, ledger: PaymentLedger
) -> None:
    sale = paid(ledger, "nov-1", 100_000, NOV)
    [nov] = close(client, "2025-11-30").json()["closed"]
    assert pay(client, nov, "bank-nov").status_code == 200
    # Refunded on a day of the paid November: a clawback line in the next open statement.
    ledger.refund(sale, "re-1", 100_000, "customer cancelled", NOV + timedelta(days=10))
    paid(ledger, "dec-1", 10_000, NOV + timedelta(days=25))
    [nov_s, dec_s] = statements(client, ledger)
    assert (nov_s["status"], nov_s["payout_amount"], nov_s["withholding"]) == (
        "paid",
        80_744,
        2_756,
    )
    assert [(x["kind"], x["amount"]) for x in nov_s["lines"]] == [("sale", 100_000)]
    assert dec_s["period_start"] == "2025-12-01"
    assert [(x["kind"], x["amount"], x["commission"]) for x in dec_s["lines"]] == [
        ("refund", 100_000, 15_000),
        ("sale", 10_000, 1_500),
    ]

    [dec] = close(client, "2025-12-31").json()["closed"]
    assert dec == dec_s["statement_id"]
    statements_now = statements(client, ledger)
    dec_closed, jan = statements_now[1], statements_now[2]
    # 10,000 - 100,000 - (1,500 - 15,000) - (150 - 1,500) = -75,150: nothing paid, carried.
    assert (dec_closed["payout_amount"], dec_closed["withholding"]) == (0, 0)
    assert (jan["period_start"], jan["status"], jan["carried_in"]) == (
        "2026-01-01",
        "open",
        -75_150,
    )
    assert not [e for e in journal(client, ledger) if e["statement_id"] == dec]  # W = 0
    accounts = balances(client, ledger)
    assert accounts[PAYABLE] == {"KRW": 75_150}  # the trainer owes what was carried
    assert_trial_balance(accounts)
    answer = client.get(f"/api/trainers/{TRAINER}/balance", headers=ADMIN)
    assert answer.json() == {"KRW": {"unsettled": -75_150, "payable": 0, "paid_out": 80_744}}


def test_a_refund_racing_the_close_moves_to_the_next_statement(
    client: TestClient, ledger: PaymentLedger
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    sale = paid(ledger, "nov-1", 100_000, NOV)
    real = services.read_models.statements

    class RefundWhileClosing:
        """The statements view, with a refund landing just after the figures are read."""

        def closable(self, period_end: str) -> tuple[list[dict[str, Any]], int]:
            rows, as_of = real.closable(period_end)
            if rows:
                ledger.refund(sale, "re-race", 40_000, "asked", NOV + timedelta(days=1))
                services.read_models.wait(head(ledger), 5)
            return rows, as_of

        def statement(self, statement_id: str) -> dict[str, Any] | None:
            return real.statement(statement_id)

    desk = StatementDesk(
        services.settlement,
        RefundWhileClosing(),
        lambda position: services.read_models.wait(position, 5),
        services.settings.withholding_bps,
    )
    closing = desk.close(date(2025, 11, 30), date(2025, 12, 1))
    [nov, dec] = statements(client, ledger)
    assert closing.closed == [nov["statement_id"]]
    assert (nov["status"], nov["refunds"], nov["payout_amount"]) == ("closed", 0, 80_744)
    assert [x["kind"] for x in nov["lines"]] == ["sale"]  # the frozen figures' own lines
    assert [(x["kind"], x["amount"]) for x in dec["lines"]] == [("refund", 40_000)]
    assert (dec["period_start"], dec["status"]) == ("2025-12-01", "open")


# --- concurrency, tax types, periods, currencies -------------------------------------------


def test_two_admins_closing_at_once_give_one_closed_event_per_statement(
    settings: Settings,
) -> None:
    app = create_app(settings)
    with uvicorn_serving(app) as base_url:
        ledger = app.state.services.ledger
        for n, trainer in enumerate(("t-1", "t-2", "t-3")):
            paid(ledger, f"o-{n}", 10_000 * (n + 1), NOV, trainer_id=trainer)
        paid(ledger, "o-usd", 1_234, NOV, trainer_id="t-1", currency="USD", provider="stripe")

        def post(_: int) -> httpx.Response:
            return httpx.post(
                f"{base_url}/api/admin/settlements/close",
                json={"period_end": "2025-11-30"},
                headers=ADMIN,
                timeout=30,
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(post, range(8)))
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        closed = [sid for a in answers for sid in a.json()["closed"]]
        assert len(closed) == len(set(closed)) == 4
        assert event_topics(ledger).count("Closed") == 4


def test_a_business_trainer_has_nothing_withheld(client: TestClient, ledger: PaymentLedger) -> None:
    assert set_profile(client, TRAINER, tax_type="business").status_code == 200
    paid(ledger, "nov-1", 100_000, NOV)
    assert close(client, "2025-11-30").status_code == 200
    [s] = statements(client, ledger)
    assert (s["withholding"], s["payout_amount"]) == (0, 83_500)
    assert not [e for e in journal(client, ledger) if e["kind"] == "withholding"]


def test_weekly_periods_run_monday_to_sunday_in_the_business_timezone(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake, settlement_period="weekly")
    with TestClient(create_app(settings)) as client:
        ledger = client.app.state.services.ledger  # type: ignore[attr-defined]
        paid(ledger, "sun", 10_000, datetime(2025, 3, 9, 14, 30, tzinfo=UTC))  # Sun 23:30 KST
        paid(ledger, "mon", 20_000, datetime(2025, 3, 9, 15, 30, tzinfo=UTC))  # Mon 00:30 KST
        found = statements(client, ledger)
        assert [(s["period_start"], s["period_end"], s["gross_sales"]) for s in found] == [
            ("2025-03-03", "2025-03-09", 10_000),
            ("2025-03-10", "2025-03-16", 20_000),
        ]
        assert close(client, "2025-03-09").json()["closed"] == [found[0]["statement_id"]]


def test_each_currency_has_its_own_statement(client: TestClient, ledger: PaymentLedger) -> None:
    paid(ledger, "krw", 10_000, NOV)
    paid(ledger, "usd", 1_234, NOV, currency="USD", provider="stripe")
    found = statements(client, ledger)
    assert [(s["currency"], s["gross_sales"], s["commission"]) for s in found] == [
        ("KRW", 10_000, 1_500),
        ("USD", 1_234, 185),
    ]
    answer = client.get(f"/api/trainers/{TRAINER}/balance", headers=ADMIN)
    assert answer.json() == {
        "KRW": {"unsettled": 8_350, "payable": 0, "paid_out": 0},
        "USD": {"unsettled": 1_030, "payable": 0, "paid_out": 0},
    }


# --- who may read, bad input -------------------------------------------------------------


def test_a_trainer_reads_its_own_statements_and_not_anothers(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    paid(ledger, "nov-1", 100_000, NOV)
    own = {"Authorization": f"Bearer {issue_trainer_token(settings, TRAINER)}"}
    other = {"Authorization": f"Bearer {issue_trainer_token(settings, 'trainer-8')}"}
    mine = client.get(
        f"/api/trainers/{TRAINER}/settlements", params={"min_position": head(ledger)}, headers=own
    )
    assert mine.status_code == 200 and len(mine.json()["items"]) == 1
    for path in ("settlements", "balance"):
        assert_error(client.get(f"/api/trainers/{TRAINER}/{path}", headers=other), 403)
    assert_error(client.get("/api/admin/settlements", headers=own), 403)
    assert_error(close(client, "2025-11-30", own), 403)
    assert_error(close(client, "2025-11-30", AUDITOR), 403)
    nobody = client.get("/api/trainers/nobody/settlements", headers=ADMIN)
    assert nobody.json() == {"items": [], "next_cursor": None}  # unknown: an empty list
    assert client.get("/api/trainers/nobody/balance", headers=ADMIN).json() == {}


def test_bad_input_is_refused_and_appends_nothing(
    client: TestClient, ledger: PaymentLedger
) -> None:
    paid(ledger, "nov-1", 100_000, NOV)
    [open_] = statements(client, ledger)
    before = event_topics(ledger)
    pin_clock(client, datetime(2025, 11, 30, 14, 59, tzinfo=UTC))  # 23:59 on Nov 30 in Seoul
    assert_error(close(client, "2025-11-30"), 400, "period_not_ended")
    assert_error(close(client, "2025-12-31"), 400, "period_not_ended")
    for bad in ("2025-13-01", "20251130", 20251130, "", None, "2025-11-30T00:00:00"):
        assert_error(close(client, bad), 422)  # type: ignore[arg-type]
    assert_error(pay(client, open_["statement_id"], "bank-1"), 409, "invalid_state")
    unknown = "00000000-0000-5000-8000-000000000000"
    assert_error(pay(client, unknown, "bank-1"), 404, "unknown_statement")
    assert_error(client.get(f"/api/admin/settlements/{unknown}", headers=ADMIN), 404)
    assert_error(pay(client, "not-a-uuid", "bank-1"), 422)
    assert_error(pay(client, open_["statement_id"], ""), 422)
    for query in ({"period_start": "2025-02-30"}, {"status": "pending"}, {"limit": 0}):
        assert_error(client.get("/api/admin/settlements", params=query, headers=ADMIN), 422)
    assert event_topics(ledger) == before


# --- rebuild ----------------------------------------------------------------------------------


def test_ledger_rebuild_reproduces_statements_and_the_journal(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake)
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        ledger = services.ledger
        sale = paid(ledger, "nov-1", 99_999, NOV)
        ledger.refund(sale, "re-1", 33_333, "asked", NOV)
        paid(ledger, "nov-2", 1_234, NOV, currency="USD", provider="stripe")
        [krw, _usd] = close(client, "2025-11-30").json()["closed"]
        assert pay(client, krw, "bank-1").status_code == 200
        ledger.refund(sale, "re-2", 66_666, "asked", NOV + timedelta(days=1))  # a clawback
        ledger.fail_refund(sale, "re-2", "bank refused", NOV + timedelta(days=21))
        statements(client, ledger)
        before = services.read_models.statements.dump()
        journal_before = services.read_models.journal.dump()
    assert len(before["statements"]) == 3 and before["statement_lines"]

    result = ledger_cli(database_url, "rebuild", "--projection", "statements")
    assert result.returncode == 0, result.stderr
    result = ledger_cli(database_url, "rebuild", "--projection", "journal")
    assert result.returncode == 0, result.stderr
    read_models = ReadModels(settings)
    try:
        assert read_models.statements.dump() == before
        assert read_models.journal.dump() == journal_before
    finally:
        read_models.close()
