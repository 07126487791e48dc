"""A provider registered only in this test's app takes payments, webhooks and refunds through
the public routes: adding a provider needs no change outside its own module."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import assert_error, payment_body
from tests.conftest import event_topics
from tests.inbox import ADMIN, result
from tests.providers import localpay


@pytest.fixture
def app_with_localpay(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, extra_providers=[localpay.from_settings])
    with TestClient(app) as test_client:
        yield test_client


def deliver(
    client: TestClient, event: dict[str, str], signature: str | None = None
) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"LocalPay-Signature": signature or localpay.sign(body)}
    return client.post("/api/webhooks/localpay", content=body, headers=headers)


def localpay_order() -> dict[str, object]:
    return payment_body(order_id="lp-1", provider="localpay", currency="JPY", amount=3000)


def test_a_registered_provider_is_paid_by_its_webhook_and_refunded_by_its_adapter(
    app_with_localpay: TestClient,
) -> None:
    client = app_with_localpay
    created = client.post("/api/payments", json=localpay_order())
    assert created.status_code == 201, created.text
    paid = {"id": "lpe-1", "type": "payment.paid", "order_id": "lp-1", "charge_id": "lpc-9"}
    answer = deliver(client, paid)
    assert answer.json()["outcome"] == "accepted"
    applied = result(client, answer)
    assert (applied["provider"], applied["event_id"], applied["type"]) == (
        "localpay",
        "lpe-1",
        "payment.paid",
    )
    assert (applied["outcome"], applied["status"]) == ("applied", "completed")
    assert applied["payment_id"] == created.json()["payment_id"]
    assert deliver(client, paid).json() == {**answer.json(), "outcome": "duplicate"}
    # Applied again (an admin's replay), its receipt makes it a duplicate: paid once.
    replay = client.post(
        f"/api/admin/webhooks/{answer.json()['delivery_id']}/replay", headers=ADMIN
    )
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate"), replay.text
    ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
    assert event_topics(ledger).count("Completed") == 1
    payment_id = created.json()["payment_id"]
    refund = client.post(
        f"/api/admin/payments/{payment_id}/refunds",
        json={"amount": 1000, "reason": "late"},
        headers={**ADMIN, "Idempotency-Key": "r1"},
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "partially_refunded"
    head = refund.json()["position"]
    query = f"provider=localpay&min_position={head}"
    table = client.get(f"/api/admin/payments?{query}", headers=ADMIN).json()
    stats = client.get("/api/admin/stats", headers=ADMIN).json()
    assert stats["by_provider"]["localpay"] == {"count": 1, "revenue": {"JPY": 2000}}
    (row,) = table["items"]
    assert (row["provider"], row["status"], row["refunded_amount"]) == (
        "localpay",
        "partially_refunded",
        1000,
    )


def test_the_provider_checks_its_own_orders_and_signatures(app_with_localpay: TestClient) -> None:
    client = app_with_localpay
    ledger: PaymentLedger = client.app.state.services.ledger  # type: ignore[attr-defined]
    krw = {**localpay_order(), "currency": "KRW"}
    assert "JPY only" in assert_error(client.post("/api/payments", json=krw), 422)["message"]
    client.post("/api/payments", json=localpay_order())
    forged = {"id": "lpe-2", "type": "payment.paid", "order_id": "lp-1", "charge_id": "x"}
    assert_error(deliver(client, forged, signature="0" * 64), 400, "invalid_signature")
    assert event_topics(ledger) == ["Initiated", "Claimed"]


def test_an_app_without_the_registration_knows_no_such_provider(client: TestClient) -> None:
    assert_error(client.post("/api/payments", json=localpay_order()), 422, "unknown_provider")
    answer = client.post("/api/webhooks/localpay", content=b"{}")
    assert_error(answer, 404, "unknown_provider")
    listed = client.get("/api/admin/payments?provider=localpay", headers=ADMIN)
    assert_error(listed, 422, "unknown_provider")
