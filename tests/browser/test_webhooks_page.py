"""The webhook inbox page in headless Chromium over deliveries from both providers, posted
over HTTP as the providers send them (Stripe signed), with varied outcomes: the table against
the API's items, filters in the address, Previous and Next, a delivery's record and raw body,
replay (confirmed first; refused to the auditor), and the phone layout."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium.webdriver.common.alert import Alert
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import alert_is_present
from selenium.webdriver.support.ui import Select

from tests.api.test_checkout import payment_body, stripe_body
from tests.api.test_webhooks_stripe import session, signed
from tests.browser.conftest import NARROW, WIDE, AdminPages, LiveServer
from tests.browser.test_admin_pages import ADMIN_TOKEN, AUDITOR_TOKEN
from tests.fake_providers import FakeProviders
from tests.inbox import ADMIN, WAITING
from tests.live import until

TOSS_KEY = "tpk_1"
# Newest first, as the page lists them: (name, provider, outcome).
EXPECTED = [
    ("toss_other", "toss", "ignored"),
    ("toss_again", "toss", "duplicate"),  # Toss's retry, under its transmission id
    ("toss_done", "toss", "applied"),
    ("stripe_other", "stripe", "ignored"),
    ("stripe_late", "stripe", "rejected"),  # expiry after the completion: recorded only
    ("stripe_paid", "stripe", "applied"),
]


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event_id: str
    body: bytes  # as posted


def stored(server: LiveServer, delivery_id: str) -> dict[str, Any]:
    row = httpx.get(f"{server.url}/api/admin/webhooks/{delivery_id}", headers=ADMIN)
    assert row.status_code == 200, row.text
    found: dict[str, Any] = row.json()
    return found


def post(server: LiveServer, provider: str, body: bytes, headers: dict[str, str]) -> Delivery:
    """Post one delivery and wait until the inbox has applied it."""
    answer = httpx.post(f"{server.url}/api/webhooks/{provider}", content=body,
                        headers={"content-type": "application/json", **headers})  # fmt: skip
    assert answer.status_code == 200, answer.text
    delivery = answer.json()["delivery_id"]
    until(lambda: stored(server, delivery)["outcome"] not in WAITING, f"{delivery} applied")
    return Delivery(delivery, stored(server, delivery)["event_id"], body)


def stripe(
    server: LiveServer, fake: FakeProviders, event_type: str, obj: dict[str, Any], event_id: str
) -> Delivery:
    payload = fake.stripe_event(event_type, obj, event_id)
    return post(server, "stripe", payload, signed(fake, payload))


def seed(server: LiveServer, fake: FakeProviders) -> dict[str, Delivery]:
    """A Stripe and a Toss payment, then the deliveries of EXPECTED, oldest first."""
    for body in (stripe_body(), payment_body()):
        assert httpx.post(f"{server.url}/api/payments", json=body).status_code == 201
    # One at a time: each event's session is what the fake Stripe holds while it is applied.
    sent = {"stripe_paid": stripe(server, fake, "checkout.session.completed", session(fake),
                                  "evt_paid")}  # fmt: skip
    expired = session(fake, payment_status="unpaid", status="expired")
    sent["stripe_late"] = stripe(server, fake, "checkout.session.expired", expired, "evt_late")
    customer = {"id": "cus_1", "object": "customer"}
    sent["stripe_other"] = stripe(server, fake, "customer.created", customer, "evt_other")
    fake.toss_payment(TOSS_KEY, "order-1001", 55000, status="DONE")
    done = fake.toss_webhook_body(TOSS_KEY)
    sent["toss_done"] = post(server, "toss", done, {})
    retried = {"tosspayments-webhook-transmission-id": "tx-1"}
    sent["toss_again"] = post(server, "toss", fake.toss_webhook_body(TOSS_KEY), retried)
    # A number no double holds exactly (2**53 + 1): a pretty-printed copy would change it.
    other = {"eventType": "METHOD_UPDATED", "createdAt": "2026-11-25T12:00:00.000000",
             "data": {"sequence": 9007199254740993}}  # fmt: skip
    sent["toss_other"] = post(server, "toss", json.dumps(other).encode(), {})
    return sent


@pytest.fixture
def inbox(live_server: LiveServer, pages: AdminPages, fake: FakeProviders) -> dict[str, Delivery]:
    sent = seed(live_server, fake)
    pages.open("/admin/webhooks")
    assert pages.sign_in(ADMIN_TOKEN) == "ready"
    return sent


def api_items(server: LiveServer, query: str = "") -> list[dict[str, Any]]:
    page = httpx.get(f"{server.url}/api/admin/webhooks?limit=500&{query}", headers=ADMIN)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def show(pages: AdminPages, **filters: str) -> list[str]:
    """Choose the filters in the form, submit it, and return the rows' event ids."""
    for name, value in filters.items():
        Select(pages.element(name)).select_by_value(value)
    assert pages.click(pages.element("filters").find_element(By.TAG_NAME, "button")) == "ready"
    if pages.table("deliveries") == [["No deliveries match these filters."]]:
        return []
    return pages.column("deliveries", "Event id")


