"""The settlements page as an admin uses it, in headless Chromium against a real server:
statements of an ended month, closing it, recording payouts (CONTRACT.md, "Money owed")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import alert_is_present
from selenium.webdriver.support.ui import Select

from ledger.application import PaymentLedger, PaymentOrder
from tests.browser.conftest import NARROW, AdminPages, LiveServer

ADMIN_TOKEN = "admin-token"
NOV = datetime(2025, 11, 10, 3, 0, tzinfo=UTC)  # a past month: it has ended whenever this runs
PERIOD = "2025-11-01 to 2025-11-30"
# The contract's worked example for t-1 (an individual, default rates); one sale for t-2.
T1 = {"Gross sales": "₩150,000", "Refunds": "₩20,000", "Commission": "₩19,500",
      "VAT": "₩1,950", "Withholding": "₩3,582", "Payout": "₩104,968"}  # fmt: skip
T2_PAYOUT = "₩24,223"  # 30,000 - 4,500 - 450 = 25,050 before tax, 827 withheld


def toss_paid(ledger: PaymentLedger, order_id: str, trainer_id: str, amount: int) -> UUID:
    """A Toss KRW payment completed in November 2025 through the ledger's commands."""
    order = PaymentOrder(
        order_id, f"b-{order_id}", "c-1", "Kim", trainer_id, "2025-11-12", amount, "KRW", "toss"
    )
    payment_id = ledger.initiate(order).payment_id
    ledger.complete(payment_id, f"pk-{order_id}", "card", NOV)
    return payment_id


@pytest.fixture
def seeded(live_server: LiveServer, pages: AdminPages) -> AdminPages:
    ledger: PaymentLedger = live_server.services.ledger
    first = toss_paid(ledger, "o-1", "t-1", 100_000)
    toss_paid(ledger, "o-2", "t-1", 50_000)
    ledger.refund(first, "r-1", 20_000, "customer cancelled", NOV + timedelta(days=1))
    toss_paid(ledger, "o-3", "t-2", 30_000)
    live_server.caught_up()
    assert pages.open("/admin/settlements") == "signed-out"
    assert pages.sign_in(ADMIN_TOKEN) == "ready"
    return pages


def rows_by_trainer(pages: AdminPages) -> dict[str, dict[str, str]]:
    table = pages.element("statements")
    headers = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    return {row[1]: dict(zip(headers, row, strict=True)) for row in pages.table("statements")}


def show_lines(pages: AdminPages, trainer_id: str) -> None:
    button = pages.driver.find_element(
        By.CSS_SELECTOR, f"button[aria-label^='Show lines of {trainer_id},']"
    )
    button.click()
    pages.wait(
        lambda _: pages.element("statement-heading").text.startswith(f"Statement of {trainer_id}")
    )
    assert pages.settled() == "ready"


def confirmed(pages: AdminPages, form_id: str, result_id: str, asks: str) -> str:
    """Submit a form, accept its confirm() dialog, and return what the page says came of it."""
    pages.element(form_id).find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    dialog = pages.wait(alert_is_present())
    question = dialog.text
    dialog.accept()
    pages.wait(lambda _: pages.element(result_id).text != "")
    assert pages.settled() == "ready"
    assert asks in question
    return str(pages.element(result_id).text)


def type_day(pages: AdminPages, element_id: str, day: str) -> None:
    # A date input's typed form follows the browser's locale; its value is always ISO.
    pages.driver.execute_script(
        "arguments[0].value = arguments[1];", pages.element(element_id), day
    )


def close_period(pages: AdminPages, day: str) -> str:
    type_day(pages, "period_end", day)
    return confirmed(pages, "close", "close-result", f"ended on or before {day}?")


def pay(pages: AdminPages, reference: str) -> str:
    pages.element("reference").clear()
    pages.element("reference").send_keys(reference)
    return confirmed(pages, "payout", "payout-result", f"under reference {reference}?")


