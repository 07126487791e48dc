"""Stripe webhooks over HTTP, signed like Stripe signs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import PaymentLedger
from ledger.payment import Payment
from ledger.settings import Settings
from tests.api.test_checkout import assert_error, stripe_body
from tests.conftest import event_topics, make_settings
from tests.fake_providers import FakeProviders
from tests.fixtures import load
from tests.inbox import ADMIN, result
from tests.live import until, uvicorn_serving

WEBHOOK = "/api/webhooks/stripe"


def signed(fake: FakeProviders, payload: bytes, **signature: Any) -> dict[str, str]:
    return {
        "Stripe-Signature": fake.stripe_signature(payload, **signature),
        "content-type": "application/json",
    }


def deliver(
    client: TestClient,
    fake: FakeProviders,
    event_type: str,
    obj: dict[str, Any],
    event_id: str | None = None,
) -> httpx.Response:
    payload = fake.stripe_event(event_type, obj, event_id=event_id)
    return client.post(WEBHOOK, content=payload, headers=signed(fake, payload))


def deliver_raw(client: TestClient, fake: FakeProviders, event: dict[str, Any]) -> httpx.Response:
    payload = json.dumps(event).encode()
    return client.post(WEBHOOK, content=payload, headers=signed(fake, payload))


def applied(
    client: TestClient,
    fake: FakeProviders,
    event_type: str,
    obj: dict[str, Any],
    event_id: str | None = None,
) -> dict[str, Any]:
    """Deliver an event and wait until the inbox has applied it: its stored result."""
    return result(client, deliver(client, fake, event_type, obj, event_id))  # type: ignore[no-any-return]


def applied_raw(client: TestClient, fake: FakeProviders, event: dict[str, Any]) -> dict[str, Any]:
    return result(client, deliver_raw(client, fake, event))  # type: ignore[no-any-return]


def drained(client: TestClient) -> None:
    """Wait until the inbox holds nothing waiting to be applied (so that a copy that was
    wrongly stored again would have been applied by now)."""

    def idle() -> bool:
        for waiting in ("accepted", "retrying"):
            page = client.get(f"/api/admin/webhooks?outcome={waiting}&limit=1", headers=ADMIN)
            assert page.status_code == 200, page.text
            if page.json()["items"]:
                return False
        return True

    until(idle, "the webhook inbox drained")


def redelivered(client: TestClient, answer: httpx.Response, first: dict[str, Any]) -> None:
    """`answer` is a copy of the delivery `first` (its stored row): answered duplicate, under
    the first one's id, and not stored (nor so applied) again."""
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "duplicate", answer.text
    assert answer.json()["delivery_id"] == first["delivery_id"]
    drained(client)
    assert result(client, answer)["attempts"] == first["attempts"]


def session(fake: FakeProviders, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"payment_intent": "pi_1", **overrides}
    return fake.stripe_session("cs_1", "order-s1", 4200, "usd", **values)


@pytest.fixture
def payment_id(client: TestClient) -> UUID:
    created = client.post("/api/payments", json=stripe_body())
    assert created.status_code == 201, created.text
    return UUID(created.json()["payment_id"])


