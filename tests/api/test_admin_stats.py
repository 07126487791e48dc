"""GET /api/admin/stats: the contract's shape, its numbers against the event history, auth."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from api.auth import issue_trainer_token
from api.routers.admin import current_time
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.api.test_checkout import assert_error
from tests.integration.test_revenue import (
    BEFORE_MIDNIGHT,
    LAST_MONTH,
    NOW,
    SEOUL,
    expected_stats,
    run_script,
)

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}


def pin_clock(client: TestClient, now: datetime) -> None:
    client.app.dependency_overrides[current_time] = lambda: now  # type: ignore[attr-defined]


@pytest.mark.parametrize("now", [NOW, BEFORE_MIDNIGHT, LAST_MONTH], ids=["dec1", "nov30", "oct"])
def test_stats_equal_those_folded_from_the_event_history(
    client: TestClient, ledger: PaymentLedger, now: datetime
) -> None:
    head = run_script(ledger)
    pin_clock(client, now)
    response = client.get(f"/api/admin/stats?min_position={head}", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == expected_stats(ledger, now, SEOUL)


def test_stats_of_an_empty_ledger_are_zero_with_both_providers(client: TestClient) -> None:
    response = client.get("/api/admin/stats", headers=AUDITOR)
    assert response.status_code == 200, response.text
    nothing = {"count": 0, "revenue": {}}
    assert response.json() == {
        "total_revenue": {}, "today_revenue": {}, "month_revenue": {},
        "completed_count": 0, "pending_count": 0, "failed_count": 0, "cancelled_count": 0,
        "refunded_count": 0, "disputed_count": 0,
        "by_provider": {"toss": nothing, "stripe": nothing},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("who", "status"), [("nobody", 401), ("trainer", 403), ("auditor", 200), ("admin", 200)]
)
def test_stats_are_for_admins_and_auditors_only(
    client: TestClient, settings: Settings, who: str, status: int
) -> None:
    headers = {
        "nobody": {},
        "trainer": {"Authorization": f"Bearer {issue_trainer_token(settings, 't-1')}"},
        "auditor": AUDITOR,
        "admin": ADMIN,
    }[who]
    response = client.get("/api/admin/stats", headers=headers)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_error(response, status)
