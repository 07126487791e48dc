"""The payments page in headless Chromium over a varied history (both providers, KRW and
USD, every status, refunds, a dispute, a discrepancy): search by each id, date range and
filters, Previous and Next, the CSV export against the API's rows, and the phone layout."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from ledger.application import PaymentLedger, PaymentOrder
from tests.browser.conftest import NARROW, WIDE, AdminPages, LiveServer
from tests.browser.test_admin_pages import ADMIN_TOKEN

NOW = datetime.now(UTC)
# order, provider, currency, amount, customer, what happens
HISTORY = [
    ("p-1", "toss", "KRW", 150000, "김민수", "completed"),
    ("p-2", "stripe", "USD", 4999, "Alex Smith", "partially_refunded"),
    ("p-3", "stripe", "USD", 1234, "Jordan Lee", "refunded"),
    ("p-4", "stripe", "USD", 999, "Sam Park", "failed"),
    ("p-5", "toss", "KRW", 30000, "이서연", "cancelled"),
    ("p-6", "toss", "KRW", 20000, "박지우", "pending"),
    ("p-7", "stripe", "USD", 8000, "Casey Kim", "disputed"),
    ("p-8", "stripe", "USD", 5000, "Robin Choi", "discrepancy"),
]
NEWEST_FIRST = [h[0] for h in reversed(HISTORY)]


def seed(server: LiveServer) -> dict[str, str]:
    """The history above; returns each order's payment id."""
    ledger: PaymentLedger = server.services.ledger
    ids = {}
    for order_id, provider, currency, amount, customer, outcome in HISTORY:
        order = PaymentOrder(order_id, f"bk-{order_id}", "c-1", customer, "t-1", "2026-12-01",
                             amount, currency, provider)  # fmt: skip
        pid = ledger.initiate(order).payment_id
        ids[order_id] = str(pid)
        paid = outcome in ("completed", "partially_refunded", "refunded", "disputed")
        if paid:
            ledger.complete(pid, f"pk-{order_id}", "card", NOW)
        if outcome == "discrepancy":
            ledger.complete(pid, f"pk-{order_id}", "card", NOW, captured_amount=4500,
                            discrepancy_reason="discount")  # fmt: skip
        if outcome in ("partially_refunded", "refunded"):
            ledger.refund(pid, f"r-{order_id}", 1000 if outcome != "refunded" else amount,
                          "asked", NOW)  # fmt: skip
        if outcome == "disputed":
            ledger.open_dispute(pid, "dp_1", amount, "fraudulent", NOW)
        if outcome == "failed":
            ledger.fail(pid, "card_declined", "Your card was declined.", NOW)
        if outcome == "cancelled":
            ledger.cancel(pid, "expired", NOW)
    server.caught_up()
    return ids


@pytest.fixture
def history(live_server: LiveServer, pages: AdminPages) -> dict[str, str]:
    ids = seed(live_server)
    pages.open("/admin/payments")
    assert pages.sign_in(ADMIN_TOKEN) == "ready"
    return ids


def search(pages: AdminPages, text: str) -> list[str]:
    pages.element("q").clear()
    pages.element("q").send_keys(text)
    assert pages.click(pages.element("filters").find_element(By.TAG_NAME, "button")) == "ready"
    if pages.table("payments") == [["No payments match these filters."]]:
        return []
    return pages.column("payments", "Order")


