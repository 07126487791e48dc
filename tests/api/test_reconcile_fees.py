"""`ledger reconcile-fees`: the providers' settlement reports imported from the (fake) Toss
and Stripe, each fee posted once against provider:{p}, and the disagreements reported; on
SQLite and PostgreSQL, through the command and the journal over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.fees import FeeReconciler
from api.providers.registry import ProviderRegistry
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import stripe_body
from tests.api.test_journal import admin_refund, balances, journal, toss_paid
from tests.api.test_reconcile import WAIT_SECONDS, run_cli
from tests.api.test_webhooks_stripe import deliver, session
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import result
from tests.providers.localpay import LocalPay

TODAY = datetime.now(UTC).date()
# Wide enough for any business day "now" falls on (the payments' and the reports').
FIRST, LAST = TODAY - timedelta(days=1), TODAY + timedelta(days=1)
WINDOW = ("--from", FIRST.isoformat(), "--to", LAST.isoformat())
TOSS_FEE = 55_000 * 300 // 10_000 * 11 // 10  # the fake's 3 % and the VAT on it: 1,815
GHOST_FEE = 550  # 500 and its VAT
STRIPE_FEE = 4_200 * 290 // 10_000 + 30  # 151 cents


def cli_env(database_url: str, fake: FakeProviders) -> dict[str, str]:
    return {
        "LEDGER_DATABASE_URL": database_url,
        "TOSS_SECRET_KEY": fake.toss_secret_key,
        "TOSS_API_BASE": fake.base_url,
        "STRIPE_API_KEY": fake.stripe_api_key,
        "STRIPE_API_BASE": fake.base_url,
    }


def history(settings: Settings, fake: FakeProviders) -> dict[str, str]:
    """A Toss and a Stripe payment settled (and part of the Stripe one refunded), a Toss
    payment Toss's report leaves off, and a report line for an order the ledger never saw;
    the payments table up to date."""
    with TestClient(create_app(settings)) as client:
        paid = toss_paid(client, "order-f1", 55_000)
        left_off = toss_paid(client, "order-f2", 30_000)
        fake.leave_off_settlements("tpk_order-f2")
        fake.toss_settlement("tpk_ghost", "order-ghost", 20_000, TODAY.isoformat(), fee=500)
        created = client.post("/api/payments", json=stripe_body())
        assert created.status_code == 201, created.text
        answer = deliver(client, fake, "checkout.session.completed", session(fake))
        assert result(client, answer)["status"] == "completed", answer.text
        # Its refund is a line of Stripe's report too (no fee), named through its charge.
        admin_refund(client, created.json()["payment_id"], 1_000, "fees-refund-1")
        services = client.app.state.services  # type: ignore[attr-defined]
        head = services.ledger.recorder.max_notification_id()
        services.read_models.wait(head, WAIT_SECONDS, names=("payments_table",))
    return {"paid": paid, "left_off": left_off, "stripe": created.json()["payment_id"]}


def reconcile_fees(env: dict[str, str]) -> dict[str, Any]:
    done = run_cli(env, "reconcile-fees", *WINDOW)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_fees_of_both_providers_are_posted_once_and_disagreements_reported(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake)
    ids = history(settings, fake)
    env = cli_env(database_url, fake)

    first = reconcile_fees(env)
    toss, stripe = first["providers"]["toss"], first["providers"]["stripe"]
    assert (toss["lines"], toss["fees_posted"], toss["already_posted"]) == (
        2, {"KRW": TOSS_FEE + GHOST_FEE}, 0,
    )  # fmt: skip
    assert [line["order_id"] for line in toss["unknown_to_ledger"]] == ["order-ghost"]
    assert [p["payment_id"] for p in toss["missing_at_provider"]] == [ids["left_off"]]
    assert (stripe["lines"], stripe["fees_posted"], stripe["already_posted"]) == (
        2, {"USD": STRIPE_FEE}, 0,
    )  # fmt: skip
    assert stripe["unknown_to_ledger"] == [] and stripe["missing_at_provider"] == []
    assert fake.calls("GET", "/v1/settlements") and fake.calls("GET", "/v1/balance_transactions")

    again = reconcile_fees(env)
    assert again["providers"]["toss"]["fees_posted"] == {}
    assert again["providers"]["toss"]["already_posted"] == 2
    assert again["providers"]["stripe"]["fees_posted"] == {}

    with TestClient(create_app(settings)) as client:
        ledger = client.app.state.services.ledger  # type: ignore[attr-defined]
        assert event_topics(ledger).count("Recorded") == 4
        fees = [e for e in journal(client, ledger) if e["kind"] == "provider_fee"]
        by_payment = {e["payment_id"]: e["postings"] for e in fees}
        assert by_payment[ids["paid"]] == [
            {"account": "provider_fees", "currency": "KRW", "amount": TOSS_FEE},
            {"account": "provider:toss", "currency": "KRW", "amount": -TOSS_FEE},
        ]
        assert by_payment[None][0] == {
            "account": "provider_fees", "currency": "KRW", "amount": GHOST_FEE,
        }  # fmt: skip
        assert by_payment[ids["stripe"]][1]["account"] == "provider:stripe"
        accounts = balances(client, ledger)
    assert accounts["provider_fees"] == {"KRW": TOSS_FEE + GHOST_FEE, "USD": STRIPE_FEE}
    assert accounts["provider:toss"]["KRW"] == 55_000 + 30_000 - TOSS_FEE - GHOST_FEE
    assert accounts["provider:stripe"]["USD"] == 4_200 - 1_000 - STRIPE_FEE
    for currency in ("KRW", "USD"):
        assert sum(by_currency.get(currency, 0) for by_currency in accounts.values()) == 0


@pytest.mark.parametrize(
    ("provider", "reason"), [("toss", "Toss answered 503"), ("stripe", "Stripe did not answer")]
)
def test_an_unreachable_provider_fails_the_command_and_posts_nothing(
    database_url: str, fake: FakeProviders, provider: str, reason: str
) -> None:
    settings = make_settings(database_url, fake)
    history(settings, fake)
    # Stripe is asked after Toss: its failure must not leave Toss's fees posted.
    (fake.toss_fail_next if provider == "toss" else fake.stripe_fail_next)(503)
    failed = run_cli(cli_env(database_url, fake), "reconcile-fees", *WINDOW)
    assert failed.returncode == 1, failed.stdout
    assert "provider_unavailable" in failed.stderr and reason in failed.stderr
    assert failed.stdout == ""
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    try:
        assert "Recorded" not in event_topics(ledger)
    finally:
        ledger.close()


def test_a_provider_without_settlement_reports_is_not_supported(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake)
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        registry = ProviderRegistry([LocalPay(services.ledger)])
        table = services.read_models.payments_table
        fees = FeeReconciler(services.ledger, registry, table, settings.zone)
        report = fees.run(TODAY, TODAY)
    assert report["providers"] == {"localpay": "not_supported"}
