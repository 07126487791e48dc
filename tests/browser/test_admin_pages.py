"""The admin pages as a person uses them, in headless Chromium against a real server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from ledger.application import PaymentLedger, PaymentOrder
from ledger.notification import TrainerNotification
from tests.browser.conftest import AdminPages, LiveServer, serve
from tests.conftest import make_settings

ADMIN_TOKEN, AUDITOR_TOKEN = "admin-token", "auditor-token"
# (order, booking, trainer, provider, currency, amount, outcome), created in this order.
PAYMENTS = [
    ("o-1", "bk-1", "t-1", "toss", "KRW", 150000, "completed"),
    ("o-2", "bk-2", "t-2", "stripe", "USD", 5000, "partially_refunded"),  # 1266 refunded
    ("o-3", "bk-3", "t-1", "stripe", "USD", 1234, "completed"),
    ("o-4", "bk-4", "t-2", "stripe", "USD", 999, "failed"),
    ("o-5", "bk-5", "t-1", "toss", "KRW", 30000, "cancelled"),
    ("o-6", "bk-6", "t-2", "toss", "KRW", 20000, "pending"),
]
NEWEST_FIRST = [p[0] for p in reversed(PAYMENTS)]
# Net of refunds: 150,000 KRW; 5000 - 1266 + 1234 = 4968 US cents.
REVENUE = {"KRW": "₩150,000", "USD": "$49.68"}


def seed(server: LiveServer) -> None:
    """The payments above, completed now; the trainer of bk-1 has read their notification."""
    ledger: PaymentLedger = server.services.ledger
    now = datetime.now(UTC)
    for order_id, booking, trainer, provider, currency, amount, outcome in PAYMENTS:
        order = PaymentOrder(
            order_id=order_id, booking_id=booking, customer_id="c",
            customer_name=f"Customer {order_id}", trainer_id=trainer, booking_date="2026-12-01",
            amount=amount, currency=currency, provider=provider,
        )  # fmt: skip
        pid = ledger.initiate(order).payment_id
        if outcome in ("completed", "partially_refunded"):
            ledger.complete(pid, f"pk-{order_id}", "card", now)
        if outcome == "partially_refunded":
            ledger.refund(pid, f"r-{order_id}", 1266, "changed plans", now)
        if outcome == "failed":
            ledger.fail(pid, "card_declined", "Your card was declined.", now)
        if outcome == "cancelled":
            ledger.cancel(pid, "expired", now)
        if booking == "bk-1":
            notification = TrainerNotification.create_id(pid, "payment_completed")
            ledger.mark_notification_read(notification, trainer)
    server.caught_up()


@pytest.fixture
def seeded(live_server: LiveServer, pages: AdminPages) -> AdminPages:
    seed(live_server)
    return pages


def test_dashboard_asks_for_a_token_then_shows_the_seeded_revenue_and_counts(
    seeded: AdminPages, live_server: LiveServer
) -> None:
    stats = httpx.get(
        f"{live_server.url}/api/admin/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert stats.status_code == 200, stats.text
    assert seeded.open("/admin/dashboard") == "signed-out"
    assert seeded.element("sign-in").is_displayed()
    assert not seeded.element("content").is_displayed()

    assert seeded.sign_in(ADMIN_TOKEN) == "ready"
    # Completed just now: the total, this month and today are the same amounts.
    assert seeded.table("revenue") == [
        ["KRW", REVENUE["KRW"], REVENUE["KRW"], REVENUE["KRW"]],
        ["USD", REVENUE["USD"], REVENUE["USD"], REVENUE["USD"]],
    ]
    counts = {label: count for label, count in seeded.table("status-counts")}
    assert (counts["Pending"], counts["Failed"], counts["Cancelled"]) == ("1", "1", "1")
    # What the API counts (its rules, e.g. for partly refunded payments) is what is shown.
    assert counts["Completed"] == str(stats.json()["completed_count"])
    providers = {row[0]: row[2] for row in seeded.table("providers")}
    assert providers == {"Toss": REVENUE["KRW"], "Stripe": REVENUE["USD"]}


def test_failed_or_cancelled_filter_shows_exactly_those_payments(seeded: AdminPages) -> None:
    seeded.open("/admin/payments")
    assert seeded.sign_in(AUDITOR_TOKEN) == "ready"  # auditors may read too
    assert seeded.column("payments", "Order") == NEWEST_FIRST

    Select(seeded.element("status")).select_by_visible_text("Failed or cancelled")
    assert seeded.click(seeded.element("filters").find_element(By.TAG_NAME, "button")) == "ready"

    assert seeded.column("payments", "Order") == ["o-5", "o-4"]
    assert seeded.column("payments", "Status") == ["Cancelled", "Failed"]
    assert seeded.column("payments", "Failure")[1] == "card_declined"
    assert seeded.column("payments", "Amount") == ["₩30,000", "$9.99"]
    # The filter stays chosen on the filtered page.
    assert Select(seeded.element("status")).first_selected_option.text == "Failed or cancelled"


def test_next_page_shows_the_following_payments_until_there_are_no_more(
    seeded: AdminPages,
) -> None:
    seeded.open("/admin/payments?limit=2")
    seeded.sign_in(ADMIN_TOKEN)
    seen = [seeded.column("payments", "Order")]
    while seeded.element("next-page").is_displayed():
        assert seeded.click(seeded.element("next-page")) == "ready"
        seen.append(seeded.column("payments", "Order"))
    assert seen == [NEWEST_FIRST[0:2], NEWEST_FIRST[2:4], NEWEST_FIRST[4:6]]
    assert seeded.element("first-page").is_displayed()


def test_booking_link_opens_its_payments_and_whether_the_trainer_read_the_notification(
    seeded: AdminPages, browser: WebDriver
) -> None:
    seeded.open("/admin/payments")
    seeded.sign_in(ADMIN_TOKEN)
    assert seeded.click(browser.find_element(By.LINK_TEXT, "bk-1")) == "ready"

    assert browser.current_url.endswith("/admin/bookings/bk-1")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Booking bk-1"
    assert seeded.column("payments", "Order") == ["o-1"]
    assert seeded.column("payments", "Status") == ["Completed"]
    [notification] = seeded.table("notifications")
    assert notification[1:] == [
        "New booking paid",
        "Customer o-1 paid 150,000 KRW for the session on 2026-12-01.",
        "Read",
    ]
    assert seeded.element("notified").text == "The trainer was sent 1 notification and has read it."

    # What the outbox did: no channel is configured on this server, and it says so.
    [message] = seeded.table("messages")
    assert message[1:6] == ["Payment completed", "trainer:t-1", *["Skipped: not_configured"] * 3]

    assert seeded.open("/admin/bookings/bk-2") == "ready"  # still signed in in this tab
    # Told of the sale and of the partial refund; neither read yet.
    assert seeded.column("notifications", "Title") == [
        "New booking paid",
        "Payment partly refunded",
    ]
    assert seeded.column("notifications", "Read by the trainer") == ["Unread", "Unread"]
    assert "2 not read yet" in seeded.element("notified").text
    assert seeded.column("payments", "Refunded") == ["$12.66"]
    told = zip(seeded.column("messages", "Message"), seeded.column("messages", "To"), strict=True)
    assert sorted(told) == [
        ("Payment completed", "trainer:t-2"),
        ("Refunded in part", "customer:c"),
        ("Refunded in part", "trainer:t-2"),
    ]


def test_a_message_is_resent_from_the_booking_page(
    seeded: AdminPages, browser: WebDriver, live_server: LiveServer
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    [message] = httpx.get(f"{live_server.url}/api/admin/bookings/bk-1", headers=headers).json()[
        "messages"
    ]
    detail_url = f"{live_server.url}/api/admin/notifications/{message['message_id']}"

    def attempts() -> list[int]:
        detail = httpx.get(detail_url, headers=headers).json()
        return [len(d["attempt_log"]) for d in detail["deliveries"]]

    before = attempts()
    seeded.open("/admin/bookings/bk-1")
    seeded.sign_in(ADMIN_TOKEN)
    button = seeded.element("messages").find_element(By.TAG_NAME, "button")
    assert button.get_attribute("aria-label") == "Resend Payment completed to trainer:t-1"
    button.click()
    seeded.wait(lambda _: button.text == "Queued")
    # Each channel tried once more (and skipped again: none is configured on this server).
    seeded.wait(lambda _: attempts() == [n + 1 for n in before])


def test_a_booking_without_payments_says_so(pages: AdminPages) -> None:
    pages.open("/admin/bookings/nope")
    assert pages.sign_in(ADMIN_TOKEN) == "error"
    assert pages.message() == "There are no payments for booking nope."


def test_a_wrong_token_is_refused_and_the_sign_in_form_comes_back(pages: AdminPages) -> None:
    pages.open("/admin/payments")
    assert pages.sign_in("not-the-token") == "signed-out"
    assert pages.message().startswith("Unauthorized: that token was not accepted (401).")
    assert pages.element("sign-in").is_displayed()
    assert not pages.element("content").is_displayed()


def test_sign_out_forgets_the_token(pages: AdminPages) -> None:
    pages.open("/admin/payments")
    assert pages.sign_in(ADMIN_TOKEN) == "ready"
    pages.element("sign-out").click()
    assert pages.message() == "You are signed out."
    assert pages.open("/admin/bookings/bk-1") == "signed-out"


def test_pages_say_when_admin_access_is_not_configured_on_the_server(
    browser: WebDriver, database_url: str, fake: Any
) -> None:
    with serve(make_settings(database_url, fake, admin_token=None)) as server:
        pages = AdminPages(browser, server.url)
        pages.open("/admin/payments")
        assert pages.sign_in(ADMIN_TOKEN) == "error"
        assert pages.message() == (
            "Admin access is not configured on the server: LEDGER_ADMIN_TOKEN is not set."
        )


def test_amounts_are_shown_from_integer_minor_units_per_currency(
    pages: AdminPages, browser: WebDriver
) -> None:
    pages.open("/admin/dashboard")
    cases = [(15000, "KRW"), (1234, "USD"), (5, "USD"), (-1266, "USD"), (1234567, "BHD")]
    shown = browser.execute_script(
        "return arguments[0].map(([minor, currency]) => Admin.money(minor, currency));", cases
    )
    assert shown == ["₩15,000", "$12.34", "$0.05", "-$12.66", "1,234.567 BHD"]


def test_pages_allow_only_their_own_scripts(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/admin/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "admin-token" not in page.text  # a shell: no secret is rendered into it
    assert httpx.get(f"{live_server.url}/admin/static/../router.py").status_code == 404
