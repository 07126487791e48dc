"""The webhook inbox (CONTRACT.md, "Provider truth"): a delivery is acknowledged once it is
stored, applied after by the leader, and nothing acknowledged is lost or applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import payment_body, stripe_body
from tests.api.test_serve import free_port, ledger_command
from tests.api.test_webhooks_stripe import WEBHOOK, session, signed
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import ADMIN, result
from tests.live import until

COMPLETED = "checkout.session.completed"


def inbox(client: TestClient, **filters: Any) -> list[dict[str, Any]]:
    page = client.get("/api/admin/webhooks", params=filters, headers=ADMIN)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def paid_event(fake: FakeProviders, event_id: str = "evt_paid") -> bytes:
    return fake.stripe_event(COMPLETED, session(fake), event_id=event_id)


def server_env(settings: Settings) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGER_", "STRIPE_"))}
    secret = settings.stripe_webhook_secret
    assert secret is not None
    return {
        **kept,
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_ADMIN_TOKEN": "admin-token",
        "STRIPE_WEBHOOK_SECRET": secret.get_secret_value(),
        "STRIPE_API_BASE": settings.stripe_api_base,
    }


def serving(settings: Settings, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`ledger serve --no-projections`: answers webhooks, applies none (no processor)."""
    port = free_port()
    process = subprocess.Popen(
        [*ledger_command(), "serve", "--port", str(port), "--no-projections"],
        cwd=workdir, env=server_env(settings),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    until(healthy, "ledger serve answering")
    return process, base


def test_an_acknowledged_delivery_survives_kill_9_and_is_applied_after_restart(
    settings: Settings, fake: FakeProviders, tmp_path: Path
) -> None:
    process, base = serving(settings, tmp_path)
    try:
        assert httpx.post(f"{base}/api/payments", json=stripe_body()).status_code == 201
        payload = paid_event(fake)
        answer = httpx.post(f"{base}{WEBHOOK}", content=payload, headers=signed(fake, payload))
        assert answer.json()["outcome"] == "accepted", answer.text
        stored = httpx.get(f"{base}/api/admin/webhooks/{answer.json()['delivery_id']}",
                           headers=ADMIN).json()  # fmt: skip
        assert stored["outcome"] == "accepted"  # stored, not applied: no processor there
        assert "ledger_webhook_inbox_waiting 1.0" in httpx.get(f"{base}/metrics").text
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    with TestClient(create_app(settings)) as client:  # the leader comes back
        applied = result(client, answer)
        assert (applied["outcome"], applied["status"]) == ("applied", "completed")
        ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
        assert event_topics(ledger).count("Completed") == 1


def test_20_concurrent_copies_give_one_accepted_and_one_effect(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    assert client.post("/api/payments", json=stripe_body()).status_code == 201
    payload = paid_event(fake, "evt_copies")

    def send(_: int) -> httpx.Response:
        return client.post(WEBHOOK, content=payload, headers=signed(fake, payload))

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(20)))
    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["accepted"] + ["duplicate"] * 19
    assert len({a.json()["delivery_id"] for a in answers}) == 1
    assert result(client, answers[0])["outcome"] == "applied"
    assert event_topics(ledger).count("Completed") == 1
    assert len(inbox(client)) == 1


def test_deliveries_with_bad_signatures_store_nothing(
    client: TestClient, fake: FakeProviders
) -> None:
    payload = paid_event(fake, "evt_forged")
    forged = {**signed(fake, payload), "Stripe-Signature": fake.stripe_signature(
        payload, secret="whsec_not_ours")}  # fmt: skip
    for _ in range(30):
        assert client.post(WEBHOOK, content=payload, headers=forged).status_code == 400
    assert (
        client.post(WEBHOOK, content=b"not json", headers=signed(fake, b"not json")).status_code
        == 400
    )
    assert inbox(client) == []


