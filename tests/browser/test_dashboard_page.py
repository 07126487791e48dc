"""The dashboard's charts in headless Chromium: what each chart holds (read from Chart.js's
own data, not from pixels) is what the analytics routes answer, for the range in the form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from ledger.application import PaymentLedger, PaymentOrder
from tests.browser.conftest import NARROW, AdminPages, LiveServer
from tests.browser.test_admin_pages import ADMIN_TOKEN

NOW = datetime.now(UTC)
# order, provider, currency, amount, method, paid how long ago, refund, failure
HISTORY: list[tuple[str, str, str, int, str, timedelta | None, int, str]] = [
    ("d-1", "toss", "KRW", 150000, "카드", timedelta(days=1, hours=2), 0, ""),
    ("d-2", "toss", "KRW", 50000, "간편결제", timedelta(days=3), 20000, ""),
    ("d-3", "stripe", "USD", 4999, "card", timedelta(days=3, hours=5), 0, ""),
    ("d-4", "stripe", "USD", 1234, "card", timedelta(days=40), 1234, ""),
    ("d-5", "stripe", "KRW", 30000, "card", timedelta(days=10), 0, ""),
    ("d-6", "stripe", "USD", 999, "", None, 0, "card_declined"),
    ("d-7", "toss", "KRW", 9000, "", None, 0, "REJECT_CARD_COMPANY"),
    ("d-8", "toss", "KRW", 7000, "", None, 0, "cancel"),
    ("d-9", "toss", "KRW", 8000, "", None, 0, ""),
]


def seed(server: LiveServer) -> None:
    ledger: PaymentLedger = server.services.ledger
    for order_id, provider, currency, amount, method, ago, refund, failure in HISTORY:
        order = PaymentOrder(order_id, f"bk-{order_id}", "c", f"Customer {order_id}", "t-1",
                             "2026-12-01", amount, currency, provider)  # fmt: skip
        pid = ledger.initiate(order).payment_id
        if ago is not None:
            ledger.complete(pid, f"pk-{order_id}", method, NOW - ago)
        if refund:
            ledger.refund(pid, f"r-{order_id}", refund, "asked", NOW)
        if failure == "cancel":
            ledger.cancel(pid, "expired", NOW)
        elif failure:
            ledger.fail(pid, failure, "declined", NOW)
    server.caught_up()


@pytest.fixture
def dashboard(live_server: LiveServer, pages: AdminPages) -> AdminPages:
    seed(live_server)
    assert pages.open("/admin/dashboard") == "signed-out"
    assert pages.sign_in(ADMIN_TOKEN) == "ready"
    return pages


def api(server: LiveServer, path: str) -> dict[str, Any]:
    response = httpx.get(server.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def chart(pages: AdminPages, canvas_id: str) -> dict[str, Any]:
    """The labels and datasets of the chart drawn on that canvas."""
    data: dict[str, Any] = pages.driver.execute_script(
        "const c = Chart.getChart(arguments[0]);"
        "return c && {labels: c.data.labels, datasets: c.data.datasets.map("
        "  d => ({label: d.label, data: d.data}))};",
        canvas_id,
    )
    assert data, f"no chart on #{canvas_id}"
    return data


def test_revenue_charts_hold_the_revenue_route_s_periods_per_currency(
    dashboard: AdminPages, live_server: LiveServer
) -> None:
    body = api(live_server, "/api/admin/analytics/revenue?interval=day")
    for currency in ("KRW", "USD"):
        rows = [row for row in body["series"] if row["currency"] == currency]
        drawn = chart(dashboard, f"revenue-chart-{currency}")
        assert drawn["labels"] == [row["period_start"] for row in rows]
        assert drawn["datasets"][0]["data"] == [row["revenue"] for row in rows]
        assert drawn["datasets"][1]["data"] == [row["refunded"] for row in rows]
    krw = chart(dashboard, "revenue-chart-KRW")["datasets"][0]["data"]
    assert sum(krw) == 150000 + 30000 + 30000  # d-4 (40 days ago) is outside the 30 days
    assert len(krw) == 30
    assert "Asia/Seoul" in dashboard.element("range-shown").text


def test_share_hours_and_outcome_charts_hold_the_routes_answers(
    dashboard: AdminPages, live_server: LiveServer
) -> None:
    methods = api(live_server, "/api/admin/analytics/methods")["items"]
    provider = chart(dashboard, "provider-chart")
    shares = dict(zip(provider["labels"], provider["datasets"][0]["data"], strict=True))
    assert shares == {"Toss": 2, "Stripe": 2}  # d-4's completion lies before the range
    assert sum(item["count"] for item in methods) == 4
    hours = api(live_server, "/api/admin/analytics/hours")["cells"]
    per_hour = [sum(c["count"] for c in hours if c["hour"] == hour) for hour in range(24)]
    assert chart(dashboard, "hours-chart")["datasets"][0]["data"] == per_hour
    heat = dashboard.driver.find_elements(By.CSS_SELECTOR, "#heat td[data-count]")
    assert [int(td.get_attribute("data-count") or -1) for td in heat] == [c["count"] for c in hours]
    outcomes = chart(dashboard, "outcomes-chart")["datasets"][0]["data"]
    assert outcomes == [4, 2, 1]  # paid, failed, cancelled; the pending one not counted
    assert dashboard.element("success-rate").text.startswith("57.1 % paid: 4 of 7")
    assert dashboard.table("failures") == [["REJECT_CARD_COMPANY", "1"], ["card_declined", "1"]]


def test_a_range_and_interval_from_the_form_redraw_the_charts(
    dashboard: AdminPages, live_server: LiveServer
) -> None:
    start = (NOW - timedelta(days=60)).date().isoformat()
    dashboard.driver.execute_script("document.getElementById('from').value = arguments[0]", start)
    Select(dashboard.element("interval")).select_by_value("week")
    assert (
        dashboard.click(dashboard.driver.find_element(By.CSS_SELECTOR, "#range button")) == "ready"
    )
    body = api(live_server, f"/api/admin/analytics/revenue?interval=week&from={start}")
    usd = [row for row in body["series"] if row["currency"] == "USD"]
    drawn = chart(dashboard, "revenue-chart-USD")
    assert drawn["labels"] == [row["period_start"] for row in usd]
    assert drawn["datasets"][0]["data"] == [row["revenue"] for row in usd]
    assert sum(drawn["datasets"][1]["data"]) == 1234  # d-4's refund is in the range now
    assert dashboard.element("from").get_attribute("value") == start


def test_the_dashboard_fits_a_phone_and_is_screenshotted(dashboard: AdminPages) -> None:
    with dashboard.viewport(NARROW):
        assert dashboard.sideways_overflow() == 0
        assert dashboard.element("heat").is_displayed()
    dashboard.screenshot("dashboard")
