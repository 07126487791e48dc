"""The audit routes over HTTP: the ordered history with its chain, a payment as of a
moment, verification that notices tampering done directly in the database, and auth."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.auth import issue_trainer_token
from ledger.application import PaymentLedger
from ledger.audit import GENESIS, link_hash
from ledger.settings import Settings
from tests.api.test_checkout import assert_error
from tests.conftest import event_topics
from tests.integration.test_audit_chain import positions_of, scripted_run, tamper

AUDITOR = {"Authorization": "Bearer auditor-token"}
ADMIN = {"Authorization": "Bearer admin-token"}


def all_events(client: TestClient, ledger: PaymentLedger, limit: int = 100) -> list[dict[str, Any]]:
    """Walk /api/audit/events page by page, once the chain has caught up."""
    items: list[dict[str, Any]] = []
    url = f"/api/audit/events?limit={limit}&min_position={ledger.recorder.max_notification_id()}"
    while url:
        response = client.get(url, headers=AUDITOR)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        url = (
            f"/api/audit/events?limit={limit}&after={page['next_after']}"
            if page["next_after"]
            else ""
        )
    return items


def history(
    client: TestClient, ledger: PaymentLedger, payment_id: UUID, as_of: str | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"min_position": ledger.recorder.max_notification_id()}
    if as_of:
        params["as_of"] = as_of
    response = client.get(
        f"/api/audit/payments/{payment_id}/history", params=params, headers=AUDITOR
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_history_lists_every_event_of_a_run_in_commit_order_with_its_chain(
    client: TestClient, ledger: PaymentLedger
) -> None:
    scripted_run(ledger)
    items = all_events(client, ledger, limit=3)  # several pages
    assert [i["position"] for i in items] == positions_of(ledger)
    assert [i["type"].rsplit(".", 1)[-1] for i in items] == event_topics(ledger)
    assert set(items[0]) == {
        "position", "event_id", "type", "aggregate_id", "version", "timestamp", "data",
        "hash", "prev_hash",
    }  # fmt: skip
    prev = GENESIS
    for item in items:  # an auditor can recompute every link from the items alone
        assert item["prev_hash"] == prev
        assert item["hash"] == link_hash(prev, item)
        prev = item["hash"]
    refund = next(i for i in items if i["type"].endswith("Payment.Refunded"))
    assert (refund["data"]["amount"], refund["data"]["refund_id"]) == (5000, "r-1")


def test_a_short_page_has_no_next_after(client: TestClient, ledger: PaymentLedger) -> None:
    scripted_run(ledger)
    page = client.get("/api/audit/events?after=6&limit=100", headers=AUDITOR).json()
    assert [i["position"] for i in page["items"]] == positions_of(ledger)[6:]
    assert page["next_after"] is None


def test_payment_history_as_of_a_moment_between_two_events_gives_the_state_between(
    client: TestClient, ledger: PaymentLedger
) -> None:
    paid = scripted_run(ledger)["paid"]
    now = history(client, ledger, paid)
    assert [e["type"].rsplit(".", 1)[-1] for e in now["events"]] == [
        "Initiated", "Completed", "Refunded",
    ]  # fmt: skip
    assert (now["state"]["status"], now["state"]["refunded_amount"]) == ("partially_refunded", 5000)

    completed_at = datetime.fromisoformat(now["events"][1]["timestamp"])
    refunded_at = datetime.fromisoformat(now["events"][2]["timestamp"])
    between = completed_at + (refunded_at - completed_at) / 2
    for moment in (completed_at, between):
        then = history(client, ledger, paid, moment.isoformat())
        assert [e["version"] for e in then["events"]] == [1, 2]
        assert (then["state"]["status"], then["state"]["refunded_amount"]) == ("completed", 0)
        assert then["events"] == now["events"][:2]


def test_payment_history_before_its_first_event_is_empty_with_no_state(
    client: TestClient, ledger: PaymentLedger
) -> None:
    paid = scripted_run(ledger)["paid"]
    first = datetime.fromisoformat(history(client, ledger, paid)["events"][0]["timestamp"])
    before = history(client, ledger, paid, (first - timedelta(microseconds=1)).isoformat())
    assert before == {"events": [], "state": None}


def test_as_of_accepts_zulu_and_an_offset_whose_plus_was_not_encoded(
    client: TestClient, ledger: PaymentLedger
) -> None:
    paid = scripted_run(ledger)["paid"]
    assert len(history(client, ledger, paid, "2000-01-01T00:00:00Z")["events"]) == 0
    seoul = "2999-01-01T09:00:00+09:00"  # '+' unencoded arrives as a space
    response = client.get(f"/api/audit/payments/{paid}/history?as_of={seoul}", headers=AUDITOR)
    assert len(response.json()["events"]) == 3


@pytest.mark.parametrize("as_of", ["yesterday", "2026-13-01T00:00:00", "1700000000"])
def test_as_of_that_is_not_iso_8601_is_422(
    client: TestClient, ledger: PaymentLedger, as_of: str
) -> None:
    paid = scripted_run(ledger)["paid"]
    response = client.get(
        f"/api/audit/payments/{paid}/history", params={"as_of": as_of}, headers=AUDITOR
    )
    assert_error(response, 422, "invalid_as_of")


@pytest.mark.parametrize("payment_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_unknown_payment_history_is_404(client: TestClient, payment_id: str) -> None:
    response = client.get(f"/api/audit/payments/{payment_id}/history", headers=AUDITOR)
    assert_error(response, 404, "not_found")


def test_a_trainer_notification_id_is_not_a_payment(
    client: TestClient, ledger: PaymentLedger
) -> None:
    scripted_run(ledger)
    sent = next(i for i in all_events(client, ledger) if "TrainerNotification" in i["type"])
    response = client.get(f"/api/audit/payments/{sent['aggregate_id']}/history", headers=AUDITOR)
    assert_error(response, 404)


@pytest.mark.parametrize("query", ["after=-1", "limit=0", "limit=1001", "after=x"])
def test_bad_event_queries_are_422(client: TestClient, query: str) -> None:
    assert_error(client.get(f"/api/audit/events?{query}", headers=AUDITOR), 422)


def test_verify_is_ok_on_an_untouched_history(client: TestClient, ledger: PaymentLedger) -> None:
    scripted_run(ledger)
    items = all_events(client, ledger)
    report = client.get("/api/audit/verify", headers=AUDITOR).json()
    assert report == {
        "ok": True,
        "events_checked": len(items),
        "head_hash": items[-1]["hash"],
        "first_bad_position": None,
        "head_position": items[-1]["position"],
    }


@pytest.mark.parametrize("kind", ["alter", "delete", "swap"])
def test_verify_names_the_first_event_tampered_with_in_the_database(
    client: TestClient, ledger: PaymentLedger, database_url: str, kind: str
) -> None:
    scripted_run(ledger)
    all_events(client, ledger)  # the chain has caught up
    bad = tamper(database_url, kind, positions_of(ledger))
    report = client.get("/api/audit/verify", headers=ADMIN).json()
    assert (report["ok"], report["first_bad_position"]) == (False, bad)


@pytest.mark.parametrize("route", ["/api/audit/events", "/api/audit/verify"])
def test_audit_routes_need_an_auditor_or_admin_token(
    client: TestClient, settings: Settings, route: str
) -> None:
    trainer = {"Authorization": f"Bearer {issue_trainer_token(settings, 't-1')}"}
    assert_error(client.get(route), 401)
    assert_error(client.get(route, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(client.get(route, headers=trainer), 403, "forbidden")
    assert client.get(route, headers=AUDITOR).status_code == 200
    assert client.get(route, headers=ADMIN).status_code == 200