def test_the_inbox_lists_newest_first_filters_and_pages(
    client: TestClient, fake: FakeProviders
) -> None:
    assert client.post("/api/payments", json=stripe_body()).status_code == 201
    assert client.post("/api/payments", json=payment_body()).status_code == 201
    paid = paid_event(fake, "evt_1")
    first = client.post(WEBHOOK, content=paid, headers=signed(fake, paid))
    ignored = fake.stripe_event("customer.created", {"id": "cus_1", "object": "customer"},
                                event_id="evt_2")  # fmt: skip
    second = client.post(WEBHOOK, content=ignored, headers=signed(fake, ignored))
    assert result(client, first)["outcome"] == "applied"
    assert result(client, second)["outcome"] == "ignored"
    assert [i["event_id"] for i in inbox(client)] == ["evt_2", "evt_1"]
    assert [i["event_id"] for i in inbox(client, outcome="ignored")] == ["evt_2"]
    assert inbox(client, provider="toss") == []
    page = client.get("/api/admin/webhooks", params={"limit": 1}, headers=ADMIN).json()
    rest = client.get("/api/admin/webhooks", params={"cursor": page["next_cursor"]},
                      headers=ADMIN).json()  # fmt: skip
    assert [i["event_id"] for i in page["items"] + rest["items"]] == ["evt_2", "evt_1"]
    detail = client.get(f"/api/admin/webhooks/{first.json()['delivery_id']}", headers=ADMIN)
    assert detail.json()["body"].encode() == paid  # the raw body, as received


def test_replaying_an_applied_delivery_is_a_duplicate_and_changes_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    assert client.post("/api/payments", json=stripe_body()).status_code == 201
    answer = client.post(WEBHOOK, content=(p := paid_event(fake)), headers=signed(fake, p))
    first = result(client, answer)
    assert first["outcome"] == "applied"
    before = event_topics(ledger)
    delivery = answer.json()["delivery_id"]
    replayed = client.post(f"/api/admin/webhooks/{delivery}/replay", headers=ADMIN)
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["outcome"], replayed.json()["attempts"]) == ("duplicate", 2)
    assert replayed.json()["position"] == first["position"] is not None  # what it appended
    assert event_topics(ledger) == before
    unknown = client.post(
        "/api/admin/webhooks/00000000-0000-0000-0000-000000000000/replay", headers=ADMIN
    )
    assert unknown.status_code == 404
    auditor = {"Authorization": "Bearer auditor-token"}
    assert client.post(f"/api/admin/webhooks/{delivery}/replay", headers=auditor).status_code == 403


@pytest.fixture
def impatient(database_url: str, fake: FakeProviders) -> Settings:
    return make_settings(
        database_url, fake, inbox_retry_seconds=0.05, inbox_retry_max_seconds=0.1,
        inbox_max_attempts=3, provider_timeout_seconds=5.0,  # a loaded machine is no outage
    )  # fmt: skip


def test_a_provider_down_for_good_leaves_the_delivery_failed_after_the_last_attempt(
    impatient: Settings, fake: FakeProviders
) -> None:
    with TestClient(create_app(impatient)) as client:
        assert client.post("/api/payments", json=payment_body()).status_code == 201
        fake.toss_payment("tpk_1", "order-1001", 55000, status="DONE")
        for _ in range(3):
            fake.toss_fail_next(status=503)
        answer = client.post(
            "/api/webhooks/toss", content=fake.toss_webhook_body("tpk_1"),
            headers={"content-type": "application/json"},
        )  # fmt: skip
        failed = result(client, answer)
        assert (failed["outcome"], failed["attempts"]) == ("failed", 3)
        assert failed["reason"].startswith("provider_unavailable")
        ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
        assert "Completed" not in event_topics(ledger)
        # Toss is back: an admin replays it, and it applies.
        replayed = client.post(f"/api/admin/webhooks/{answer.json()['delivery_id']}/replay",
                               headers=ADMIN)  # fmt: skip
        assert (replayed.json()["outcome"], replayed.json()["status"]) == ("applied", "completed")
