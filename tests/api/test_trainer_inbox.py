"""The trainer inbox over HTTP: a paid booking tells its trainer once, reading is an
event, admins see whether the trainer was told, and only the right tokens get in."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import issue_trainer_token
from ledger.application import PaymentLedger, PaymentOrder
from ledger.settings import Settings
from tests.api.test_checkout import assert_error, payment_body
from tests.conftest import event_topics

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
ITEM_KEYS = {"notification_id", "title", "message", "sent_at", "read"}


def bearer(settings: Settings, trainer_id: str, ttl_days: int = 365) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_trainer_token(settings, trainer_id, ttl_days)}"}


def paid(ledger: PaymentLedger, i: int, trainer_id: str = "t-1", complete: bool = True) -> int:
    """A payment for booking b-{i}; returns the position of its last write."""
    order = PaymentOrder(
        order_id=f"o-{i}", booking_id=f"b-{i}", customer_id="c", customer_name=f"Customer {i}",
        trainer_id=trainer_id, booking_date="2026-12-01", amount=15000, currency="KRW",
        provider="toss",
    )  # fmt: skip
    result = ledger.initiate(order)
    if complete:
        result = ledger.complete(result.payment_id, f"pk-{i}", "card", NOW)
    assert result.position is not None
    return result.position


def inbox(client: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    head = client.app.state.services.ledger.recorder.max_notification_id()  # type: ignore[attr-defined]
    response = client.get(
        f"/api/trainers/t-1/notifications?min_position={head}&{query}", headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def mark(client: TestClient, notification_id: str, headers: dict[str, str]) -> Any:
    return client.post(f"/api/trainers/t-1/notifications/{notification_id}/read", headers=headers)


def test_toss_confirmed_payment_tells_its_trainer_once_and_no_one_else(
    client: TestClient, settings: Settings
) -> None:
    client.post("/api/payments", json=payment_body(trainer_id="t-1"))
    confirm = {"paymentKey": "tpk_1", "orderId": "order-1001", "amount": 55000}
    assert client.post("/api/payments/toss/confirm", json=confirm).status_code == 200
    client.post("/api/payments/toss/confirm", json=confirm)  # the customer reloads the page

    items = inbox(client, bearer(settings, "t-1"))
    assert len(items) == 1 and set(items[0]) == ITEM_KEYS
    assert items[0]["read"] is False and items[0]["title"]
    assert "김민지" in items[0]["message"] and "2026-12-03" in items[0]["message"]
    other = client.get("/api/trainers/t-2/notifications", headers=bearer(settings, "t-2"))
    assert other.json()["items"] == []


def test_unfinished_payments_send_nothing(client: TestClient, ledger: PaymentLedger) -> None:
    paid(ledger, 1, complete=False)
    assert inbox(client, ADMIN) == []


def test_marking_read_flips_read_and_appends_one_event_once(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    paid(ledger, 1)
    [item] = inbox(client, bearer(settings, "t-1"))

    first = mark(client, item["notification_id"], bearer(settings, "t-1"))
    assert first.status_code == 204 and first.content == b""
    position = int(first.headers["X-Ledger-Position"])
    assert event_topics(ledger).count("MarkedRead") == 1
    response = client.get(f"/api/trainers/t-1/notifications?min_position={position}", headers=ADMIN)
    assert response.json()["items"][0]["read"] is True

    again = mark(client, item["notification_id"], bearer(settings, "t-1"))
    assert again.status_code == 204 and int(again.headers["X-Ledger-Position"]) >= position
    assert event_topics(ledger).count("MarkedRead") == 1


def test_unread_filter_leaves_out_what_was_read_and_newest_comes_first(
    client: TestClient, ledger: PaymentLedger
) -> None:
    for i in range(3):
        paid(ledger, i)
    everything = inbox(client, ADMIN)
    assert [i["message"].split(" paid")[0] for i in everything] == [
        "Customer 2", "Customer 1", "Customer 0",
    ]  # fmt: skip
    mark(client, everything[1]["notification_id"], ADMIN)
    unread = inbox(client, ADMIN, "unread=true")
    assert [i["notification_id"] for i in unread] == [
        everything[0]["notification_id"], everything[2]["notification_id"],
    ]  # fmt: skip
    assert [i["read"] for i in inbox(client, ADMIN, "unread=false")] == [False, True, False]


def test_limit_and_cursor_page_through_the_inbox(client: TestClient, ledger: PaymentLedger) -> None:
    for i in range(5):
        paid(ledger, i)
    head = ledger.recorder.max_notification_id()
    seen: list[str] = []
    url = f"/api/trainers/t-1/notifications?limit=2&min_position={head}"
    while url:
        page = client.get(url, headers=ADMIN).json()
        seen += [item["message"].split(" paid")[0] for item in page["items"]]
        cursor = page["next_cursor"]
        url = f"/api/trainers/t-1/notifications?limit=2&cursor={cursor}" if cursor else ""
    assert seen == [f"Customer {i}" for i in range(4, -1, -1)]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "unread=maybe"])
def test_bad_inbox_queries_are_422(client: TestClient, query: str) -> None:
    assert_error(client.get(f"/api/trainers/t-1/notifications?{query}", headers=ADMIN), 422)


def test_bad_cursor_is_400(client: TestClient) -> None:
    response = client.get("/api/trainers/t-1/notifications?cursor=nope", headers=ADMIN)
    assert_error(response, 400, "invalid_cursor")


def test_admin_booking_detail_shows_whether_the_trainer_was_told(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    head = paid(ledger, 1)
    paid(ledger, 2)
    detail = client.get(f"/api/admin/bookings/b-1?min_position={head}", headers=AUDITOR).json()
    [told] = detail["trainer_notifications"]
    assert set(told) == ITEM_KEYS and told["read"] is False

    read = mark(client, told["notification_id"], bearer(settings, "t-1"))
    position = read.headers["X-Ledger-Position"]
    detail = client.get(f"/api/admin/bookings/b-1?min_position={position}", headers=ADMIN).json()
    assert [(n["notification_id"], n["read"]) for n in detail["trainer_notifications"]] == [
        (told["notification_id"], True)
    ]


def test_pending_booking_detail_shows_no_notification(
    client: TestClient, ledger: PaymentLedger
) -> None:
    head = paid(ledger, 1, complete=False)
    detail = client.get(f"/api/admin/bookings/b-1?min_position={head}", headers=ADMIN).json()
    assert detail["trainer_notifications"] == []


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("t-2", 403), ("t-1", 200), ("admin", 200), ("auditor", 200)],
)
def test_who_may_read_an_inbox(
    client: TestClient, settings: Settings, who: str | None, status: int
) -> None:
    response = client.get("/api/trainers/t-1/notifications", headers=headers_of(settings, who))
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("t-2", 403), ("auditor", 403), ("t-1", 204), ("admin", 204)],
)
def test_who_may_mark_a_notification_read(
    client: TestClient, ledger: PaymentLedger, settings: Settings, who: str | None, status: int
) -> None:
    paid(ledger, 1)
    [item] = inbox(client, ADMIN)
    response = mark(client, item["notification_id"], headers_of(settings, who))
    assert response.status_code == status, response.text
    assert event_topics(ledger).count("MarkedRead") == (1 if status == 204 else 0)


def headers_of(settings: Settings, who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    return {"admin": ADMIN, "auditor": AUDITOR}.get(who) or bearer(settings, who)


def test_another_trainers_or_unknown_notification_is_404(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    paid(ledger, 1, trainer_id="t-2")
    head = ledger.recorder.max_notification_id()
    theirs = client.get(f"/api/trainers/t-2/notifications?min_position={head}", headers=ADMIN)
    notification_id = theirs.json()["items"][0]["notification_id"]
    # t-1 asks through its own inbox: the notification is not there, whoever asks.
    for headers in (bearer(settings, "t-1"), ADMIN):
        assert_error(mark(client, notification_id, headers), 404)
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_error(mark(client, unknown, bearer(settings, "t-1")), 404)
    assert_error(mark(client, "not-a-uuid", bearer(settings, "t-1")), 422)
    assert "MarkedRead" not in event_topics(ledger)


def test_a_payment_id_is_not_a_notification(
    client: TestClient, ledger: PaymentLedger, settings: Settings
) -> None:
    paid(ledger, 1)
    payment_id = ledger.find_payment("toss", "o-1").id
    assert_error(mark(client, str(payment_id), bearer(settings, "t-1")), 404)


def test_tampered_expired_or_foreign_trainer_tokens_are_401(
    client: TestClient, settings: Settings, database_url: str, fake: Any
) -> None:
    from tests.conftest import make_settings

    token = issue_trainer_token(settings, "t-1")
    prefix, payload, signature = token.split(".")
    forged_payload = issue_trainer_token(settings, "t-2").split(".")[1]
    elsewhere = make_settings(database_url, fake, secret_key="another-key")
    for bad in (
        f"{prefix}.{forged_payload}.{signature}",  # claims swapped, signature kept
        f"{prefix}.{payload}.{signature[:-2]}xx",
        issue_trainer_token(settings, "t-1", ttl_days=-1),  # expired
        issue_trainer_token(elsewhere, "t-1"),  # signed with another key
    ):
        response = client.get(
            "/api/trainers/t-1/notifications", headers={"Authorization": f"Bearer {bad}"}
        )
        assert_error(response, 401, "unauthorized")


def test_token_printed_by_the_cli_opens_the_inbox(client: TestClient, tmp_path: Path) -> None:
    command = [str(Path(sys.executable).parent / "ledger"), "token", "trainer", "t-1"]
    env = {**os.environ, "LEDGER_SECRET_KEY": "trainer-signing-key"}
    printed = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {printed}"}
    assert client.get("/api/trainers/t-1/notifications", headers=headers).status_code == 200
    assert_error(client.get("/api/trainers/t-2/notifications", headers=headers), 403)


def test_rebuild_reproduces_the_inbox(client: TestClient, ledger: PaymentLedger) -> None:
    for i in range(3):
        paid(ledger, i)
    mark(client, inbox(client, ADMIN)[0]["notification_id"], ADMIN)
    inbox(client, ADMIN)  # caught up with the MarkedRead
    read_models = client.app.state.services.read_models  # type: ignore[attr-defined]
    before = read_models.notifications.dump()
    replayed = read_models.rebuild(["notifications"], ledger, lambda _: None)
    assert replayed == ledger.recorder.max_notification_id()
    assert read_models.notifications.dump() == before
    assert [row["read_at"] is not None for row in before].count(True) == 1
