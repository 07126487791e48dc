"""The inbox re-reads a round's Toss payments concurrently, a bounded number at a time, then
applies the deliveries in order with the outcomes reading one after another would give
(api/inbox.py, api/providers/toss_prefetch.py); on SQLite and PostgreSQL.

No test waits on a clock: the fake Toss holds each payment read until the test has seen
the expected number in flight together and lets them go (a generous timeout makes a missed
rendezvous a failure, not a hang).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Services
from api.inbox import InboxProcessor
from api.providers.base import Prefetching
from api.providers.stripe import StripePayments
from api.providers.toss import TossPayments
from tests.api.test_checkout import payment_body, stripe_body
from tests.api.test_webhooks_stripe import WEBHOOK as STRIPE_WEBHOOK
from tests.api.test_webhooks_stripe import session, signed
from tests.api.test_webhooks_toss import post
from tests.conftest import make_settings
from tests.fake_providers import FakeProviders
from tests.live import until

WAIT_SECONDS = 20.0  # `until`'s: a rendezvous the code should reach at once, else a failure


@contextmanager
def idle_app(database_url: str, fake: FakeProviders, concurrency: int) -> Iterator[TestClient]:
    """The service storing deliveries and applying none: the test runs the processor."""
    settings = make_settings(database_url, fake, inbox_fetch_concurrency=concurrency,
                             provider_timeout_seconds=3 * WAIT_SECONDS)  # fmt: skip
    with TestClient(create_app(settings, run_projections=False)) as client:
        yield client


def services_of(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def key(n: int) -> str:
    return f"tpk_p{n}"


def initiate(client: TestClient, fake: FakeProviders, n: int, status: str = "DONE") -> None:
    """Order `order-p{n}`, and its Toss payment `tpk_p{n}` in `status`."""
    body = payment_body(order_id=f"order-p{n}", booking_id=f"b-p{n}")
    assert client.post("/api/payments", json=body).status_code == 201
    fake.toss_payment(key(n), f"order-p{n}", 55000, status=status)


def deliver(client: TestClient, fake: FakeProviders, n: int, transmission: str = "") -> None:
    """A PAYMENT_STATUS_CHANGED of `tpk_p{n}`, stored."""
    answer = post(client, fake.toss_webhook_body(key(n)), transmission or f"tx-p{n}")
    assert answer.json()["outcome"] == "accepted", answer.text


def apply_round(client: TestClient, expected: int) -> list[dict[str, Any]]:
    """One round of the Toss lane, run here; the inbox rows of the deliveries, in order."""
    services = services_of(client)
    processor = InboxProcessor(services.inbox, services.providers, services.ledger)
    assert processor.process_due("toss") == expected
    rows = services.inbox.page("toss", None, 1000, None)
    return sorted(rows, key=lambda row: int(row["seq"]))


def reads(fake: FakeProviders, n: int) -> int:
    return len(fake.calls("GET", f"/v1/payments/{key(n)}"))


def assert_applied_in_order(rows: list[dict[str, Any]]) -> None:
    positions = [row["position"] for row in rows if row["outcome"] == "applied"]
    assert None not in positions and positions == sorted(positions), rows
    assert len(set(positions)) == len(positions), rows


def test_toss_reads_ahead_through_the_optional_provider_hook_and_stripe_does_not() -> None:
    assert issubclass(TossPayments, Prefetching)
    assert not issubclass(StripePayments, Prefetching)  # applied as before, no hook needed


def test_a_rounds_rereads_are_in_flight_together_never_more_than_the_bound(
    database_url: str, fake: FakeProviders
) -> None:
    statuses = ["DONE", "ABORTED", "EXPIRED"]
    with idle_app(database_url, fake, concurrency=4) as client:
        for n in range(10):
            initiate(client, fake, n, statuses[n % 3])
            deliver(client, fake, n)
        # Held until a 5th read comes, which a pool of 4 never sends: the test lets them go.
        fake.toss_hold_reads(together=5, seconds=2 * WAIT_SECONDS)
        with ThreadPoolExecutor(1) as lane:
            done = lane.submit(apply_round, client, 10)
            try:
                until(lambda: fake.toss_read_counts()[1] >= 4, "4 Toss re-reads at once")
                readers = [t for t in threading.enumerate() if t.name.startswith("toss-prefetch")]
                assert len(readers) == 4  # the pool's bound, whatever the server has seen yet
            finally:
                fake.toss_release_reads()
            rows = done.result()
    in_flight, most, held_in_vain = fake.toss_read_counts()
    assert (in_flight, most, held_in_vain) == (0, 4, 0)  # 4 at once, never a 5th
    assert [reads(fake, n) for n in range(10)] == [1] * 10  # read ahead, not again in order
    assert [row["outcome"] for row in rows] == ["applied"] * 10
    reached = {"DONE": "completed", "ABORTED": "failed", "EXPIRED": "cancelled"}
    assert [row["status"] for row in rows] == [reached[statuses[n % 3]] for n in range(10)]
    assert_applied_in_order(rows)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_payment_named_twice_in_a_round_is_read_once_and_its_second_delivery_is_a_duplicate(
    database_url: str, fake: FakeProviders, concurrency: int
) -> None:
    with idle_app(database_url, fake, concurrency) as client:
        initiate(client, fake, 0)
        initiate(client, fake, 1)
        deliver(client, fake, 0, "tx-first")
        deliver(client, fake, 0, "tx-again")  # Toss sent the same change twice
        deliver(client, fake, 1)
        rows = apply_round(client, 3)
    assert [row["outcome"] for row in rows] == ["applied", "duplicate", "applied"]
    assert [row["status"] for row in rows] == ["completed"] * 3
    assert reads(fake, 0) == (1 if concurrency > 1 else 2)  # in order: once per delivery


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (500, "retrying", "provider_unavailable: Toss answered 500"),
        (404, "failed", f"unknown_payment: Toss knows no payment {key(1)}"),
    ],
)
@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_reread_that_fails_ahead_fails_again_in_order_with_the_outcome_of_no_prefetch(
    database_url: str,
    fake: FakeProviders,
    concurrency: int,
    status: int,
    outcome: str,
    reason: str,
) -> None:
    with idle_app(database_url, fake, concurrency) as client:
        for n in range(3):
            initiate(client, fake, n)
            deliver(client, fake, n)
        fake.toss_fail_reads(key(1), status)  # every read of it
        rows = apply_round(client, 3)
    assert [row["outcome"] for row in rows] == ["applied", outcome, "applied"]
    assert rows[1]["reason"] == reason and rows[1]["attempts"] == 1
    assert rows[1]["position"] is None
    # Prefetching, the failed read was not kept: the in-order read asked Toss again.
    assert reads(fake, 1) == (2 if concurrency > 1 else 1)
    assert_applied_in_order(rows)


def test_a_reread_that_failed_ahead_but_answers_in_order_is_applied(
    database_url: str, fake: FakeProviders
) -> None:
    with idle_app(database_url, fake, concurrency=4) as client:
        for n in range(3):
            initiate(client, fake, n)
            deliver(client, fake, n)
        fake.toss_fail_reads(key(1), 503, times=1)  # the read ahead only
        rows = apply_round(client, 3)
    assert [(row["outcome"], row["status"]) for row in rows] == [("applied", "completed")] * 3
    assert [reads(fake, n) for n in range(3)] == [1, 2, 1]


def test_stripe_deliveries_are_applied_while_a_toss_round_waits_for_its_rereads(
    database_url: str, fake: FakeProviders
) -> None:
    with idle_app(database_url, fake, concurrency=4) as client:
        for n in range(2):
            initiate(client, fake, n)
            deliver(client, fake, n)
        fake.toss_hold_reads(together=3, seconds=2 * WAIT_SECONDS)  # a 3rd never comes
        services = services_of(client)
        processor = InboxProcessor(services.inbox, services.providers, services.ledger)
        processor.start()
        try:
            until(lambda: fake.toss_read_counts()[0] == 2, "both Toss re-reads held at once")
            assert client.post("/api/payments", json=stripe_body()).status_code == 201
            payload = fake.stripe_event("checkout.session.completed", session(fake))
            answer = client.post(STRIPE_WEBHOOK, content=payload,
                                              headers=signed(fake, payload))  # fmt: skip
            processor.wake("stripe")
            stripe_row = until(lambda: _applied(services, answer.json()["delivery_id"]),
                               "the Stripe delivery applied")  # fmt: skip
            assert stripe_row["status"] == "completed"
            assert fake.toss_read_counts()[0] == 2  # the Toss round still waits on Toss
            fake.toss_release_reads()
            until(lambda: services.inbox.waiting() == 0, "the Toss round applied")
        finally:
            fake.toss_release_reads()
            processor.stop()
        rows = services.inbox.page("toss", None, 10, None)
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert fake.toss_read_counts()[2] == 0


def _applied(services: Services, delivery_id: str) -> dict[str, Any] | None:
    row = services.inbox.get(delivery_id)
    return row if row is not None and row["outcome"] == "applied" else None
