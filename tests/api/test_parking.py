"""A verified Stripe delivery that beats `POST /api/payments` is parked, and applied by itself
when its order is initiated: over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import payment_body, stripe_body
from tests.api.test_webhooks_stripe import (
    WEBHOOK,
    deliver,
    deliver_raw,
    live_server,
    redelivered,
    refund_event,
    refunds_recorded,
    session,
    signed,
)
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders
from tests.inbox import result

ADMIN = {"Authorization": "Bearer admin-token"}
COMPLETED = "checkout.session.completed"


def initiate(client: TestClient, status: int = 201, **overrides: Any) -> dict[str, Any]:
    answer = client.post("/api/payments", json=stripe_body(**overrides))
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def trainer_inbox(client: TestClient, position: int) -> list[dict[str, Any]]:
    params = {"min_position": position}
    answer = client.get("/api/trainers/trainer-9/notifications", headers=ADMIN, params=params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_a_completion_for_an_unknown_order_is_parked_and_applied_when_the_order_is_initiated(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ledger.webhooks"):
        answer = deliver(client, fake, COMPLETED, session(fake), "evt_early")
        early = result(client, answer)
    assert answer.status_code == 200, answer.text
    assert early["outcome"] == "parked" and early["payment_id"] is None
    assert "order-s1" in early["reason"]
    stored, line = [r for r in caplog.records if r.name == "ledger.webhooks"]
    assert stored.levelno == logging.INFO and "outcome=accepted" in stored.getMessage()
    assert line.levelno == logging.WARNING and "outcome=parked" in line.getMessage()
    assert event_topics(ledger) == ["Opened", "Parked"]  # no payment

    created = initiate(client)
    assert created["status"] == "completed"
    assert ledger.get_payment(UUID(created["payment_id"])).provider_payment_id == "pi_1"
    listed = client.get(
        "/api/admin/payments", headers=ADMIN, params={"min_position": created["position"]}
    ).json()["items"]
    assert [(p["order_id"], p["status"]) for p in listed] == [("order-s1", "completed")]
    assert len(trainer_inbox(client, created["position"])) == 1, "the trainer is told once"

    before = event_topics(ledger)
    assert before.count("Completed") == 1 and before.count("Released") == 1
    again = deliver(client, fake, COMPLETED, session(fake), "evt_early")
    redelivered(client, again, early)
    assert event_topics(ledger) == before
    assert initiate(client, 200)["status"] == "completed"  # the repeat releases nothing again
    assert event_topics(ledger) == before


def test_parked_completion_and_refund_apply_in_the_order_they_arrived(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    obj = session(fake)
    refund = fake.stripe_refund("pi_1", 1200)
    assert result(client, deliver(client, fake, COMPLETED, obj, "evt_c"))["outcome"] == "parked"
    refunded = deliver_raw(client, fake, refund_event("evt_r", 1200))
    assert result(client, refunded)["outcome"] == "parked"

    created = initiate(client)
    assert created["status"] == "partially_refunded"
    assert refunds_recorded(ledger, UUID(created["payment_id"])) == [(refund["id"], 1200)]
    payment_topics = [t for t in event_topics(ledger) if t in ("Completed", "Refunded")]
    assert payment_topics == ["Completed", "Refunded"]  # neither rejected nor reordered
    assert "TransitionRejected" not in event_topics(ledger)
    # Told of the sale and of the refund, once each.
    titles = [n["title"] for n in trainer_inbox(client, created["position"])]
    assert titles == ["Payment partly refunded", "New booking paid"]


def test_the_same_delivery_parked_twice_is_applied_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    payload = fake.stripe_event(COMPLETED, session(fake), "evt_twice")
    answer = client.post(WEBHOOK, content=payload, headers=signed(fake, payload))
    first = result(client, answer)
    assert first["outcome"] == "parked"
    redelivered(client, client.post(WEBHOOK, content=payload, headers=signed(fake, payload)), first)
    # Parked again all the same (an admin's replay of it): still the one parked delivery.
    replayed = client.post(f"/api/admin/webhooks/{first['delivery_id']}/replay", headers=ADMIN)
    assert (replayed.status_code, replayed.json()["outcome"]) == (200, "parked"), replayed.text
    assert event_topics(ledger) == ["Opened", "Parked"]

    assert initiate(client)["status"] == "completed"
    topics = event_topics(ledger)
    assert [topics.count(t) for t in ("Completed", "Sent", "Applied", "Released")] == [1, 1, 1, 1]


def test_the_same_delivery_parked_from_8_threads_at_once_is_parked_and_applied_once(
    settings: Settings, fake: FakeProviders
) -> None:
    with live_server(settings) as (base_url, ledger):
        payload = fake.stripe_event(COMPLETED, session(fake), "evt_many")
        headers = signed(fake, payload)

        def post(_: int) -> httpx.Response:
            return httpx.post(f"{base_url}{WEBHOOK}", content=payload, headers=headers, timeout=30)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(post, range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        with httpx.Client(base_url=base_url) as http:
            parked = result(http, answers[0])  # type: ignore[arg-type]
        parked_topics = event_topics(ledger)
        created = httpx.post(f"{base_url}/api/payments", json=stripe_body(), timeout=30)
        topics = event_topics(ledger)

    outcomes = sorted(a.json()["outcome"] for a in answers)
    assert outcomes == ["accepted"] + ["duplicate"] * 19
    assert {a.json()["delivery_id"] for a in answers} == {parked["delivery_id"]}
    assert parked["outcome"] == "parked"
    assert parked_topics == ["Opened", "Parked"]
    assert (created.status_code, created.json()["status"]) == (201, "completed")
    assert [topics.count(t) for t in ("Completed", "Sent", "Applied", "Released")] == [1, 1, 1, 1]


def test_a_delivery_racing_its_orders_initiate_is_applied_whichever_comes_first(
    settings: Settings, fake: FakeProviders
) -> None:
    """The webhook and the initiate of each order at once: the initiate may look for parked
    deliveries just before the webhook parks; none may be left parked and unapplied."""
    orders = [f"order-race-{i}" for i in range(12)]
    with live_server(settings) as (base_url, ledger):

        def webhook(order_id: str) -> httpx.Response:
            obj = fake.stripe_session(f"cs_{order_id}", order_id, 4200, "usd")
            payload = fake.stripe_event(COMPLETED, obj, f"evt_{order_id}")
            url = f"{base_url}{WEBHOOK}"
            return httpx.post(url, content=payload, headers=signed(fake, payload), timeout=30)

        def start(order_id: str) -> httpx.Response:
            body = payment_body(order_id=order_id, amount=4200, currency="usd", provider="stripe")
            return httpx.post(f"{base_url}/api/payments", json=body, timeout=30)

        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(call, o) for o in orders for call in (webhook, start)]
            answers = [f.result() for f in futures]
        assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
        with httpx.Client(base_url=base_url) as http:
            delivered = [result(http, a) for a in answers[::2]]  # type: ignore[arg-type]
        statuses = [ledger.find_payment("stripe", o).status for o in orders]  # no repeat
        topics = event_topics(ledger)

    # Applied by the processor, or parked and then released by the initiate (or at once).
    assert {d["outcome"] for d in delivered} <= {"applied", "parked"}
    assert statuses == ["completed"] * len(orders)
    assert topics.count("Completed") == topics.count("Sent") == len(orders)


def test_a_parked_refund_stays_parked_while_stripe_is_unreachable_and_a_repeat_releases_it(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    session(fake)
    fake.stripe_refund("pi_1", 4200)
    assert result(client, deliver_raw(client, fake, refund_event("evt_r", 4200)))["outcome"] == (
        "parked"
    )

    fake.stripe_fail_next(500)  # the refunds list that charge.refunded reads
    created = initiate(client)
    assert created["status"] == "pending"
    assert "Released" not in event_topics(ledger)

    repeated = initiate(client, 200)
    assert repeated["status"] == "refunded"
    assert isinstance(repeated["position"], int)
    assert ledger.get_payment(UUID(created["payment_id"])).refunded_amount == 4200
    assert event_topics(ledger).count("Released") == 1


def test_a_completion_naming_no_order_is_still_ignored(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    obj = session(fake)
    obj["metadata"], obj["client_reference_id"] = {}, None
    answer = deliver(client, fake, COMPLETED, obj)
    row = result(client, answer)
    assert (row["outcome"], row["reason"]) == ("ignored", "unknown_order")
    assert event_topics(ledger) == []


def test_initiating_an_order_with_nothing_parked_appends_nothing_more(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger
) -> None:
    # A delivery parked for another order is not this order's.
    other = fake.stripe_session("cs_2", "order-other", 4200, "usd")
    assert result(client, deliver(client, fake, COMPLETED, other))["outcome"] == "parked"
    before = event_topics(ledger)
    created = initiate(client)
    assert created["status"] == "pending"
    assert event_topics(ledger) == [*before, "Initiated", "Claimed"]
