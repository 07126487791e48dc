"""Reconciliation: pending payments re-read from the (fake) providers, on SQLite and
PostgreSQL — by `Reconciler.run`, the `ledger reconcile` command and the leader's loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_trainer_token
from api.reconcile import ReconcileLoop, Reconciler, ReconciliationReport, parse_duration
from ledger.application import PaymentLedger
from ledger.reconciliation import ReconciliationRun
from ledger.settings import Settings
from projections.runtime import ReadModels
from tests.api.test_checkout import assert_error, payment_body, stripe_body
from tests.api.test_webhooks_stripe import deliver
from tests.api.test_webhooks_toss import CONFIRM, KEY, post
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import result
from tests.live import until

URL = "/api/admin/reconciliation"
ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}
ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 20.0


def create(client: TestClient, body: dict[str, Any]) -> UUID:
    created = client.post("/api/payments", json=body)
    assert created.status_code == 201, created.text
    return UUID(created.json()["payment_id"])


def stripe_order(order_id: str) -> dict[str, Any]:
    return payment_body(order_id=order_id, amount=4200, currency="usd", provider="stripe")


def reconcile(
    client: TestClient, older_than: timedelta = timedelta(0), now: datetime | None = None
) -> ReconciliationReport:
    """One run in the app's process, once its payments table lists every payment."""
    services = client.app.state.services  # type: ignore[attr-defined]
    head = services.ledger.recorder.max_notification_id() or 0
    services.read_models.wait(head, WAIT_SECONDS, names=("payments_table",))
    reconciler = Reconciler(services.ledger, services.providers, services.read_models)
    return reconciler.run(older_than, now)


def counts(report: ReconciliationReport) -> tuple[int, int, int]:
    return report.pending_checked, report.resolved, report.still_pending


@pytest.mark.parametrize(
    "lost", [{"status": 500}, {"status": 200, "delay": 1.5}], ids=["toss_5xx", "timed_out"]
)
def test_toss_confirm_whose_answer_was_lost_is_completed_once_by_reconciliation(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, lost: dict[str, Any]
) -> None:
    payment_id = create(client, payment_body())
    fake.toss_lose_next_answer(**lost)  # Toss approves; the answer never reaches the ledger
    assert_error(client.post("/api/payments/toss/confirm", json=CONFIRM), 502)
    assert fake.toss_get(KEY)["status"] == "DONE"
    assert ledger.get_payment(payment_id).status == "pending"

    report = reconcile(client)
    assert counts(report) == (1, 1, 0) and report.mismatches == []
    assert fake.calls("GET", "/v1/payments/orders/order-1001"), "asked by order: no key known"
    assert len(fake.calls("POST", "/v1/payments/confirm")) == 1, "asked, never confirmed again"
    payment = ledger.get_payment(payment_id)
    assert (payment.status, payment.provider_payment_id) == ("completed", KEY)
    topics = ["Initiated", "Claimed", "Completed", "Sent", "Decided", "Applied", "Checked"]
    assert event_topics(ledger) == topics

    late = post(client, fake.toss_webhook_body(KEY))  # the webhook of that same change
    assert result(client, late)["outcome"] in ("duplicate", "unchanged")
    assert event_topics(ledger) == topics
    inbox = client.get(
        "/api/trainers/trainer-9/notifications",
        headers=ADMIN,
        params={"min_position": report.position},
    )
    assert len(inbox.json()["items"]) == 1, "the trainer is told once"


