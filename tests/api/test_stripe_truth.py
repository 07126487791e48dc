"""What Stripe really did with the money, over HTTP on SQLite and PostgreSQL: discounted and
currency-converted sessions, refunds that fail or succeed later, and disputes. Payloads are
Stripe's published fixtures (tests/fixtures) with our order's ids and amounts."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.api.test_checkout import assert_error, stripe_body
from tests.api.test_webhooks_stripe import (
    deliver,
    deliver_raw,
    redelivered,
    refund_event,
    session,
)
from tests.conftest import event_topics
from tests.fake_providers import FakeProviders
from tests.fixtures import load
from tests.inbox import result

ADMIN = {"Authorization": "Bearer admin-token"}
PI, CHARGE = "pi_1", "ch_1"  # the fake names a PaymentIntent's charge ch_ + its suffix


@pytest.fixture
def payment_id(client: TestClient) -> UUID:
    created = client.post("/api/payments", json=stripe_body())  # order-s1, 4200 USD
    assert created.status_code == 201, created.text
    return UUID(created.json()["payment_id"])


@pytest.fixture
def paid(client: TestClient, fake: FakeProviders, payment_id: UUID) -> UUID:
    answer = deliver(client, fake, "checkout.session.completed", session(fake), "evt_paid")
    assert result(client, answer)["status"] == "completed", answer.text
    return payment_id


def fixture_event(name: str, event_id: str, **obj: Any) -> dict[str, Any]:
    event = load(name)
    event["id"] = event_id
    event["data"]["object"].update(obj)
    return event


def outcome(client: TestClient, answer: Any) -> tuple[str, str | None]:
    """(outcome, status) of the delivery once the inbox has applied it."""
    row = result(client, answer)
    return row["outcome"], row["status"]


def again(client: TestClient, ledger: PaymentLedger, first: Any, copy: Any) -> str:
    """`copy` redelivers `first`: answered duplicate, nothing appended; the payment's status."""
    before = event_topics(ledger)
    redelivered(client, copy, result(client, first))
    assert event_topics(ledger) == before
    return str(result(client, copy)["status"])


# --- amounts that differ from the order --------------------------------------------