def row_button(pages: AdminPages, label: str) -> WebElement:
    return pages.driver.find_element(By.CSS_SELECTOR, f"button[aria-label='{label}']")


def details_of(pages: AdminPages, event_id: str) -> WebElement:
    return pages.driver.find_element(By.XPATH, f"//button[@aria-label='Details of {event_id}']"
                                     "/ancestor::tr/following-sibling::tr[1]")  # fmt: skip


def open_details(pages: AdminPages, event_id: str) -> WebElement:
    row_button(pages, f"Details of {event_id}").send_keys("\n")  # the keyboard opens it
    assert pages.settled() == "ready"
    return details_of(pages, event_id)


def replay(pages: AdminPages, event_id: str, accept: bool) -> str:
    """Press Replay, answer its confirm(), and return what the page then says."""
    row_button(pages, f"Replay {event_id}").click()
    alert: Alert = pages.wait(alert_is_present())
    assert event_id in alert.text
    if accept:
        alert.accept()
    else:
        alert.dismiss()
    assert pages.settled() == "ready"
    return pages.element("action-result").text


def test_the_table_shows_each_delivery_as_the_api_lists_it(
    inbox: dict[str, Delivery], pages: AdminPages, live_server: LiveServer
) -> None:
    items = api_items(live_server)
    assert [i["event_id"] for i in items] == [inbox[name].event_id for name, _, _ in EXPECTED]
    assert pages.column("deliveries", "Event id") == [i["event_id"] for i in items]
    assert pages.column("deliveries", "Outcome") == [outcome for _, _, outcome in EXPECTED]
    assert pages.column("deliveries", "Provider") == ["Toss"] * 3 + ["Stripe"] * 3
    assert pages.column("deliveries", "Type")[2:4] == ["PAYMENT_STATUS_CHANGED", "customer.created"]
    assert pages.column("deliveries", "Attempts") == ["1"] * 6
    zone = ZoneInfo(live_server.services.settings.timezone)
    local = [datetime.fromisoformat(i["received_at"]).astimezone(zone) for i in items]
    assert pages.column("deliveries", "Received") == [f"{t:%Y-%m-%d %H:%M:%S}" for t in local]
    paid = row_button(pages, "Details of evt_paid").find_element(By.XPATH, "ancestor::tr")
    payment = paid.find_element(By.CSS_SELECTOR, "a[aria-label^='Payment ']")
    assert payment.get_attribute("title") == items[-1]["payment_id"]


def test_filters_stay_in_the_address_and_survive_a_reload(
    inbox: dict[str, Delivery], pages: AdminPages
) -> None:
    assert show(pages, outcome="ignored") == [inbox["toss_other"].event_id, "evt_other"]
    assert "outcome=ignored" in pages.driver.current_url
    assert show(pages, provider="toss") == [inbox["toss_other"].event_id]
    assert pages.open(pages.driver.current_url.removeprefix(pages.base_url)) == "ready"
    assert pages.element("provider").get_attribute("value") == "toss"
    assert pages.element("outcome").get_attribute("value") == "ignored"
    assert pages.column("deliveries", "Event id") == [inbox["toss_other"].event_id]
    assert show(pages, provider="stripe", outcome="") == ["evt_other", "evt_late", "evt_paid"]
    assert set(pages.column("deliveries", "Provider")) == {"Stripe"}
    assert show(pages, provider="", outcome="duplicate") == ["tx-1"]
    assert show(pages, outcome="parked") == []


