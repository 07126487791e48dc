"""`ledger serve --workers N`: N processes answer, exactly one of them leads (applies the
webhook inbox, runs the projections and reconciliation)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.api.test_checkout import payment_body
from tests.api.test_inbox import server_env
from tests.api.test_serve import free_port, ledger_command
from tests.api.test_webhooks_stripe import WEBHOOK, signed
from tests.conftest import make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import ADMIN, result
from tests.live import until

PAYMENTS = 12


def test_two_workers_answer_and_one_leader_applies_every_delivery_once(
    settings: Settings, fake: FakeProviders, tmp_path: Path
) -> None:
    if not settings.is_postgres:
        pytest.skip("several workers need PostgreSQL (SQLite: see the next test)")
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*ledger_command(), "serve", "--port", str(port), "--workers", "2"],
            cwd=tmp_path, env=server_env(settings), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: _healthy(base), "two workers answering")
        with httpx.Client(base_url=base, timeout=10) as client:
            for n in range(PAYMENTS):
                order = f"order-w{n}"
                body = payment_body(order_id=order, booking_id=f"b-w{n}", amount=4200,
                                    currency="usd", provider="stripe")  # fmt: skip
                assert client.post("/api/payments", json=body).status_code == 201
                obj = fake.stripe_session(f"cs_w{n}", order, 4200, "usd", payment_intent=f"pi_{n}")
                payload = fake.stripe_event("checkout.session.completed", obj, event_id=f"evt_w{n}")
                answer = client.post(WEBHOOK, content=payload, headers=signed(fake, payload))
                assert answer.json()["outcome"] == "accepted", answer.text

            def all_applied() -> list[dict[str, Any]] | None:
                items: list[dict[str, Any]] = client.get("/api/admin/webhooks",
                                                         headers=ADMIN).json()["items"]  # fmt: skip
                applied = len(items) == PAYMENTS and {i["outcome"] for i in items} == {"applied"}
                return items if applied else None

            items = until(all_applied, "every delivery applied by the leader")
            # Read once the views hold every delivery's events (either worker may answer).
            last = max(int(i["position"]) for i in items)
            stats = client.get("/api/admin/stats", headers=ADMIN, params={"min_position": last})
            assert stats.json()["completed_count"] == PAYMENTS
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    leaders = log.read_text().count("leader: this process runs")
    assert leaders == 1, log.read_text()[-3000:]


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    env = {"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*ledger_command(), "serve", "--workers", "2"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "needs PostgreSQL" in done.stderr


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_delivery_answered_by_a_worker_that_does_not_lead_wakes_the_leader(
    database_url: str, fake: FakeProviders
) -> None:
    """The leader polls only every hour here: what it applies, it was told of (NOTIFY)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("on SQLite one process serves and leads")
    settings = make_settings(database_url, fake, inbox_poll_seconds=3600.0)
    with (
        TestClient(create_app(settings)) as leader,
        TestClient(create_app(settings, run_projections=False)) as worker,
    ):
        body = payment_body(order_id="order-n1", booking_id="b-n1", amount=4200,
                            currency="usd", provider="stripe")  # fmt: skip
        assert worker.post("/api/payments", json=body).status_code == 201
        obj = fake.stripe_session("cs_n1", "order-n1", 4200, "usd", payment_intent="pi_n1")
        payload = fake.stripe_event("checkout.session.completed", obj, event_id="evt_n1")
        answer = worker.post(WEBHOOK, content=payload, headers=signed(fake, payload))
        assert result(leader, answer)["outcome"] == "applied"
