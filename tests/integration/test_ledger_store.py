"""PaymentLedger against real stores: the same cases on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.application import Delivery, PaymentLedger, PaymentOrder
from ledger.errors import ConflictError, NotFoundError
from ledger.payment import Payment
from ledger.settings import Settings
from tests.conftest import event_topics

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def order(order_id: str = "order-1", provider: str = "stripe", amount: int = 4200) -> PaymentOrder:
    return PaymentOrder(
        order_id=order_id,
        booking_id="booking-1",
        customer_id="cust-1",
        customer_name="Lee",
        trainer_id="trainer-1",
        booking_date="2026-12-01",
        amount=amount,
        currency="USD",
        provider=provider,
    )


def open_ledger(database_url: str) -> PaymentLedger:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    return PaymentLedger(env=settings.eventsourcing_env())


@pytest.fixture
def ledger(database_url: str) -> Iterator[PaymentLedger]:
    app = open_ledger(database_url)
    yield app
    app.close()


def test_restarted_application_reloads_payment_state_from_events(database_url: str) -> None:
    first = open_ledger(database_url)
    created = first.initiate(order())
    first.complete(created.payment_id, "pi_1", "card", NOW)
    first.refund(created.payment_id, "re_1", 200, "goodwill", NOW)
    first.close()

    second = open_ledger(database_url)
    state = second.get_payment(created.payment_id).state()
    second.close()
    assert state["status"] == "partially_refunded"
    assert state["refunded_amount"] == 200
    assert state["provider_payment_id"] == "pi_1"


def test_positions_increase_with_each_write(ledger: PaymentLedger) -> None:
    first = ledger.initiate(order("a"))
    second = ledger.initiate(order("b"))
    assert first.position is not None and second.position is not None
    assert second.position > first.position


def test_same_order_with_other_details_is_a_conflict(ledger: PaymentLedger) -> None:
    ledger.initiate(order())
    with pytest.raises(ConflictError):
        ledger.initiate(order(amount=9999))
    with pytest.raises(ConflictError):
        ledger.initiate(order(provider="toss"))
    assert event_topics(ledger) == ["Initiated", "Claimed"]  # the payment, its order's claim


class _MeetAfterProviderCheck(PaymentLedger):
    """Holds each initiate after its cross-provider read until the other has read too:
    both find no payment through the other provider, then both save."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.met = threading.Event()
        self.meeting = threading.Barrier(2, action=self.met.set)

    def _refuse_other_provider(self, order: PaymentOrder) -> None:
        super()._refuse_other_provider(order)
        if not self.met.is_set():
            self.meeting.wait(timeout=10)


def test_one_order_started_through_both_providers_at_once_gets_one_payment(
    database_url: str,
) -> None:
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    ledger = _MeetAfterProviderCheck(env=settings.eventsourcing_env())

    def start(provider: str) -> str:
        try:
            return ledger.initiate(order(provider=provider)).outcome
        except ConflictError as error:
            return str(error)

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = sorted(pool.map(start, ["toss", "stripe"]))
        assert ledger.met.is_set()  # both had passed the read before either saved
        assert outcomes[0] == "created"
        assert outcomes[1].startswith("order order-1 is already paid through")
        assert event_topics(ledger).count("Initiated") == 1
    finally:
        ledger.close()


def test_unknown_payment_is_not_found(ledger: PaymentLedger) -> None:
    with pytest.raises(NotFoundError):
        ledger.find_payment("toss", "nope")


def test_concurrent_copies_of_one_delivery_apply_once(ledger: PaymentLedger) -> None:
    payment_id = ledger.initiate(order()).payment_id
    delivery = Delivery("stripe", "evt_1", "checkout.session.completed")

    def deliver(_: int) -> str:
        return ledger.complete(payment_id, "pi_1", "card", NOW, delivery).outcome

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, range(20)))
    assert outcomes.count("applied") == 1
    assert set(outcomes) <= {"applied", "duplicate", "unchanged"}
    topics = event_topics(ledger)
    assert topics.count("Completed") == 1
    assert topics.count("Sent") == 1  # one notification to the trainer
    assert topics.count("Applied") == 1  # one delivery receipt


def test_concurrent_different_deliveries_all_take_effect(ledger: PaymentLedger) -> None:
    payment_id = ledger.initiate(order(amount=1000)).payment_id
    ledger.complete(payment_id, "pi_1", "card", NOW)

    def refund(i: int) -> str:
        return ledger.refund(
            payment_id, f"re_{i}", 100, "", NOW, Delivery("stripe", f"evt_{i}", "x")
        ).outcome

    with ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = list(pool.map(refund, range(10)))
    assert outcomes == ["applied"] * 10
    payment = ledger.get_payment(payment_id)
    assert payment.refunded_amount == 1000 and payment.status == "refunded"


def test_historical_version_of_a_payment_can_be_loaded(ledger: PaymentLedger) -> None:
    payment_id = ledger.initiate(order()).payment_id
    ledger.complete(payment_id, "pi_1", "card", NOW)
    assert ledger.get_payment(payment_id, version=1).status == "pending"
    assert ledger.get_payment(payment_id).status == "completed"
    assert isinstance(ledger.get_payment(payment_id), Payment)


def test_a_subscription_hands_over_every_event_already_stored_in_batches(
    ledger: PaymentLedger,
) -> None:
    """What the projection runners read: everything stored, in order, none twice, at
    most `limit` at a time, and more than one at a time when more are waiting."""
    for n in range(12):
        ledger.initiate(order(f"order-{n}"))
    stored = [n.id for n in ledger.recorder.select_notifications(start=None, limit=100)]
    subscription = ledger.recorder.subscribe(gt=0)
    with subscription:
        batches = [[n.id for n in subscription.next_batch(5)] for _ in range(2)]  # type: ignore[attr-defined]
        rest: list[int] = []
        while len(rest) < len(stored) - 10:
            rest += [n.id for n in subscription.next_batch(100)]  # type: ignore[attr-defined]
    assert [len(batch) for batch in batches] == [5, 5]
    assert batches[0] + batches[1] + rest == stored