def test_paid_stripe_session_without_webhook_or_confirm_is_completed_by_reconciliation(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    payment_id = create(client, stripe_body())
    fake.stripe_session("cs_other", "order-elsewhere", 100, "usd")  # listed, not ours
    paid = fake.stripe_session("cs_1", "order-s1", 4200, "usd", payment_intent="pi_1")
    fake.stripe_session("cs_newer", "order-elsewhere-2", 100, "usd")

    report = reconcile(client)
    assert counts(report) == (1, 1, 0) and report.mismatches == []
    listed = fake.calls("GET", "/v1/checkout/sessions")
    assert listed and "created[gte]" in listed[0].query
    payment = ledger.get_payment(payment_id)
    assert (payment.status, payment.provider_payment_id) == ("completed", "pi_1")
    topics = ["Initiated", "Claimed", "Completed", "Sent", "Decided", "Checked"]
    assert event_topics(ledger) == topics

    late = deliver(client, fake, "checkout.session.completed", paid, "evt_late")
    assert result(client, late)["outcome"] in ("duplicate", "unchanged")
    assert event_topics(ledger) == topics


def test_unsettled_payments_stay_pending_and_an_expired_session_is_cancelled(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    at_toss = create(client, payment_body())  # Toss: 404 for the order, never confirmed
    still_open = create(client, stripe_order("order-s1"))
    expired = create(client, stripe_order("order-s2"))
    no_session = create(client, stripe_order("order-s3"))
    fake.stripe_session("cs_1", "order-s1", 4200, "usd", payment_status="unpaid", status="open")
    fake.stripe_session("cs_2", "order-s2", 4200, "usd", payment_status="unpaid", status="expired")

    report = reconcile(client)
    assert counts(report) == (4, 1, 3) and report.mismatches == []
    assert fake.calls("GET", "/v1/payments/orders/order-1001")
    statuses = [ledger.get_payment(p).status for p in (at_toss, still_open, expired, no_session)]
    assert statuses == ["pending", "pending", "cancelled", "pending"]
    assert event_topics(ledger).count("Cancelled") == 1


def test_an_answer_the_ledger_refuses_is_a_mismatch_and_the_run_goes_on(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    unreachable = create(client, payment_body(order_id="order-1000"))
    other_amount = create(client, payment_body())
    paid = create(client, payment_body(order_id="order-1002"))
    fake.toss_payment("tpk_other", "order-1001", 50000, status="DONE")  # not the 55000 asked
    fake.toss_payment("tpk_paid", "order-1002", 55000, status="DONE")
    fake.toss_fail_next(503)  # the first payment read: Toss is down

    report = reconcile(client)
    assert counts(report) == (3, 1, 2)
    assert [
        (m["payment_id"], m["order_id"], m["provider"], m["code"]) for m in report.mismatches
    ] == [
        (str(unreachable), "order-1000", "toss", "provider_unavailable"),
        (str(other_amount), "order-1001", "toss", "amount_mismatch"),
    ]
    assert all(m["message"] for m in report.mismatches)
    refused = ledger.get_payment(other_amount)
    assert (refused.status, refused.version, refused.provider_payment_id) == ("pending", 1, None)
    assert ledger.get_payment(paid).status == "completed"
    assert ledger.get_payment(unreachable).status == "pending"


def test_only_payments_pending_longer_than_the_cutoff_are_read_and_the_report_is_served(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, settings: Settings
) -> None:
    assert_error(client.get(URL, headers=ADMIN), 404, "no_reconciliation_yet")
    older = create(client, payment_body())
    newer = create(client, payment_body(order_id="order-1002"))
    fake.toss_payment("tpk_older", "order-1001", 55000, status="DONE")
    fake.toss_payment("tpk_newer", "order-1002", 55000, status="DONE")

    # Ten minutes after the newer one was created: only the older one is older than that.
    ten = timedelta(minutes=10)
    first = reconcile(client, ten, now=ledger.get_payment(newer).created_on + ten)
    assert counts(first) == (1, 1, 0)
    assert [ledger.get_payment(p).status for p in (older, newer)] == ["completed", "pending"]
    assert not fake.calls("GET", "/v1/payments/orders/order-1002")
    shown = client.get(URL, headers=AUDITOR, params={"min_position": first.position})
    assert shown.status_code == 200, shown.text
    assert shown.json() == first.as_dict()
    assert shown.json()["older_than_seconds"] == 600

    latest = reconcile(client)
    assert counts(latest) == (1, 1, 0)
    shown = client.get(URL, headers=ADMIN, params={"min_position": latest.position})
    assert shown.json() == latest.as_dict() and shown.json()["run_id"] != str(first.run_id)

    assert_error(client.get(URL), 401)
    trainer = {"Authorization": f"Bearer {issue_trainer_token(settings, 'trainer-9')}"}
    assert_error(client.get(URL, headers=trainer), 403)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_ledger_reconcile_command_settles_a_database_and_rebuild_keeps_its_report(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake)
    with TestClient(create_app(settings)) as client:
        payment_id = create(client, payment_body())
        reconcile_ready = client.app.state.services  # type: ignore[attr-defined]
        head = reconcile_ready.ledger.recorder.max_notification_id()
        reconcile_ready.read_models.wait(head, WAIT_SECONDS, names=("payments_table",))
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")  # its webhook was lost
    env = {
        "LEDGER_DATABASE_URL": database_url,
        "TOSS_SECRET_KEY": fake.toss_secret_key,
        "TOSS_API_BASE": fake.base_url,
        "STRIPE_API_KEY": fake.stripe_api_key,
        "STRIPE_API_BASE": fake.base_url,
    }

    too_young = run_cli(env, "reconcile", "--older-than", "1h")
    assert too_young.returncode == 0, too_young.stderr
    assert json.loads(too_young.stdout)["pending_checked"] == 0
    assert not fake.provider_calls("toss")

    settled = run_cli(env, "reconcile", "--older-than", "0s")
    assert settled.returncode == 0, settled.stderr
    report = json.loads(settled.stdout)
    assert (report["pending_checked"], report["resolved"], report["still_pending"]) == (1, 1, 0)
    assert report["older_than_seconds"] == 0 and report["mismatches"] == []
    assert "events behind" in settled.stderr  # no projection runs: the operator is told
    assert run_cli(env, "reconcile", "--older-than", "soon").returncode == 2

    rebuilt = run_cli(env, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "reconciliation:" in rebuilt.stderr
    read_models = ReadModels(settings)
    ledger = PaymentLedger(env=settings.eventsourcing_env())
    try:
        assert read_models.reconciliation.latest() == report
        assert ledger.get_payment(payment_id).status == "completed"
        assert event_topics(ledger).count("Checked") == 2
    finally:
        read_models.close()
        ledger.close()


def test_the_leader_loop_settles_a_lost_webhook_by_itself_and_outlives_toss_outages(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(
        database_url, fake, reconcile_seconds=0.2, reconcile_older_than_seconds=0
    )
    fake.toss_fail_next(500)  # the loop's first question to Toss fails
    with TestClient(create_app(settings)) as client:
        ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
        payment_id = create(client, payment_body())
        until(lambda: fake.calls("GET", "/v1/payments/orders/"), "the loop asked Toss")
        fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
        until(lambda: ledger.get_payment(payment_id).status == "completed", "the loop settled it")
        codes = [m["code"] for run in recorded_runs(ledger) for m in run.mismatches]
        assert "provider_unavailable" in codes
        assert event_topics(ledger).count("Completed") == 1
        until(lambda: client.get(URL, headers=ADMIN).status_code == 200, "the report is served")


def recorded_runs(ledger: PaymentLedger) -> list[ReconciliationRun.Checked]:
    notifications = ledger.recorder.select_notifications(start=None, limit=1_000_000)
    events = [ledger.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if isinstance(e, ReconciliationRun.Checked)]


def test_the_loop_outlives_failing_runs_and_zero_disables_it() -> None:
    calls: list[int] = []

    def run() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("the store is down")

    loop = ReconcileLoop(run, interval=0.05, first_retry=0.01)
    loop.start()
    try:
        until(lambda: len(calls) >= 4, "runs go on after failures")
    finally:
        loop.stop()
    disabled = ReconcileLoop(run, interval=0)
    disabled.start()
    disabled.stop()
    assert disabled._thread is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("0s", 0), ("90", 90)]
)
def test_durations_read_as_operators_write_them(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_a_duration_without_a_known_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("10 minutes")
