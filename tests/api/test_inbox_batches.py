"""The inbox processor applies many deliveries per transaction (api/inbox.py, ledger/
unit_of_work.py); a batch whose save collides falls back to one delivery at a time, and a
processor killed in the middle of a batch loses nothing and doubles nothing."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Services
from api.inbox import InboxProcessor
from api.providers import stripe
from api.providers.registry import ProviderRegistry
from api.providers.stripe import StripePayments
from api.providers.webhooks import WebhookOutcome
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import stripe_body
from tests.api.test_inbox import server_env, serving
from tests.api.test_serve import ledger_command
from tests.api.test_stripe_truth import fixture_event
from tests.api.test_webhooks_stripe import WEBHOOK, signed
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders
from tests.live import until

COMPLETED = "checkout.session.completed"


def paid(fake: FakeProviders, n: int) -> bytes:
    """Order `order-b{n}` paid in full: its own session, event and payment intent."""
    obj = fake.stripe_session(f"cs_b{n}", f"order-b{n}", 4200, "usd", payment_intent=f"pi_b{n}")
    return fake.stripe_event(COMPLETED, obj, event_id=f"evt_b{n}")


def deliver_orders(post: Any, fake: FakeProviders, count: int) -> list[str]:
    """Initiate `count` orders and deliver each one's completion; the delivery ids."""
    ids = []
    for n in range(count):
        assert (
            post("/api/payments", json={**stripe_body(), "order_id": f"order-b{n}"}).status_code
            == 201
        )
        payload = paid(fake, n)
        answer = post(WEBHOOK, content=payload, headers=signed(fake, payload))
        assert answer.json()["outcome"] == "accepted", answer.text
        ids.append(answer.json()["delivery_id"])
    return ids


def dispute_fields(dispute: dict[str, Any]) -> dict[str, Any]:
    return {k: dispute[k] for k in ("id", "amount", "charge", "payment_intent", "status")}


class CollidingStripe(StripePayments):
    """Applies one delivery twice at once: the batch decides it, then, before the batch
    is saved, another writer (a second ledger, as another process would be) applies it."""

    def __init__(self, base: StripePayments, other: StripePayments, event_id: str) -> None:
        super().__init__(base.ledger, base.client, base.webhook_secret, base.zone)
        self.other, self.event_id, self.collided = other, event_id, False

    def apply_verified(self, body: bytes) -> WebhookOutcome:
        outcome = super().apply_verified(body)
        if self.event_id.encode() in body and not self.collided:  # once: not on the fallback
            self.collided = True
            assert self.other.apply_verified(body).outcome == "applied"
        return outcome


@pytest.fixture
def idle(settings: Settings) -> Iterator[TestClient]:
    """The service without its leader's work: deliveries are stored, not applied."""
    with TestClient(create_app(settings, run_projections=False)) as client:
        yield client


def test_a_batch_with_one_colliding_delivery_applies_the_others_and_marks_it_duplicate(
    idle: TestClient, fake: FakeProviders, settings: Settings
) -> None:
    services: Services = idle.app.state.services  # type: ignore[attr-defined]
    delivery_ids = deliver_orders(idle.post, fake, 5)
    other_ledger = PaymentLedger(env=settings.eventsourcing_env())
    other = stripe.from_settings(other_ledger, settings)
    base = services.providers.get("stripe")
    assert isinstance(base, StripePayments)
    adapters = ProviderRegistry([CollidingStripe(base, other, "evt_b2")])
    try:
        processor = InboxProcessor(services.inbox, adapters, services.ledger)
        assert processor.process_due("stripe") == 5
    finally:
        other.close()
        other_ledger.close()
    rows = [services.inbox.get(d) for d in delivery_ids]
    assert [r["outcome"] if r else None for r in rows] == [
        "applied", "applied", "duplicate", "applied", "applied"
    ]  # fmt: skip
    assert all(r and r["status"] == "completed" for r in rows)
    positions = [r["position"] for r in rows if r and r["outcome"] == "applied"]
    assert None not in positions and len(set(positions)) == 4
    assert event_topics(services.ledger).count("Completed") == 5  # each payment once


def test_deliveries_applied_in_batches_get_their_own_positions(
    idle: TestClient, fake: FakeProviders
) -> None:
    services: Services = idle.app.state.services  # type: ignore[attr-defined]
    delivery_ids = deliver_orders(idle.post, fake, 3)
    processor = InboxProcessor(services.inbox, services.providers, services.ledger)
    assert processor.process_due("stripe") == 3
    rows = [services.inbox.get(d) for d in delivery_ids]
    head = services.ledger.recorder.max_notification_id()
    positions = [r["position"] if r else None for r in rows]
    # In order, each its own, the last the store's head: what read-your-writes waits for.
    assert positions == sorted(positions) and len(set(positions)) == 3  # type: ignore[type-var]
    assert positions[-1] == head
    for row in rows:
        assert row is not None
        payment = services.ledger.get_payment(UUID(row["payment_id"]))
        assert payment.status == "completed"


def test_the_processor_killed_mid_batch_resumes_with_nothing_lost_or_doubled(
    settings: Settings, fake: FakeProviders, tmp_path: Path
) -> None:
    """The leader decides a batch of completions, then a dispute whose charge it must read
    from Stripe; Stripe is slow, and the leader is killed while it waits, before the batch
    is saved. The next leader applies every delivery once."""
    count = 40
    server, base = serving(settings, tmp_path)  # stores deliveries, applies none
    try:
        with httpx.Client(base_url=base) as http:
            delivery_ids = deliver_orders(http.post, fake, count)
            dispute = fixture_event("charge.dispute.created", "evt_b_dispute",
                                    **dispute_fields(fake.stripe_dispute("pi_b0")))  # fmt: skip
            payload = json.dumps(dispute).encode()
            answer = http.post(WEBHOOK, content=payload, headers=signed(fake, payload))
            delivery_ids.append(answer.json()["delivery_id"])
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    fake.stripe_fail_next(status=200, delay=20)  # slow, then answered: the batch waits
    env = {**server_env(settings), "STRIPE_API_KEY": fake.stripe_api_key,
           "LEDGER_PROVIDER_TIMEOUT_SECONDS": "30"}  # fmt: skip
    leader = subprocess.Popen([*ledger_command(), "project"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        until(lambda: fake.calls("GET", "/v1/charges"), "the leader reading the charge")
    finally:
        leader.send_signal(signal.SIGKILL)  # mid-batch: 40 completions decided, none saved
        leader.wait(timeout=10)
    with TestClient(create_app(settings)) as client:  # a new leader takes over
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        assert event_topics(services.ledger).count("Completed") == 0  # the batch was lost...
        until(lambda: services.inbox.waiting() == 0, "the backlog applied")
        rows = [services.inbox.get(d) for d in delivery_ids]  # ... and is applied now, once
        assert [r["outcome"] if r else None for r in rows] == ["applied"] * (count + 1)
        assert event_topics(services.ledger).count("Completed") == count
        payments = [services.ledger.get_payment(UUID(r["payment_id"])) for r in rows if r]
        statuses = [p.status for p in payments]
        assert statuses == ["disputed"] + ["completed"] * (count - 1) + ["disputed"]
