"""The admin payments table over HTTP: filters, pagination, auth, read-your-writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger, PaymentOrder
from tests.api.test_checkout import assert_error

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def seed(ledger: PaymentLedger) -> tuple[dict[str, str], int]:
    """Six payments in every status; returns order_id → expected status, and the head."""
    expected: dict[str, str] = {}
    position = 0
    for i, (provider, outcome) in enumerate(
        [
            ("toss", "pending"),
            ("toss", "completed"),
            ("stripe", "failed"),
            ("stripe", "cancelled"),
            ("toss", "refunded"),
            ("stripe", "partially_refunded"),
        ]
    ):
        order = PaymentOrder(
            order_id=f"o-{i}", booking_id=f"b-{i % 2}", customer_id="c",
            customer_name=f"Customer {i}", trainer_id=f"t-{i % 3}", booking_date="2026-12-01",
            amount=10000,
            currency="KRW" if provider == "toss" else "USD", provider=provider,
        )  # fmt: skip
        pid = ledger.initiate(order).payment_id
        result = None
        if outcome in ("completed", "refunded", "partially_refunded"):
            result = ledger.complete(pid, f"pk-{i}", "card", NOW)
        if outcome == "refunded":
            result = ledger.refund(pid, f"r-{i}", 10000, "", NOW)
        if outcome == "partially_refunded":
            result = ledger.refund(pid, f"r-{i}", 2500, "", NOW)
        if outcome == "failed":
            result = ledger.fail(pid, "card_declined", "Your card was declined.", NOW)
        if outcome == "cancelled":
            result = ledger.cancel(pid, "expired", NOW)
        expected[order.order_id] = outcome
        position = max(position, (result.position if result else 0) or 0)
    return expected, ledger.recorder.max_notification_id()


def orders(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["order_id"] for item in response.json()["items"]]


def test_payments_are_listed_newest_first_with_contract_fields(
    client: TestClient, ledger: PaymentLedger
) -> None:
    _, head = seed(ledger)
    response = client.get(f"/api/admin/payments?min_position={head}", headers=ADMIN)
    assert orders(response) == [f"o-{i}" for i in range(5, -1, -1)]
    item = response.json()["items"][0]
    assert set(item) == {
        "payment_id", "order_id", "booking_id", "customer_name", "trainer_id", "booking_date",
        "amount", "refunded_amount", "currency", "status", "provider", "created_at",
        "completed_at", "failure_code", "failure_message",
        # provider truth: what was ordered, chargebacks, a discrepancy (null when none)
        "ordered_amount", "chargeback_amount", "amount_discrepancy",
        "provider_payment_id",  # what the provider calls it, for searching their dashboard
    }  # fmt: skip
    assert (item["ordered_amount"], item["chargeback_amount"], item["amount_discrepancy"]) == (
        item["amount"],
        0,
        None,
    )
    assert (item["status"], item["refunded_amount"], item["currency"]) == (
        "partially_refunded",
        2500,
        "USD",
    )
    failed = next(i for i in response.json()["items"] if i["order_id"] == "o-2")
    assert (failed["failure_code"], failed["failure_message"]) == (
        "card_declined",
        "Your card was declined.",
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=completed", ["o-1"]),
        ("status=failed_or_cancelled", ["o-3", "o-2"]),
        ("status=refunded", ["o-4"]),
        ("provider=stripe", ["o-5", "o-3", "o-2"]),
        ("trainer_id=t-1", ["o-4", "o-1"]),
        ("provider=toss&status=pending", ["o-0"]),
    ],
)
def test_filters_return_exactly_the_matching_rows(
    client: TestClient, ledger: PaymentLedger, query: str, expected: list[str]
) -> None:
    _, head = seed(ledger)
    assert (
        orders(client.get(f"/api/admin/payments?{query}&min_position={head}", headers=AUDITOR))
        == expected
    )


def test_cursor_pagination_walks_every_row_once(client: TestClient, ledger: PaymentLedger) -> None:
    _, head = seed(ledger)
    seen: list[str] = []
    url = f"/api/admin/payments?limit=4&min_position={head}"
    while url:
        page = client.get(url, headers=ADMIN).json()
        seen += [item["order_id"] for item in page["items"]]
        url = (
            f"/api/admin/payments?limit=4&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else ""
        )
    assert seen == [f"o-{i}" for i in range(5, -1, -1)]


@pytest.mark.parametrize("query", ["status=paid", "provider=paypal", "limit=0", "limit=501"])
def test_bad_filters_are_422(client: TestClient, query: str) -> None:
    error = assert_error(client.get(f"/api/admin/payments?{query}", headers=ADMIN), 422)
    if query == "status=paid":
        assert "failed_or_cancelled" in error["message"]  # the allowed values are listed


def test_bad_cursor_is_400(client: TestClient) -> None:
    assert_error(
        client.get("/api/admin/payments?cursor=not-a-cursor", headers=ADMIN), 400, "invalid_cursor"
    )


def test_booking_detail_lists_its_payments_and_unknown_booking_is_404(
    client: TestClient, ledger: PaymentLedger
) -> None:
    _, head = seed(ledger)
    detail = client.get(f"/api/admin/bookings/b-1?min_position={head}", headers=ADMIN)
    assert detail.status_code == 200
    assert [p["order_id"] for p in detail.json()["payments"]] == ["o-1", "o-3", "o-5"]
    assert_error(client.get("/api/admin/bookings/nope", headers=ADMIN), 404)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "Basic x"}, 401)],
)
def test_admin_reads_need_a_valid_token(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    assert_error(client.get("/api/admin/payments", headers=headers), status)


def test_admin_routes_answer_503_until_an_admin_token_is_configured(
    database_url: str, fake: Any
) -> None:
    from api.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(database_url, fake, admin_token=None)
    with TestClient(create_app(settings)) as unconfigured:
        assert_error(
            unconfigured.get("/api/admin/payments", headers=ADMIN), 503, "admin_not_configured"
        )


def test_readyz_reports_each_projection_lag(client: TestClient, ledger: PaymentLedger) -> None:
    _, head = seed(ledger)
    client.get(f"/api/admin/payments?min_position={head}", headers=ADMIN)
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["head_position"] == head
    assert ready["projections"]["payments_table"] == {"position": head, "lag": 0}


def test_metrics_expose_request_counts_and_projection_lag(
    client: TestClient, ledger: PaymentLedger
) -> None:
    _, head = seed(ledger)
    client.get(f"/api/admin/payments?min_position={head}", headers=ADMIN)
    client.get("/api/admin/payments?status=nope", headers=ADMIN)
    text = client.get("/metrics").text
    assert (
        'ledger_http_requests_total{method="GET",route="/api/admin/payments",status="200"} 1.0'
        in text
    )
    assert 'route="/api/admin/payments",status="422"} 1.0' in text
    assert f"ledger_head_position {float(head)}" in text
    assert 'ledger_projection_lag{projection="payments_table"} 0.0' in text