def test_previous_and_next_walk_the_pages_both_ways(
    inbox: dict[str, Delivery], pages: AdminPages
) -> None:
    newest_first = [inbox[name].event_id for name, _, _ in EXPECTED]
    assert pages.open("/admin/webhooks?limit=1") == "ready"  # more pages than one step back
    seen = pages.column("deliveries", "Event id")
    while pages.element("next-page").is_displayed():
        assert pages.click(pages.element("next-page")) == "ready"
        seen += pages.column("deliveries", "Event id")
    assert seen == newest_first
    back = []
    while pages.element("previous-page").is_displayed():
        assert pages.click(pages.element("previous-page")) == "ready"
        back += pages.column("deliveries", "Event id")
    assert back == newest_first[-2::-1]


def test_details_show_the_whole_record_and_the_raw_body_as_posted(
    inbox: dict[str, Delivery], pages: AdminPages, live_server: LiveServer
) -> None:
    for name in ("stripe_paid", "toss_done"):
        sent = inbox[name]
        details = open_details(pages, sent.event_id)
        assert details.is_displayed()
        button = row_button(pages, f"Details of {sent.event_id}")
        assert button.get_attribute("aria-expanded") == "true"
        record = stored(live_server, sent.delivery_id)
        for value in (sent.delivery_id, record["payment_id"], str(record["position"])):
            assert value in details.text
        body = details.find_element(By.CSS_SELECTOR, "pre").get_attribute("textContent") or ""
        assert json.loads(body) == json.loads(sent.body)  # what the provider posted
        assert body == json.dumps(json.loads(sent.body), indent=2, ensure_ascii=False)
    other = inbox["toss_other"]
    pre = open_details(pages, other.event_id).find_element(By.CSS_SELECTOR, "pre")
    assert pre.get_attribute("textContent") == other.body.decode()  # shown as it came
    open_details(pages, "evt_paid")  # and closes again
    assert not details_of(pages, "evt_paid").is_displayed()


def test_replay_asks_first_and_an_applied_delivery_replays_as_a_duplicate(
    inbox: dict[str, Delivery], pages: AdminPages, live_server: LiveServer
) -> None:
    paid = inbox["stripe_paid"].delivery_id
    assert replay(pages, "evt_paid", accept=False) == "Nothing was sent."
    assert stored(live_server, paid)["attempts"] == 1  # dismissed: no request
    said = replay(pages, "evt_paid", accept=True)
    assert said == "Replayed evt_paid: duplicate, attempt 2."
    after = stored(live_server, paid)
    assert (after["outcome"], after["attempts"]) == ("duplicate", 2)
    assert pages.column("deliveries", "Outcome")[-1] == "duplicate"
    assert pages.column("deliveries", "Attempts")[-1] == "2"
    focused = pages.driver.switch_to.active_element
    assert focused.get_attribute("aria-label") == "Replay evt_paid"  # the keyboard stays put


def test_the_auditor_reads_the_inbox_but_its_replay_is_refused_with_a_message(
    inbox: dict[str, Delivery], pages: AdminPages, live_server: LiveServer
) -> None:
    pages.element("sign-out").click()
    assert pages.sign_in(AUDITOR_TOKEN) == "ready"
    assert pages.column("deliveries", "Outcome") == [outcome for _, _, outcome in EXPECTED]
    said = replay(pages, "evt_paid", accept=True)
    assert said == "Refused (403 forbidden): admin role required"
    assert pages.element("action-result").get_attribute("data-kind") == "error"
    assert pages.element("deliveries").is_displayed()  # still signed in, still reading
    assert stored(live_server, inbox["stripe_paid"].delivery_id)["attempts"] == 1


def test_at_phone_width_details_and_raw_bodies_wrap_without_sideways_scrolling(
    inbox: dict[str, Delivery], pages: AdminPages
) -> None:
    with pages.viewport(NARROW):
        for name in ("stripe_paid", "toss_done"):
            details = open_details(pages, inbox[name].event_id)
            assert details.find_element(By.CSS_SELECTOR, "pre").is_displayed()
        assert pages.sideways_overflow() == 0
        first = pages.driver.find_element(By.CSS_SELECTOR, "#deliveries tbody tr")
        labels = [td.get_attribute("data-label") for td in first.find_elements(By.TAG_NAME, "td")]
        heads = pages.driver.find_elements(By.CSS_SELECTOR, "#deliveries thead th")
        headings = [th.get_attribute("textContent") for th in heads]
        assert labels == headings
    with pages.viewport(WIDE):
        assert pages.sideways_overflow() == 0  # 1400 px: every column fits, details open
    pages.screenshot("webhooks")