def api_rows(server: LiveServer, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/api/admin/payments?{query}&limit=500",
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_search_finds_a_payment_by_each_of_its_ids_and_its_customer_name(
    history: dict[str, str], pages: AdminPages
) -> None:
    assert search(pages, "p-3") == ["p-3"]  # order id
    assert search(pages, "bk-p-5") == ["p-5"]  # booking id
    assert search(pages, history["p-2"]) == ["p-2"]  # payment id
    assert search(pages, "pk-p-7") == ["p-7"]  # the provider's payment id
    assert search(pages, "민수") == ["p-1"]  # part of a customer's name
    assert search(pages, "nobody-has-this") == []
    assert pages.table("payments") == [["No payments match these filters."]]


def test_filters_and_the_search_stay_in_the_address_and_the_form(
    history: dict[str, str], pages: AdminPages
) -> None:
    Select(pages.element("discrepancy")).select_by_value("true")
    assert pages.click(pages.element("filters").find_element(By.TAG_NAME, "button")) == "ready"
    assert pages.column("payments", "Order") == ["p-8"]
    Select(pages.element("discrepancy")).select_by_value("")
    Select(pages.element("status")).select_by_value("disputed")
    assert pages.click(pages.element("filters").find_element(By.TAG_NAME, "button")) == "ready"
    assert pages.column("payments", "Status") == ["Disputed"]
    assert "status=disputed" in pages.driver.current_url
    # A created-date range that holds nothing, then one that holds everything.
    assert pages.open("/admin/payments?from=2020-01-01&to=2020-01-31") == "ready"
    assert pages.table("payments") == [["No payments match these filters."]]
    today = pages.driver.execute_script("return Admin.today()")
    assert pages.open(f"/admin/payments?from={today}&to={today}") == "ready"
    assert pages.column("payments", "Order") == NEWEST_FIRST
    assert pages.element("from").get_attribute("value") == today


def test_previous_and_next_walk_the_pages_both_ways(
    history: dict[str, str], pages: AdminPages
) -> None:
    assert pages.open("/admin/payments?limit=3") == "ready"
    seen = [pages.column("payments", "Order")]
    while pages.element("next-page").is_displayed():
        assert pages.click(pages.element("next-page")) == "ready"
        seen.append(pages.column("payments", "Order"))
    assert seen == [NEWEST_FIRST[0:3], NEWEST_FIRST[3:6], NEWEST_FIRST[6:8]]
    back = []
    while pages.element("previous-page").is_displayed():
        assert pages.click(pages.element("previous-page")) == "ready"
        back.append(pages.column("payments", "Order"))
    assert back == [NEWEST_FIRST[3:6], NEWEST_FIRST[0:3]]


def test_details_behind_a_row_show_what_the_columns_leave_out(
    history: dict[str, str], pages: AdminPages
) -> None:
    button = pages.driver.find_element(By.CSS_SELECTOR, "button[aria-label='Details of p-8']")
    details = pages.driver.find_element(By.XPATH, "//button[@aria-label='Details of p-8']"
                                        "/ancestor::tr/following-sibling::tr[1]")  # fmt: skip
    assert not details.is_displayed()
    button.send_keys("\n")  # the keyboard opens it
    assert details.is_displayed() and button.get_attribute("aria-expanded") == "true"
    assert "ordered $50.00, captured $45.00: discount" in details.text
    assert history["p-8"] in details.text and "pk-p-8" in details.text


def test_amounts_are_for_people_and_right_aligned(
    history: dict[str, str], pages: AdminPages
) -> None:
    amounts = dict(zip(pages.column("payments", "Order"), pages.column("payments", "Amount"),
                       strict=True))  # fmt: skip
    assert (amounts["p-1"], amounts["p-2"], amounts["p-8"]) == ("₩150,000", "$49.99", "$45.00")
    cell = pages.driver.find_element(By.CSS_SELECTOR, "#payments tbody td.amount")
    assert cell.value_of_css_property("text-align") == "right"


def downloaded(folder: Path, name: str) -> str:
    path = folder / name
    for _ in range(200):  # the download is written by the browser, after the click
        if path.exists() and not (folder / f"{name}.crdownload").exists():
            return path.read_text(encoding="utf-8")
        time.sleep(0.05)
    raise AssertionError(f"{name} was not downloaded")


def test_the_csv_export_holds_the_api_s_rows_for_the_filters(
    history: dict[str, str], pages: AdminPages, live_server: LiveServer,
    browser: WebDriver, tmp_path: Path,
) -> None:  # fmt: skip
    browser.execute_cdp_cmd("Page.setDownloadBehavior",
                            {"behavior": "allow", "downloadPath": str(tmp_path)})  # fmt: skip
    assert pages.open("/admin/payments?provider=stripe") == "ready"
    pages.element("export").click()
    rows = list(csv.DictReader(io.StringIO(downloaded(tmp_path, "payments.csv"))))
    expected = api_rows(live_server, "provider=stripe")
    assert [r["order_id"] for r in rows] == [p["order_id"] for p in expected]
    assert [int(r["amount"]) for r in rows] == [p["amount"] for p in expected]
    assert [r["status"] for r in rows] == [p["status"] for p in expected]
    assert pages.element("export-status").text == "Exported payments.csv."


def test_at_phone_width_every_column_is_shown_without_sideways_scrolling(
    history: dict[str, str], pages: AdminPages
) -> None:
    with pages.viewport(NARROW):
        assert pages.sideways_overflow() == 0
        first = pages.driver.find_element(By.CSS_SELECTOR, "#payments tbody tr")
        labels = [td.get_attribute("data-label") for td in first.find_elements(By.TAG_NAME, "td")]
        headings = [th.get_attribute("textContent") for th in
                    pages.driver.find_elements(By.CSS_SELECTOR, "#payments thead th")]  # fmt: skip
        assert labels == headings
        assert all(td.is_displayed() for td in first.find_elements(By.TAG_NAME, "td"))
    with pages.viewport(WIDE):
        assert pages.sideways_overflow() == 0  # 1400 px: every column fits
    pages.screenshot("payments")