def test_an_ended_month_is_closed_with_its_withholding_and_paid_once(
    seeded: AdminPages, live_server: LiveServer
) -> None:
    rows = rows_by_trainer(seeded)
    assert set(rows) == {"t-1", "t-2"}
    assert (rows["t-1"]["Period"], rows["t-1"]["Status"]) == (PERIOD, "Open")
    assert {k: rows["t-1"][k] for k in ("Gross sales", "Refunds", "Commission", "VAT")} == {
        k: T1[k] for k in ("Gross sales", "Refunds", "Commission", "VAT")
    }
    assert rows["t-1"]["Payout"] == ""  # not known until it closes

    show_lines(seeded, "t-1")
    assert [row[:5] for row in seeded.table("lines")] == [
        ["Sale", "o-1", "₩100,000", "₩15,000", "₩1,500"],
        ["Sale", "o-2", "₩50,000", "₩7,500", "₩750"],
        ["Refund", "o-1", "₩20,000", "₩3,000", "₩300"],
    ]
    assert seeded.table("lines")[0][5] == "2025-11-10 12:00:00"
    assert not seeded.element("payout").is_displayed()  # an open statement is not paid

    closed = close_period(seeded, "2025-11-30")
    assert closed.startswith("Closed 2: ")
    ids = {s["trainer_id"]: s["statement_id"] for s in statements(live_server)}
    assert set(closed.removeprefix("Closed 2: ").split(", ")) == set(ids.values())
    rows = rows_by_trainer(seeded)
    assert {k: rows["t-1"][k] for k in T1} == T1
    assert (rows["t-1"]["Status"], rows["t-2"]["Payout"]) == ("Closed", T2_PAYOUT)
    assert "Withholding: ₩3,582 · Payout: ₩104,968" in seeded.element("statement-summary").text
    assert close_period(seeded, "2025-11-30") == (
        "No open statement had ended on or before 2025-11-30: nothing was closed."
    )

    assert pay(seeded, "bank-1") == "The statement is paid: ₩104,968 under reference bank-1."
    rows = rows_by_trainer(seeded)
    assert (rows["t-1"]["Status"], rows["t-1"]["Reference"]) == ("Paid", "bank-1")
    assert not seeded.element("payout").is_displayed()

    # Another admin pays t-2 while this page still shows it closed: a second payout under
    # another reference is refused, and the page then shows the statement as it is.
    show_lines(seeded, "t-2")
    assert seeded.element("payout").is_displayed()
    other = httpx.post(
        f"{live_server.url}/api/admin/settlements/{ids['t-2']}/payout",
        json={"reference": "bank-other"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert other.status_code == 200, other.text
    refused = pay(seeded, "bank-2")
    assert refused.startswith("Refused (409 already_paid): ")
    assert "bank-other" in refused
    assert rows_by_trainer(seeded)["t-2"]["Reference"] == "bank-other"
    assert "Paid under reference: bank-other" in seeded.element("statement-summary").text


def test_a_period_that_has_not_ended_is_refused_and_nothing_closes(
    seeded: AdminPages, live_server: LiveServer
) -> None:
    today = datetime.now(UTC).date() + timedelta(days=1)  # not ended in any time zone
    refused = close_period(seeded, today.isoformat())
    assert refused.startswith("Refused (400 period_not_ended): ")
    assert [s["status"] for s in statements(live_server)] == ["open", "open"]
    assert set(seeded.column("statements", "Status")) == {"Open"}


def test_cancelling_the_confirmation_sends_nothing(
    seeded: AdminPages, live_server: LiveServer
) -> None:
    type_day(seeded, "period_end", "2025-11-30")
    seeded.element("close").find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    seeded.wait(alert_is_present()).dismiss()
    assert seeded.settled() == "ready"
    assert seeded.element("close-result").text == "Nothing was sent."
    assert [s["status"] for s in statements(live_server)] == ["open", "open"]


def test_filters_and_previous_next_pages(seeded: AdminPages, browser: WebDriver) -> None:
    seeded.open("/admin/settlements?limit=1")
    first = seeded.column("statements", "Trainer")
    assert len(first) == 1 and not seeded.element("previous-page").is_displayed()
    seeded.element("next-page").click()
    seeded.wait(lambda _: seeded.column("statements", "Trainer") != first)
    second = seeded.column("statements", "Trainer")
    assert sorted(first + second) == ["t-1", "t-2"]
    assert not seeded.element("next-page").is_displayed()
    seeded.element("previous-page").click()
    seeded.wait(lambda _: seeded.column("statements", "Trainer") == first)

    seeded.open("/admin/settlements")
    seeded.element("trainer_id").send_keys("t-2")
    Select(seeded.element("status")).select_by_visible_text("Open")
    type_day(seeded, "period_start", "2025-11-01")
    assert seeded.click(seeded.element("filters").find_element(By.TAG_NAME, "button")) == "ready"
    assert seeded.column("statements", "Trainer") == ["t-2"]
    assert "period_start=2025-11-01" in browser.current_url
    Select(seeded.element("status")).select_by_visible_text("Paid")
    seeded.click(seeded.element("filters").find_element(By.TAG_NAME, "button"))
    assert seeded.table("statements") == [["No statements match these filters."]]


def test_the_other_pages_link_here(seeded: AdminPages, browser: WebDriver) -> None:
    seeded.open("/admin/payments")
    link = browser.find_element(By.LINK_TEXT, "Settlements")
    assert seeded.click(link) == "ready"
    assert browser.current_url.endswith("/admin/settlements")
    assert browser.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]").text == "Settlements"


def statements(server: LiveServer) -> list[dict[str, str]]:
    answer = httpx.get(
        f"{server.url}/api/admin/settlements", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, str]] = answer.json()["items"]
    return items


def test_statements_fit_a_phone_as_cards_with_their_lines(seeded: AdminPages) -> None:
    seeded.open("/admin/settlements")
    show = seeded.driver.find_element(By.XPATH, "//button[starts-with(., 'Show lines')]")
    show.click()
    seeded.wait(lambda _: seeded.table("lines"))
    with seeded.viewport(NARROW):
        assert seeded.sideways_overflow() == 0
        cells = seeded.driver.find_elements(By.CSS_SELECTOR, "#statements tbody td")
        assert all(td.get_attribute("data-label") for td in cells)
    seeded.screenshot("settlements")
