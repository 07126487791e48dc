"""The booking page in headless Chromium: a refund made from it (typed as people write
amounts, confirmed first, one refund however often it is sent), the provider's refusal, the
timeline of every event, and the phone layout. Payments are made through the API against
the fake providers, so the refunds go to Toss and Stripe for real."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.api.test_checkout import payment_body, stripe_body
from tests.browser.conftest import NARROW, WIDE, AdminPages, LiveServer
from tests.browser.test_admin_pages import ADMIN_TOKEN, AUDITOR_TOKEN
from tests.fake_providers import FakeProviders

BOOKING = "booking-77"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{server.url}{path}", headers=ADMIN, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def paid(live_server: LiveServer, fake: FakeProviders) -> dict[str, str]:
    """A Toss payment of ₩55,000 and a Stripe payment of $42.00 for one booking."""
    toss = api(live_server, "POST", "/api/payments", json=payment_body())
    confirm = {"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000}
    api(live_server, "POST", "/api/payments/toss/confirm", json=confirm)
    stripe = api(live_server, "POST", "/api/payments", json=stripe_body())
    fake.stripe_session("cs_1", "order-s1", 4200, "usd", payment_intent="pi_1")
    api(live_server, "POST", "/api/payments/stripe/confirm", json={"session_id": "cs_1"})
    live_server.caught_up()
    return {"toss": toss["payment_id"], "stripe": stripe["payment_id"]}


def open_booking(pages: AdminPages, token: str = ADMIN_TOKEN) -> None:
    if pages.open(f"/admin/bookings/{BOOKING}") == "ready":  # signed in with another token
        pages.element("sign-out").click()
    assert pages.sign_in(token) == "ready"


def fill_refund(pages: AdminPages, order_id: str, amount: str, reason: str) -> None:
    select = Select(pages.element("refund-payment"))
    select.select_by_visible_text(next(o.text for o in select.options if order_id in o.text))
    for field, value in (("refund-amount", amount), ("refund-reason", reason)):
        pages.element(field).clear()
        pages.element(field).send_keys(value)


def answer_confirm(pages: AdminPages, accept: bool = True) -> str:
    """Answer the page's confirm() dialog and return what it asked."""
    alert = pages.wait(lambda d: _alert(d))
    question: str = alert.text
    alert.accept() if accept else alert.dismiss()
    return question


def _alert(driver: Any) -> Any:
    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def refund_result(pages: AdminPages, done: Callable[[str], bool] | None = None) -> str:
    """What the page says came of the refund, once it has said something final."""
    finished = done or (lambda text: bool(text) and text != "Asking the provider…")
    text: str = pages.wait(
        lambda _: (t := pages.element("refund-result").text) and finished(t) and t
    )
    pages.settled()
    return text


def submit_refund(pages: AdminPages) -> None:
    pages.element("refund").find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_a_refund_from_the_booking_page_shows_in_its_tables_the_payments_page_and_the_statement(
    paid: dict[str, str], pages: AdminPages, live_server: LiveServer, fake: FakeProviders
) -> None:
    open_booking(pages)
    fill_refund(pages, "order-s1", "12.5", "session moved")
    submit_refund(pages)
    asked = answer_confirm(pages)
    assert asked.startswith("Refund $12.50 of order order-s1 to the customer through Stripe?")
    assert refund_result(pages).startswith("Refunded $12.50 on order order-s1 (re_")
    assert [r["amount"] for r in fake.stripe_refunds()] == [1250]  # exact: 12.5 USD is 1250
    assert pages.column("payments", "Refunded") == ["", "$12.50"]
    assert pages.column("payments", "Status") == ["Completed", "Partially refunded"]
    events = [row[1:4] for row in pages.table("timeline")]
    assert events[-1][:2] == ["order-s1", "Refunded"]
    assert events[-1][2].startswith("$12.50 back: session moved (refund re_")
    # Elsewhere too: the payments page and the trainer's statement count it.
    pages.open("/admin/payments?provider=stripe")
    assert pages.column("payments", "Refunded") == ["$12.50"]
    statements = api(live_server, "GET", "/api/admin/settlements?trainer_id=trainer-9")["items"]
    [summary] = [s for s in statements if s["currency"] == "USD"]
    lines = api(live_server, "GET", f"/api/admin/settlements/{summary['statement_id']}")["lines"]
    assert [(line["kind"], line["amount"]) for line in lines] == [("sale", 4200), ("refund", 1250)]