def test_a_discounted_session_completes_with_the_captured_amount_and_records_why(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    event = load("checkout.session.completed.discount")  # 4200 - 700 = 3500 USD
    first = deliver_raw(client, fake, event)
    assert outcome(client, first) == ("applied", "completed")
    payment = ledger.get_payment(payment_id)
    assert (payment.amount, payment.ordered_amount) == (3500, 4200)
    assert payment.discrepancy == {
        "expected_amount": 4200,
        "captured_amount": 3500,
        "reason": "discount",
    }
    assert again(client, ledger, first, deliver_raw(client, fake, event)) == "completed"
    topics = event_topics(ledger)
    assert topics.count("AmountDiscrepancyRecorded") == 1
    assert topics.count("Completed") == 1 and topics.count("Sent") == 1  # the trainer, once

    head = ledger.recorder.max_notification_id()
    rows = client.get(
        f"/api/admin/payments?discrepancy=true&min_position={head}", headers=ADMIN
    ).json()["items"]
    assert [(r["order_id"], r["amount"]) for r in rows] == [("order-s1", 3500)]


def test_an_unexplained_amount_is_completed_as_captured_and_recorded_as_differing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    obj = fake.stripe_session("cs_2", "order-s1", 4000, "usd", payment_intent=PI)
    answer = deliver(client, fake, "checkout.session.completed", obj)
    assert outcome(client, answer) == ("applied", "completed")
    discrepancy = ledger.get_payment(payment_id).discrepancy
    assert discrepancy is not None and discrepancy["reason"] == "amount differs"


def test_a_converted_session_whose_source_amount_matches_completes_without_discrepancy(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    event = load("checkout.session.completed.currency_conversion")  # 3900 EUR from 4200 USD
    assert outcome(client, deliver_raw(client, fake, event)) == ("applied", "completed")
    payment = ledger.get_payment(payment_id)
    assert (payment.amount, payment.currency, payment.discrepancy) == (4200, "USD", None)


def test_a_converted_session_whose_source_amount_differs_records_the_conversion(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    event = load("checkout.session.completed.currency_conversion")
    event["data"]["object"]["currency_conversion"]["amount_total"] = 4150
    assert outcome(client, deliver_raw(client, fake, event)) == ("applied", "completed")
    payment = ledger.get_payment(payment_id)
    assert payment.amount == 4150
    assert payment.discrepancy is not None
    assert payment.discrepancy["reason"] == "currency_conversion"


def test_a_currency_that_cannot_be_represented_is_acknowledged_as_rejected_and_recorded(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    euros = fake.stripe_session("cs_3", "order-s1", 4200, "eur", payment_intent=PI)
    answer = deliver(client, fake, "checkout.session.completed", euros, "evt_eur")
    assert outcome(client, answer) == ("rejected", "pending")  # 200: Stripe must not retry for days
    assert "EUR" in result(client, answer)["reason"]
    assert event_topics(ledger).count("TransitionRejected") == 1
    copy = deliver(client, fake, "checkout.session.completed", euros, "evt_eur")
    assert again(client, ledger, answer, copy) == "pending"
    assert event_topics(ledger).count("TransitionRejected") == 1
    payment = ledger.get_payment(payment_id)
    assert (payment.status, payment.amount, payment.discrepancy) == ("pending", 4200, None)


def test_the_confirm_route_completes_a_differing_amount_as_captured(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.stripe_session("cs_d", "order-s1", 3500, "usd", payment_intent=PI)
    answer = client.post("/api/payments/stripe/confirm", json={"session_id": "cs_d"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "completed"
    assert ledger.get_payment(payment_id).amount == 3500


def test_the_confirm_route_records_a_currency_it_cannot_represent_and_stays_pending(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.stripe_session("cs_e", "order-s1", 4200, "eur", payment_intent=PI)
    answer = client.post("/api/payments/stripe/confirm", json={"session_id": "cs_e"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "pending"
    assert event_topics(ledger)[-1] == "TransitionRejected"


@pytest.mark.parametrize(
    ("event_type", "overrides"),
    [
        ("checkout.session.expired", {"payment_status": "unpaid", "status": "expired"}),
        ("checkout.session.async_payment_failed", {"payment_status": "unpaid"}),
        ("checkout.session.completed", {"payment_status": "unpaid"}),
    ],
)
def test_sessions_that_carry_no_money_are_not_refused_for_their_amount(
    client: TestClient,
    fake: FakeProviders,
    payment_id: UUID,
    event_type: str,
    overrides: dict[str, Any],
) -> None:
    obj = fake.stripe_session("cs_4", "order-s1", 3500, "usd", payment_intent=PI, **overrides)
    answer = deliver(client, fake, event_type, obj)
    assert answer.status_code == 200, answer.text
    row = result(client, answer)
    assert row["outcome"] in ("applied", "unchanged"), row
    assert "amount" not in (row["reason"] or "")


# --- refunds that fail or succeed later --------------------------------------------


def refund_updated(event_id: str, refund: dict[str, Any], status: str) -> dict[str, Any]:
    return fixture_event(
        "charge.refund.updated",
        event_id,
        id=refund["id"],
        amount=refund["amount"],
        charge=refund["charge"],
        payment_intent=refund["payment_intent"],
        metadata=refund["metadata"],
        status=status,
    )


def test_a_refund_that_fails_later_is_undone(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    refund = fake.stripe_refund(PI, 1200)
    refund["metadata"] = {"order_id": "order-s1"}  # as our refund requests name it
    assert outcome(client, deliver_raw(client, fake, refund_event("evt_r1", 1200)))[1] == (
        "partially_refunded"
    )
    fake.stripe_set_refund_status(refund["id"], "failed")
    failed = refund_updated("evt_f1", refund, "failed")
    first = deliver_raw(client, fake, failed)
    assert outcome(client, first) == ("applied", "completed")
    payment = ledger.get_payment(paid)
    assert (payment.status, payment.refunded_amount) == ("completed", 0)
    assert again(client, ledger, first, deliver_raw(client, fake, failed)) == "completed"
    # The charge.refunded redelivered under a new id does not count the failed refund again.
    assert (
        outcome(client, deliver_raw(client, fake, refund_event("evt_r2", 1200)))[0] == "unchanged"
    )
    assert ledger.get_payment(paid).refunded_amount == 0


def test_a_dashboard_refund_failing_is_found_through_its_charge(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    refund = fake.stripe_refund(PI, 4200)  # made in the Dashboard: no metadata
    assert outcome(client, deliver_raw(client, fake, refund_event("evt_r1", 4200)))[0] == "applied"
    assert ledger.get_payment(paid).status == "refunded"
    fake.stripe_set_refund_status(refund["id"], "canceled")
    answer = deliver_raw(client, fake, refund_updated("evt_f1", refund, "canceled"))
    assert outcome(client, answer) == ("applied", "completed")
    assert fake.calls("GET", f"/v1/charges/{CHARGE}")


def test_a_refund_failed_before_it_was_recorded_is_unchanged_and_never_counted(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    refund = fake.stripe_refund(PI, 1200, status="failed")
    assert outcome(
        client, deliver_raw(client, fake, refund_updated("evt_f1", refund, "failed"))
    ) == (
        "unchanged",
        "completed",
    )
    late = deliver_raw(client, fake, refund_event("evt_r1", 1200))
    assert outcome(client, late) == ("unchanged", "completed")
    assert ledger.get_payment(paid).refunded_amount == 0


def test_a_pending_refund_is_counted_when_its_update_says_it_succeeded(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    refund = fake.stripe_refund(PI, 1200, status="pending")
    pending = deliver_raw(client, fake, refund_updated("evt_p", refund, "pending"))
    assert outcome(client, pending) == ("unchanged", "completed")
    fake.stripe_set_refund_status(refund["id"], "succeeded")
    succeeded = deliver_raw(client, fake, refund_updated("evt_s", refund, "succeeded"))
    assert outcome(client, succeeded) == ("applied", "partially_refunded")
    assert ledger.get_payment(paid).refunded_amount == 1200


# --- disputes ------------------------------------------------------------------------


def dispute_event(kind: str, event_id: str, dispute: dict[str, Any]) -> dict[str, Any]:
    fields = {k: dispute[k] for k in ("id", "amount", "charge", "payment_intent", "status")}
    return fixture_event(f"charge.dispute.{kind}", event_id, **fields)


def test_a_dispute_holds_the_payment_and_a_lost_one_is_a_chargeback(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    dispute = fake.stripe_dispute(PI)
    created = dispute_event("created", "evt_d1", dispute)
    first = deliver_raw(client, fake, created)
    assert outcome(client, first) == ("applied", "disputed")
    assert again(client, ledger, first, deliver_raw(client, fake, created)) == "disputed"
    refused = client.post(
        f"/api/admin/payments/{paid}/refunds",
        json={"reason": "customer asked"},
        headers={**ADMIN, "Idempotency-Key": "k1"},
    )
    assert_error(refused, 409, "disputed")
    assert fake.calls("POST", "/v1/refunds") == []
    head = ledger.recorder.max_notification_id()
    before = client.get(f"/api/admin/stats?min_position={head}", headers=ADMIN).json()

    lost = dispute_event("closed", "evt_d2", fake.stripe_close_dispute(dispute["id"], "lost"))
    answer = deliver_raw(client, fake, lost)
    assert result(client, answer)["outcome"] == "applied"
    payment = ledger.get_payment(paid)
    assert (payment.chargeback_amount, payment.refundable_amount) == (4200, 0)
    assert payment.dispute is None
    again(client, ledger, answer, deliver_raw(client, fake, lost))
    assert ledger.get_payment(paid).chargeback_amount == 4200
    head = ledger.recorder.max_notification_id()
    after = client.get(f"/api/admin/stats?min_position={head}", headers=ADMIN).json()
    assert before["disputed_count"] == 1 and after["disputed_count"] == 0
    assert before["total_revenue"].get("USD") == 4200
    assert after["total_revenue"].get("USD", 0) == 0


def test_a_dispute_won_puts_the_payment_back(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    dispute = fake.stripe_dispute(PI)
    created = deliver_raw(client, fake, dispute_event("created", "evt_d1", dispute))
    assert outcome(client, created) == ("applied", "disputed")
    won = dispute_event("closed", "evt_d2", fake.stripe_close_dispute(dispute["id"], "won"))
    assert outcome(client, deliver_raw(client, fake, won)) == ("applied", "completed")
    payment = ledger.get_payment(paid)
    assert (payment.chargeback_amount, payment.refunded_amount) == (0, 0)


def test_a_dispute_closed_before_its_creation_arrives_ends_closed(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    dispute = fake.stripe_dispute(PI, amount=1500)
    created = dispute_event("created", "evt_d1", dispute)
    lost = dispute_event("closed", "evt_d2", fake.stripe_close_dispute(dispute["id"], "lost"))
    assert outcome(client, deliver_raw(client, fake, lost)) == ("applied", "partially_refunded")
    assert outcome(client, deliver_raw(client, fake, created)) == (
        "unchanged",
        "partially_refunded",
    )
    payment = ledger.get_payment(paid)
    assert (payment.chargeback_amount, payment.dispute) == (1500, None)


def test_a_dispute_is_not_ignored_when_stripe_cannot_say_whose_charge_it_is(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    created = dispute_event("created", "evt_d1", fake.stripe_dispute(PI))
    fake.stripe_fail_next(500)
    answer = deliver_raw(client, fake, created)  # stored: Stripe is asked after the answer
    retrying = result(client, answer, waiting=("accepted",))
    assert (retrying["outcome"], retrying["attempts"]) == ("retrying", 1), retrying
    assert retrying["reason"] and retrying["next_attempt_at"]
    assert ledger.get_payment(paid).status == "completed"
    applied = result(client, answer)  # tried again once its delay has passed
    assert (applied["outcome"], applied["status"], applied["attempts"]) == (
        "applied",
        "disputed",
        2,
    )


def test_a_dispute_delivered_before_the_completion_counts_the_payment_paid(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    obj = session(fake)  # registered at the fake, its completion not delivered yet
    dispute = fake.stripe_dispute(PI)
    lost = dispute_event("closed", "evt_d2", fake.stripe_close_dispute(dispute["id"], "lost"))
    assert outcome(client, deliver_raw(client, fake, lost))[0] == "applied"
    late = deliver(client, fake, "checkout.session.completed", obj)
    assert outcome(client, late)[0] in ("unchanged", "rejected")
    payment = ledger.get_payment(payment_id)
    assert (payment.chargeback_amount, payment.provider_payment_id) == (4200, PI)
    topics = event_topics(ledger)
    assert topics.count("Completed") == 1 and topics.count("Sent") == 1


def test_a_refund_delivered_while_its_dispute_was_open_is_counted_when_it_closes(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    fake.stripe_refund(PI, 1200)  # made before the dispute, delivered during it
    dispute = fake.stripe_dispute(PI, amount=3000)
    created = deliver_raw(client, fake, dispute_event("created", "evt_d1", dispute))
    assert outcome(client, created) == ("applied", "disputed")
    assert outcome(client, deliver_raw(client, fake, refund_event("evt_r1", 1200)))[0] == "rejected"
    won = dispute_event("closed", "evt_d2", fake.stripe_close_dispute(dispute["id"], "won"))
    assert outcome(client, deliver_raw(client, fake, won)) == ("applied", "partially_refunded")
    assert ledger.get_payment(paid).refunded_amount == 1200


def test_a_refund_delivered_while_its_dispute_is_open_is_counted_at_once(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    fake.stripe_refund(PI, 1200)
    dispute = fake.stripe_dispute(PI, amount=3000)
    created = deliver_raw(client, fake, dispute_event("created", "evt_d1", dispute))
    assert outcome(client, created) == ("applied", "disputed")
    # Counted, though the status it reports (refunded) is not reached: rejected, as above.
    assert outcome(client, deliver_raw(client, fake, refund_event("evt_r1", 1200)))[0] == "rejected"
    payment = ledger.get_payment(paid)
    assert (payment.status, payment.refunded_amount) == ("disputed", 1200)


# --- charge.refunded whose charge is not the order's amount or currency ----------------


def test_a_discounted_charge_refunded_before_its_completion_counts_the_captured_amount(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    fake.stripe_session("cs_1", "order-s1", 3500, "usd", payment_intent=PI)  # 700 off
    fake.stripe_refund(PI, 1000)
    charge_refunded = refund_event("evt_r1", 1000)
    charge_refunded["data"]["object"].update(amount=3500, amount_captured=3500)
    assert outcome(client, deliver_raw(client, fake, charge_refunded)) == (
        "applied",
        "partially_refunded",
    )
    payment = ledger.get_payment(payment_id)
    assert (payment.amount, payment.ordered_amount, payment.refunded_amount) == (3500, 4200, 1000)
    assert payment.discrepancy is not None and payment.discrepancy["captured_amount"] == 3500


def test_a_refunded_charge_in_another_currency_is_acknowledged_rejected_and_counts_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, paid: UUID
) -> None:
    """A converted payment's charge (and its refunds) are in the customer's currency: the
    ledger cannot count them in USD, says so, and does not make Stripe retry for days."""
    fake.stripe_refund(PI, 1000)
    in_euros = refund_event("evt_r1", 1000)
    in_euros["data"]["object"].update(currency="eur", amount=3900)
    answer = deliver_raw(client, fake, in_euros)
    assert outcome(client, answer) == ("rejected", "completed")
    assert "eur" in result(client, answer)["reason"].lower()
    assert ledger.get_payment(paid).refunded_amount == 0
    assert event_topics(ledger)[-2:] == ["TransitionRejected", "Applied"]