def test_completed_session_completes_the_payment_and_notifies_the_trainer(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    answer = deliver(client, fake, "checkout.session.completed", session(fake), "evt_1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["received"] is True and answer.json()["outcome"] == "accepted"
    body = result(client, answer)
    assert body["delivery_id"] == answer.json()["delivery_id"]
    assert (body["event_id"], body["type"]) == ("evt_1", "checkout.session.completed")
    assert body["outcome"] == "applied" and body["attempts"] == 1
    assert (body["payment_id"], body["status"]) == (str(payment_id), "completed")
    assert isinstance(body["position"], int)
    assert ledger.get_payment(payment_id).provider_payment_id == "pi_1"
    assert event_topics(ledger) == [
        "Initiated",
        "Claimed",
        "Completed",
        "Sent",
        "Decided",
        "Applied",
    ]


def test_session_is_found_by_client_reference_id(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    obj = session(fake, use_client_reference_id=True)
    assert obj["metadata"] == {}
    assert applied(client, fake, "checkout.session.completed", obj)["outcome"] == "applied"
    assert ledger.get_payment(payment_id).status == "completed"


def test_unpaid_completed_session_stays_pending_until_the_async_payment_succeeds(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    unpaid = session(fake, payment_status="unpaid")
    answer = applied(client, fake, "checkout.session.completed", unpaid)
    assert answer["outcome"] == "unchanged" and answer["status"] == "pending"
    assert event_topics(ledger) == ["Initiated", "Claimed"]

    paid = applied(client, fake, "checkout.session.async_payment_succeeded", session(fake))
    assert paid["outcome"] == "applied" and paid["status"] == "completed"
    assert event_topics(ledger).count("Completed") == 1


def test_async_payment_failure_fails_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    obj = session(fake, payment_status="unpaid")
    answer = applied(client, fake, "checkout.session.async_payment_failed", obj)
    assert answer["status"] == "failed"
    assert ledger.get_payment(payment_id).failure_code == "async_payment_failed"


def test_expired_session_cancels_the_payment(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    obj = session(fake, payment_status="unpaid", status="expired")
    answer = applied(client, fake, "checkout.session.expired", obj)
    assert (answer["outcome"], answer["status"]) == ("applied", "cancelled")
    assert event_topics(ledger) == ["Initiated", "Claimed", "Cancelled", "Decided", "Applied"]


def test_failed_payment_intent_records_stripes_code_and_message(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    answer = applied_raw(client, fake, load("payment_intent.payment_failed"))
    assert answer["status"] == "failed"
    payment = ledger.get_payment(payment_id)
    assert payment.failure_code == "card_declined"
    assert payment.failure_message == "Your card has insufficient funds."


def refund_event(
    event_id: str, amount_refunded: int, payment_intent: str = "pi_1"
) -> dict[str, Any]:
    """A recorded `charge.refunded` (API 2024-06-20: the charge lists no refunds)."""
    event = load("charge.refunded")
    event["id"] = event_id
    charge = event["data"]["object"]
    charge["amount_refunded"] = amount_refunded
    charge["refunded"] = amount_refunded == charge["amount"]
    charge["payment_intent"] = payment_intent
    return event


def refunds_recorded(ledger: PaymentLedger, payment_id: UUID) -> list[tuple[str, int]]:
    """(refund_id, amount) of each Refunded event of the payment, in order."""
    events = ledger.repository.event_store.get(payment_id)
    return [(e.refund_id, e.amount) for e in events if isinstance(e, Payment.Refunded)]


def stripe_refunds(fake: FakeProviders) -> list[tuple[str, int]]:
    """(id, amount) of the fake Stripe's succeeded refunds, oldest first."""
    return [(r["id"], r["amount"]) for r in fake.stripe_refunds() if r["status"] == "succeeded"]


def test_charge_refunds_record_each_stripe_refund_under_its_own_id(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    applied(client, fake, "checkout.session.completed", session(fake))
    fake.stripe_refund("pi_1", 1200)
    partial = applied_raw(client, fake, refund_event("evt_r1", 1200))
    assert (partial["outcome"], partial["status"]) == ("applied", "partially_refunded")
    fake.stripe_refund("pi_1", 3000)
    full = applied_raw(client, fake, refund_event("evt_r2", 4200))
    assert full["status"] == "refunded"
    assert refunds_recorded(ledger, payment_id) == stripe_refunds(fake)
    assert ledger.get_payment(payment_id).refunded_amount == 4200

    before = event_topics(ledger)
    redelivered(client, deliver_raw(client, fake, refund_event("evt_r1", 1200)), partial)
    stale = applied_raw(client, fake, refund_event("evt_r0", 1200))  # an older total, new id
    assert stale["outcome"] == "unchanged"  # applied after the copy: the copy changed nothing
    assert event_topics(ledger) == before
    assert ledger.get_payment(payment_id).refunded_amount == 4200


def test_refunds_the_charge_carries_are_recorded_without_asking_stripe(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    """Before API version 2022-11-15 (or with an expanding endpoint) the charge lists them."""
    applied(client, fake, "checkout.session.completed", session(fake))
    event = refund_event("evt_r1", 1500)
    made = [fake.stripe_refund("pi_1", 1000), fake.stripe_refund("pi_1", 500)]
    event["data"]["object"]["refunds"] = {"object": "list", "data": made[::-1], "has_more": False}
    assert applied_raw(client, fake, event)["outcome"] == "applied"
    assert refunds_recorded(ledger, payment_id) == [(r["id"], r["amount"]) for r in made]
    assert fake.calls("GET", "/v1/refunds") == []


def test_a_pending_refund_is_not_counted_until_it_succeeds(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    applied(client, fake, "checkout.session.completed", session(fake))
    pending = fake.stripe_refund("pi_1", 1200, status="pending")
    first = applied_raw(client, fake, refund_event("evt_r1", 1200))
    assert (first["outcome"], first["status"]) == ("unchanged", "completed")
    assert refunds_recorded(ledger, payment_id) == []

    fake.stripe_set_refund_status(pending["id"], "succeeded")
    later = applied_raw(client, fake, refund_event("evt_r2", 1200))
    assert later["status"] == "partially_refunded"
    assert refunds_recorded(ledger, payment_id) == [(pending["id"], 1200)]


def test_a_redelivery_that_would_now_be_rejected_is_still_a_duplicate_and_appends_nothing(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    """The completion is redelivered after a full refund: deciding it again would record
    a rejected transition, but the delivery was applied before, so nothing is stored."""
    first = applied(client, fake, "checkout.session.completed", session(fake), "evt_c")
    assert first["outcome"] == "applied"
    fake.stripe_refund("pi_1", 4200)
    assert applied_raw(client, fake, refund_event("evt_r", 4200))["status"] == "refunded"
    before = event_topics(ledger)
    again = deliver(client, fake, "checkout.session.completed", session(fake), "evt_c")
    redelivered(client, again, first)
    assert result(client, again)["outcome"] == "applied"  # the first copy's, not re-applied
    assert event_topics(ledger) == before
    # Replayed now, its receipt still decides: nothing is decided (or rejected) again.
    replayed = client.post(f"/api/admin/webhooks/{first['delivery_id']}/replay", headers=ADMIN)
    assert replayed.status_code == 200, replayed.text
    assert (replayed.json()["outcome"], replayed.json()["status"]) == ("duplicate", "refunded")
    assert event_topics(ledger) == before
    assert ledger.get_payment(payment_id).status == "refunded"


def test_refund_reported_before_the_completion_still_counts_the_payment_and_the_refund(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    obj = session(fake)
    fake.stripe_refund("pi_1", 1200)
    first = applied_raw(client, fake, refund_event("evt_r1", 1200))
    assert first["status"] == "partially_refunded"
    late = applied(client, fake, "checkout.session.completed", obj)
    assert late["outcome"] == "rejected"
    payment = ledger.get_payment(payment_id)
    assert (payment.status, payment.refunded_amount) == ("partially_refunded", 1200)
    topics = event_topics(ledger)
    assert topics.count("Completed") == 1 and topics.count("Sent") == 2  # the sale, the refund


@pytest.mark.parametrize(
    ("late_type", "late_overrides"),
    [
        ("checkout.session.expired", {"payment_status": "unpaid", "status": "expired"}),
        ("checkout.session.async_payment_failed", {"payment_status": "unpaid"}),
    ],
)
def test_late_expiry_or_failure_after_completion_changes_no_status_or_money(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    payment_id: UUID,
    late_type: str,
    late_overrides: dict[str, Any],
) -> None:
    applied(client, fake, "checkout.session.completed", session(fake))
    late = applied(client, fake, late_type, session(fake, **late_overrides))
    assert late["outcome"] == "rejected" and late["status"] == "completed"
    failed_intent = applied_raw(client, fake, load("payment_intent.payment_failed"))
    assert failed_intent["outcome"] == "rejected"
    payment = ledger.get_payment(payment_id)
    assert (payment.status, payment.refunded_amount, payment.failure_code) == (
        "completed",
        0,
        None,
    )
    assert event_topics(ledger).count("TransitionRejected") == 2


def test_failure_then_success_ends_completed(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    # A declined card, then a second card in the same Checkout Session.
    assert applied_raw(client, fake, load("payment_intent.payment_failed"))["status"] == "failed"
    completed = applied(client, fake, "checkout.session.completed", session(fake))
    assert completed["outcome"] == "applied"
    assert ledger.get_payment(payment_id).status == "completed"


def test_signature_older_than_300_seconds_is_refused(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    payload = fake.stripe_event("checkout.session.completed", session(fake))
    stale = signed(fake, payload, timestamp=int(time.time()) - 301)
    assert_error(client.post(WEBHOOK, content=payload, headers=stale), 400, "invalid_signature")
    assert event_topics(ledger) == ["Initiated", "Claimed"]

    recent = signed(fake, payload, timestamp=int(time.time()) - 299)
    answer = client.post(WEBHOOK, content=payload, headers=recent)
    assert result(client, answer)["outcome"] == "applied"


def tampered(fake: FakeProviders, payload: bytes) -> tuple[bytes, dict[str, str]]:
    headers = signed(fake, payload)
    return payload.replace(b'"amount_total": 4200', b'"amount_total": 1'), headers


def signed_body(fake: FakeProviders, payload: bytes) -> tuple[bytes, dict[str, str]]:
    return payload, signed(fake, payload)


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda fake, p: (p, {"content-type": "application/json"}), "invalid_signature"),
        (lambda fake, p: (p, signed(fake, p, secret="whsec_other")), "invalid_signature"),
        (lambda fake, p: (p, {"Stripe-Signature": "t=oops,v1=zz"}), "invalid_signature"),
        (lambda fake, p: (p, {"Stripe-Signature": f"t={int(time.time())}"}), "invalid_signature"),
        (tampered, "invalid_signature"),
        (lambda fake, p: signed_body(fake, b'{"id": "evt_1", "type":'), "malformed_json"),
        (lambda fake, p: signed_body(fake, b"\xff\xfe not utf-8"), "malformed_json"),
        (lambda fake, p: signed_body(fake, b'{"id": "evt_1"}'), "invalid_event"),
        (lambda fake, p: signed_body(fake, b"[1, 2]"), "invalid_body"),
    ],
    ids=[
        "missing",
        "other-secret",
        "garbage",
        "no-v1",
        "tampered",
        "malformed",
        "not-utf8",
        "not-event",
        "not-object",
    ],
)
def test_refused_deliveries_answer_400_and_append_nothing(
    client: TestClient,
    fake: FakeProviders,
    ledger: PaymentLedger,
    payment_id: UUID,
    make: Any,
    code: str,
) -> None:
    payload = fake.stripe_event("checkout.session.completed", session(fake))
    body, headers = make(fake, payload)
    assert_error(client.post(WEBHOOK, content=body, headers=headers), 400, code)
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_without_a_webhook_secret_stripe_webhooks_answer_503(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake, stripe_webhook_secret=None)
    payload = fake.stripe_event("checkout.session.completed", {"id": "cs_1"})
    with TestClient(create_app(settings)) as client:
        answer = client.post(WEBHOOK, content=payload, headers=signed(fake, payload))
    assert_error(answer, 503, "webhook_not_configured")


def test_unhandled_event_types_are_acknowledged_and_ignored(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, payment_id: UUID
) -> None:
    answer = deliver(client, fake, "customer.created", {"id": "cus_1", "object": "customer"})
    assert answer.status_code == 200
    assert answer.json() == {
        "received": True,
        "delivery_id": answer.json()["delivery_id"],
        "outcome": "accepted",
    }
    row = result(client, answer)
    assert {
        k: row[k] for k in ("type", "outcome", "payment_id", "status", "position", "reason")
    } == {
        "type": "customer.created",
        "outcome": "ignored",
        "payment_id": None,
        "status": None,
        "position": None,
        "reason": "unhandled_type",
    }
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_unknown_order_is_parked_acknowledged_and_logged(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, caplog: pytest.LogCaptureFixture
) -> None:
    """Money for an order the ledger does not know yet (the webhook beat the checkout) is
    kept, not dropped: tests/api/test_parking.py shows it applied once the order exists."""
    obj = fake.stripe_session("cs_9", "order-elsewhere", 4200, "usd")
    with caplog.at_level(logging.INFO, logger="ledger.webhooks"):
        answer = deliver(client, fake, "checkout.session.completed", obj, "evt_9")
        row = result(client, answer)
    assert answer.status_code == 200
    assert row["outcome"] == "parked"
    assert "order-elsewhere" in row["reason"]
    stored, line = [r for r in caplog.records if r.name == "ledger.webhooks"]
    assert "event_id=evt_9" in stored.getMessage() and "outcome=accepted" in stored.getMessage()
    assert line.levelno == logging.WARNING
    assert "event_id=evt_9" in line.getMessage() and "outcome=parked" in line.getMessage()
    assert event_topics(ledger) == ["Opened", "Parked"]


def test_each_delivery_writes_one_structured_log_line(
    client: TestClient,
    fake: FakeProviders,
    payment_id: UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    obj = session(fake)
    with caplog.at_level(logging.INFO, logger="ledger.webhooks"):
        first = deliver(client, fake, "checkout.session.completed", obj, "evt_1")
        row = result(client, first)
        copy = deliver(client, fake, "checkout.session.completed", obj, "evt_1")
        client.post(WEBHOOK, content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"})
        redelivered(client, copy, row)  # and drained: a second application would log here
    lines = [r for r in caplog.records if r.name == "ledger.webhooks"]
    fields = [r.webhook for r in lines]  # type: ignore[attr-defined]
    # Stored (accepted) then applied by the processor; the copy passes the checks (its
    # answer says duplicate) and is not applied again; the forgery is refused.
    assert [f["outcome"] for f in fields] == ["accepted", "applied", "accepted", "refused"]
    identity = {"provider": "stripe", "event_id": "evt_1", "type": "checkout.session.completed"}
    assert fields[0] == {**identity, "outcome": "accepted"}
    assert fields[1] == {
        **identity,
        "outcome": "applied",
        "payment_id": payment_id,
        "status": "completed",
        "position": row["position"],
    }
    assert fields[2] == {**identity, "outcome": "accepted"}
    assert fields[3]["reason"].startswith("invalid_signature")


def test_oversized_body_is_refused_413(
    client: TestClient, fake: FakeProviders, ledger: PaymentLedger, settings: Settings
) -> None:
    padding = {"pad": "x" * settings.max_body_bytes}
    payload = fake.stripe_event("checkout.session.completed", padding)
    answer = client.post(WEBHOOK, content=payload, headers=signed(fake, payload))
    assert_error(answer, 413, "payload_too_large")
    assert event_topics(ledger) == []


# --- concurrency: a real server, real sockets, many threads --------------------------


@contextmanager
def live_server(settings: Settings) -> Iterator[tuple[str, PaymentLedger]]:
    """The app served by uvicorn in a thread (TestClient is not for concurrent use)."""
    app = create_app(settings)
    with uvicorn_serving(app) as url:
        yield url, app.state.services.ledger


def test_same_event_delivered_20_times_from_8_threads_applies_once(
    settings: Settings, fake: FakeProviders
) -> None:
    with live_server(settings) as (base_url, ledger):
        created = httpx.post(f"{base_url}/api/payments", json=stripe_body())
        assert created.status_code == 201
        payload = fake.stripe_event("checkout.session.completed", session(fake), "evt_many")
        headers = signed(fake, payload)

        def post(_: int) -> httpx.Response:
            return httpx.post(f"{base_url}{WEBHOOK}", content=payload, headers=headers, timeout=30)

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(post, range(20)))
        assert [a.status_code for a in answers] == [200] * 20
        with httpx.Client(base_url=base_url) as http:
            row = result(http, answers[0])  # type: ignore[arg-type]
        topics = event_topics(ledger)

    outcomes = [a.json()["outcome"] for a in answers]
    assert outcomes.count("accepted") == 1  # stored once, the other 19 found it stored
    assert outcomes.count("duplicate") == 19
    assert {a.json()["delivery_id"] for a in answers} == {row["delivery_id"]}
    assert row["outcome"] == "applied" and row["attempts"] == 1
    assert topics.count("Completed") == 1
    assert topics.count("Sent") == 1  # one notification to the trainer
    assert topics.count("Applied") == 1  # one delivery receipt
