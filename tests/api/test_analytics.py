"""The analytics routes against an independent fold of the stored events, on both stores:
revenue per day, week and month with empty periods as zeros, method share, the weekday x
hour pattern in the business time zone, outcomes; and their bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger, PaymentOrder
from ledger.payment import Payment
from tests.api.test_admin_stats import ADMIN, AUDITOR, pin_clock
from tests.api.test_checkout import assert_error

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 30 November, 12:00 in Seoul
# Monday 2 Nov 23:30 in Seoul is still Monday 14:30 in UTC; Sunday 1 Nov 23:30 UTC is
# Monday 2 Nov 08:30 in Seoul: the zone decides the day, the week and the hour.
MON_NIGHT = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
SUN_NIGHT_UTC = datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
OCTOBER = datetime(2026, 10, 20, 1, 0, tzinfo=UTC)
# order, provider, currency, amount, method, completed at, refund, failure code
SCRIPT: list[tuple[str, str, str, int, str, datetime | None, int, str]] = [
    ("a", "toss", "KRW", 50000, "카드", MON_NIGHT, 0, ""),
    ("b", "toss", "KRW", 30000, "간편결제", SUN_NIGHT_UTC, 10000, ""),
    ("c", "stripe", "USD", 4999, "card", MON_NIGHT, 0, ""),
    ("d", "stripe", "USD", 1500, "card", OCTOBER, 1500, ""),
    ("e", "toss", "KRW", 20000, "카드", NOW - timedelta(hours=1), 0, ""),
    ("f", "stripe", "USD", 999, "", None, 0, "card_declined"),
    ("g", "stripe", "USD", 999, "", None, 0, "card_declined"),
    ("h", "toss", "KRW", 9000, "", None, 0, "REJECT_CARD_COMPANY"),
    ("i", "toss", "KRW", 7000, "", None, 0, "cancel"),
    ("j", "toss", "KRW", 8000, "", None, 0, ""),  # still pending
]


def run(ledger: PaymentLedger) -> int:
    for order_id, provider, currency, amount, method, paid_at, refund, code in SCRIPT:
        order = PaymentOrder(order_id, f"b-{order_id}", "c", "Kim", "t-1", "2026-12-05",
                             amount, currency, provider)  # fmt: skip
        pid = ledger.initiate(order).payment_id
        if paid_at is not None:
            ledger.complete(pid, f"pk-{order_id}", method, paid_at)
        if refund:
            ledger.refund(pid, f"r-{order_id}", refund, "asked", NOW)
        if code == "cancel":
            ledger.cancel(pid, "expired", NOW)
        elif code:
            ledger.fail(pid, code, "declined", NOW)
    return ledger.recorder.max_notification_id() or 0


def folded(ledger: PaymentLedger) -> list[dict[str, Any]]:
    """Each payment from its events, in plain Python: no projection involved."""
    payments: dict[Any, dict[str, Any]] = {}
    for notification in ledger.recorder.select_notifications(start=None, limit=10_000):
        event = ledger.mapper.to_domain_event(notification)
        if isinstance(event, Payment.Initiated):
            payments[event.originator_id] = {
                "provider": event.provider, "currency": event.currency, "amount": event.amount,
                "refunded": 0, "status": "pending", "at": event.timestamp, "method": "",
            }  # fmt: skip
            continue
        payment = payments.get(event.originator_id)
        if payment is None:
            continue  # not a payment's event
        if isinstance(event, Payment.Completed):
            payment.update(status="completed", at=event.approved_at, method=event.method)
        elif isinstance(event, Payment.Refunded):
            payment["refunded"] += event.amount
        elif isinstance(event, Payment.Failed):
            payment.update(status="failed", code=event.code)
        elif isinstance(event, Payment.Cancelled):
            payment["status"] = "cancelled"
    for payment in payments.values():
        payment["local"] = payment["at"].astimezone(SEOUL)
    return list(payments.values())


def get(client: TestClient, path: str, head: int) -> dict[str, Any]:
    response = client.get(f"{path}{'&' if '?' in path else '?'}min_position={head}", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def head(client: TestClient, ledger: PaymentLedger) -> int:
    pin_clock(client, NOW)
    return run(ledger)


def test_daily_revenue_has_every_day_of_the_range_for_every_currency(
    client: TestClient, ledger: PaymentLedger, head: int
) -> None:
    body = get(client, "/api/admin/analytics/revenue?interval=day", head)
    assert (body["interval"], body["timezone"]) == ("day", "Asia/Seoul")
    assert (body["from"], body["to"]) == ("2026-11-01", "2026-11-30")  # 30 days up to today
    expected = {}
    for offset in range(30):
        day = date(2026, 11, 1) + timedelta(days=offset)
        for currency in ("KRW", "USD"):
            paid = [p for p in folded(ledger) if p["status"] == "completed"
                    and p["local"].date() == day and p["currency"] == currency]  # fmt: skip
            expected[(day.isoformat(), currency)] = {
                "period_start": day.isoformat(), "currency": currency, "count": len(paid),
                "revenue": sum(p["amount"] - p["refunded"] for p in paid),
                "refunded": sum(p["refunded"] for p in paid),
            }  # fmt: skip
    assert body["series"] == list(expected.values())
    # Anchors, so the fold is checked too: b (30,000 - 10,000) and a both fall on Seoul's
    # Monday 2 November; nothing on 1 November although b was paid then in UTC.
    assert expected[("2026-11-02", "KRW")]["revenue"] == 70000
    assert expected[("2026-11-01", "KRW")] == {"period_start": "2026-11-01", "currency": "KRW",
                                              "count": 0, "revenue": 0, "refunded": 0}  # fmt: skip


def test_weekly_and_monthly_revenue_sum_their_days(client: TestClient, head: int) -> None:
    weeks = get(client, "/api/admin/analytics/revenue?interval=week&from=2026-10-19", head)
    starts = sorted({row["period_start"] for row in weeks["series"]})
    assert starts == ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16",
                      "2026-11-23", "2026-11-30"]  # fmt: skip
    by_week = {(r["period_start"], r["currency"]): r for r in weeks["series"]}
    assert by_week[("2026-11-02", "KRW")]["revenue"] == 70000
    assert by_week[("2026-10-19", "USD")] == {
        "period_start": "2026-10-19",
        "currency": "USD",
        "revenue": 0,
        "count": 1,
        "refunded": 1500,
    }
    months = get(client, "/api/admin/analytics/revenue?interval=month", head)
    assert (months["from"], months["to"]) == ("2025-12-01", "2026-11-30")
    assert len(months["series"]) == 12 * 2
    november = {r["currency"]: r for r in months["series"] if r["period_start"] == "2026-11-01"}
    assert november["KRW"]["revenue"] == 50000 + 20000 + 20000
    assert november["USD"] == {"period_start": "2026-11-01", "currency": "USD",
                               "revenue": 4999, "count": 1, "refunded": 0}  # fmt: skip


def test_revenue_of_one_provider(client: TestClient, head: int) -> None:
    body = get(
        client, "/api/admin/analytics/revenue?interval=month&from=2026-11-01&provider=stripe", head
    )
    assert body["series"] == [
        {"period_start": "2026-11-01", "currency": "USD", "revenue": 4999, "count": 1,
         "refunded": 0},
    ]  # fmt: skip


def test_method_share_counts_paid_payments_per_provider_and_method(
    client: TestClient, head: int
) -> None:
    body = get(client, "/api/admin/analytics/methods?from=2026-10-01", head)
    assert body["items"] == [
        {"provider": "stripe", "method": "card", "count": 2, "revenue": {"USD": 4999}},
        {"provider": "toss", "method": "카드", "count": 2, "revenue": {"KRW": 70000}},
        {"provider": "toss", "method": "간편결제", "count": 1, "revenue": {"KRW": 20000}},
    ]


def test_hour_cells_are_the_business_weekday_and_hour_of_each_completion(
    client: TestClient, ledger: PaymentLedger, head: int
) -> None:
    body = get(client, "/api/admin/analytics/hours?from=2026-10-01", head)
    assert body["timezone"] == "Asia/Seoul"
    cells = body["cells"]
    assert [(c["weekday"], c["hour"]) for c in cells] == [
        (w, h) for w in range(7) for h in range(24)
    ]
    expected: dict[tuple[int, int], int] = {}
    for p in folded(ledger):
        if p["status"] == "completed":
            key = (p["local"].weekday(), p["local"].hour)
            expected[key] = expected.get(key, 0) + 1
    assert {(c["weekday"], c["hour"]): c["count"] for c in cells if c["count"]} == expected
    # a and c: Monday 23:30 in Seoul; b: Monday 08:30 in Seoul (Sunday in UTC).
    assert cells[0 * 24 + 23] == {"weekday": 0, "hour": 23, "count": 2,
                                  "revenue": {"KRW": 50000, "USD": 4999}}  # fmt: skip
    assert cells[0 * 24 + 8]["revenue"] == {"KRW": 20000}


def test_outcomes_give_the_success_rate_and_the_commonest_failures(
    client: TestClient, head: int
) -> None:
    # Unpaid payments count on their creation day: the real one, as the store stamped it.
    created = (datetime.now(UTC).astimezone(SEOUL) + timedelta(days=1)).date().isoformat()
    body = get(client, f"/api/admin/analytics/outcomes?from=2026-10-01&to={created}", head)
    assert body == {
        "from": "2026-10-01", "to": created,
        "attempts": 9, "completed": 5, "failed": 3, "cancelled": 1,
        "success_rate": round(5 / 9, 4),
        "failures": [{"code": "card_declined", "count": 2},
                     {"code": "REJECT_CARD_COMPANY", "count": 1}],
    }  # fmt: skip


def test_a_range_with_nothing_in_it_is_zeros_not_an_error(client: TestClient, head: int) -> None:
    body = get(client, "/api/admin/analytics/revenue?from=2020-01-01&to=2020-01-03", head)
    assert [(r["period_start"], r["currency"], r["revenue"]) for r in body["series"]] == [
        (day, currency, 0) for day in ("2020-01-01", "2020-01-02", "2020-01-03")
        for currency in ("KRW", "USD")
    ]  # fmt: skip
    outcomes = get(client, "/api/admin/analytics/outcomes?from=2020-01-01&to=2020-01-03", head)
    assert (outcomes["attempts"], outcomes["success_rate"]) == (0, None)


@pytest.mark.parametrize(
    ("query", "first", "last"),
    [
        ("revenue?interval=day&to=0001-01-05", "0001-01-01", "0001-01-05"),
        ("revenue?interval=week&to=0001-01-05", "0001-01-01", "0001-01-01"),
        ("revenue?interval=month&to=0001-03-05", "0001-01-01", "0001-03-01"),
        ("revenue?interval=month&from=9999-11-01&to=9999-12-31", "9999-11-01", "9999-12-01"),
        ("revenue?interval=week&from=9999-12-20&to=9999-12-31", "9999-12-20", "9999-12-27"),
        ("revenue?interval=day&from=9999-12-30&to=9999-12-31", "9999-12-30", "9999-12-31"),
    ],
)
def test_ranges_at_the_ends_of_the_calendar_are_answered(
    client: TestClient, head: int, query: str, first: str, last: str
) -> None:
    # The default span stops at year 1; the last period of year 9999 is the last one.
    starts = [
        row["period_start"] for row in get(client, f"/api/admin/analytics/{query}", head)["series"]
    ]
    assert (starts[0], starts[-1]) == (first, last)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("revenue?from=2026-11-10&to=2026-11-01", 400, "invalid_range"),
        ("hours?from=2026-11-10&to=2026-11-01", 400, "invalid_range"),
        ("revenue?interval=day&from=2000-01-01", 400, "range_too_long"),
        ("revenue?interval=year", 422, "validation_error"),
        ("revenue?from=2026-13-01", 422, "validation_error"),
        ("revenue?provider=paypal", 422, "unknown_provider"),
    ],
)
def test_bad_ranges_and_parameters_are_refused_clearly(
    client: TestClient, query: str, status: int, code: str
) -> None:
    pin_clock(client, NOW)
    response = client.get(f"/api/admin/analytics/{query}", headers=AUDITOR)
    assert_error(response, status, code)


@pytest.mark.parametrize("route", ["revenue", "methods", "hours", "outcomes"])
def test_analytics_need_the_admin_or_auditor_token(client: TestClient, route: str) -> None:
    assert client.get(f"/api/admin/analytics/{route}").status_code == 401
    other = {"Authorization": "Bearer not-a-token"}
    assert client.get(f"/api/admin/analytics/{route}", headers=other).status_code == 401
    assert client.get(f"/api/admin/analytics/{route}", headers=AUDITOR).status_code == 200