def test_a_refund_sent_twice_or_retried_after_a_lost_answer_refunds_once(
    paid: dict[str, str], pages: AdminPages, fake: FakeProviders
) -> None:
    open_booking(pages)
    fill_refund(pages, "order-1001", "₩10,000", "rained out")
    fake.toss_lose_next_answer(status=500)  # Toss cancels, but its answer never arrives
    submit_refund(pages)
    answer_confirm(pages)
    said = refund_result(pages)
    assert said.startswith("The provider did not answer (502 provider_unavailable")
    assert "is safe" in said
    submit_refund(pages)  # the same refund again: same Idempotency-Key
    answer_confirm(pages)
    assert refund_result(pages).startswith("Refunded ₩10,000 on order order-1001")
    assert len(fake.toss_get("tpk_1")["cancels"]) == 1
    assert pages.column("payments", "Refunded") == ["₩10,000", ""]
    # Two clicks before the first answer: one request, one refund.
    fill_refund(pages, "order-1001", "5000", "double click")
    pages.driver.execute_script(
        "window.confirm = () => true;"  # both clicks run before any dialog could be answered
        "const b = document.querySelector('#refund button[type=submit]'); b.click(); b.click();"
    )
    assert refund_result(pages).startswith("Refunded ₩5,000")
    assert [c["cancelAmount"] for c in fake.toss_get("tpk_1")["cancels"]] == [10000, 5000]


REFUSED_HERE = [
    ("12.345", 'USD has 2 decimals: "12.345" is not an amount of it.'),
    ("42.01", "Only $42.00 is left to refund on order order-s1."),
    ("0", "A refund must be more than nothing."),
    ("ten", '"ten" is not an amount of USD.'),
]


def test_an_amount_the_ledger_would_refuse_is_explained_and_nothing_is_sent(
    paid: dict[str, str], pages: AdminPages, fake: FakeProviders
) -> None:
    open_booking(pages)
    for amount, said in REFUSED_HERE:
        fill_refund(pages, "order-s1", amount, "typo")
        submit_refund(pages)
        assert pages.wait(lambda _, said=said: pages.element("refund-result").text == said)
    assert fake.stripe_refunds() == []


def test_dismissing_the_confirmation_refunds_nothing(
    paid: dict[str, str], pages: AdminPages, fake: FakeProviders
) -> None:
    open_booking(pages)
    fill_refund(pages, "order-s1", "", "changed my mind")
    submit_refund(pages)
    assert "Refund $42.00 of order order-s1" in answer_confirm(pages, accept=False)
    assert pages.element("refund-result").text == "Nothing was refunded."
    assert fake.stripe_refunds() == []


def test_the_providers_refusal_and_the_auditors_are_shown(
    paid: dict[str, str], pages: AdminPages, live_server: LiveServer, fake: FakeProviders
) -> None:
    # Toss refunded ₩50,000 elsewhere; the page still thinks ₩55,000 is left, Toss says no.
    fake.toss_set_status("tpk_1", "PARTIAL_CANCELED", cancels=[{"cancelAmount": 50000}])
    open_booking(pages)
    fill_refund(pages, "order-1001", "10000", "too much")
    submit_refund(pages)
    answer_confirm(pages)
    assert refund_result(pages) == (
        "Toss refused the refund (NOT_CANCELABLE_AMOUNT): 취소 할 수 없는 금액 입니다."
    )
    open_booking(pages, AUDITOR_TOKEN)
    fill_refund(pages, "order-s1", "1", "not mine to give")
    submit_refund(pages)
    answer_confirm(pages)
    assert refund_result(pages) == "Refused: refunds need the admin token (this one may only read)."


def test_the_timeline_tells_every_event_of_the_bookings_payments_in_order(
    paid: dict[str, str], pages: AdminPages, live_server: LiveServer
) -> None:
    open_booking(pages)
    rows = pages.table("timeline")
    assert [row[1:3] for row in rows] == [
        ["order-1001", "Checkout started"], ["order-1001", "Paid"],
        ["order-s1", "Checkout started"], ["order-s1", "Paid"],
    ]  # fmt: skip
    assert rows[0][3] == "₩55,000 through Toss for the session of 2026-12-03, by 김민지"
    positions = [int(row[4]) for row in rows]
    history = api(live_server, "GET", f"/api/audit/payments/{paid['toss']}/history")["events"]
    assert positions[:2] == [e["position"] for e in history]
    assert positions == sorted(positions)


def test_the_booking_page_fits_a_desktop_and_a_phone_scrolling_only_down(
    paid: dict[str, str], pages: AdminPages
) -> None:
    open_booking(pages)
    assert pages.element("booking-summary").text == "Trainer trainer-9 · session 2026-12-03"
    with pages.viewport(WIDE):
        assert pages.sideways_overflow() == 0
    with pages.viewport(NARROW):
        assert pages.sideways_overflow() == 0
        assert pages.element("refund-payment").is_displayed()
    pages.screenshot("booking")


def test_a_refund_can_be_made_with_the_keyboard_alone(
    paid: dict[str, str], pages: AdminPages, fake: FakeProviders
) -> None:
    open_booking(pages)
    # Tab from the amount to the reason, Enter submits the form.
    pages.element("refund-amount").send_keys("1000", Keys.TAB, "by keyboard", Keys.ENTER)
    assert answer_confirm(pages).startswith("Refund ₩1,000 of order order-1001")
    assert refund_result(pages).startswith("Refunded ₩1,000 on order order-1001")
    assert [c["cancelAmount"] for c in fake.toss_get("tpk_1")["cancels"]] == [1000]
