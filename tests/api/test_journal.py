"""Settlement over HTTP: trainers' profiles, the double-entry journal and its trial balance,
on both stores (CONTRACT.md, "Money owed")."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.application import PaymentLedger
from tests.api.test_checkout import assert_error
from tests.conftest import event_topics

ADMIN = {"Authorization": "Bearer admin-token"}
AUDITOR = {"Authorization": "Bearer auditor-token"}


def set_profile(
    client: TestClient, trainer_id: str, headers: dict[str, str] = ADMIN, **body: Any
) -> Any:
    return client.put(
        f"/api/admin/trainers/{trainer_id}/settlement-profile", json=body, headers=headers
    )


def test_a_profile_is_set_changed_and_the_same_terms_append_nothing(
    client: TestClient, ledger: PaymentLedger
) -> None:
    first = set_profile(client, "trainer-9", tax_type="individual")
    assert first.status_code == 200, first.text
    body = first.json()
    assert {k: body[k] for k in ("trainer_id", "commission_bps", "tax_type")} == {
        "trainer_id": "trainer-9",
        "commission_bps": 1500,  # omitted: LEDGER_COMMISSION_BPS
        "tax_type": "individual",
    }
    assert body["effective_at"] and body["position"] == 1
    again = set_profile(client, "trainer-9", commission_bps=1500, tax_type="individual")
    assert again.status_code == 200 and again.json()["position"] == 1
    changed = set_profile(client, "trainer-9", commission_bps=1000, tax_type="business")
    assert (changed.json()["commission_bps"], changed.json()["tax_type"]) == (1000, "business")
    assert event_topics(ledger) == ["Set", "Changed"]


@pytest.mark.parametrize(
    "body",
    [
        {"commission_bps": 10_001, "tax_type": "individual"},
        {"commission_bps": -1, "tax_type": "individual"},
        {"commission_bps": "1500", "tax_type": "individual"},
        {"commission_bps": 15.0, "tax_type": "individual"},
        {"commission_bps": 1500, "tax_type": "company"},
        {"commission_bps": 1500},
        {"tax_type": "business", "effective_at": "2026-01-01"},
    ],
)
def test_bad_profiles_are_422_and_append_nothing(
    client: TestClient, ledger: PaymentLedger, body: dict[str, Any]
) -> None:
    assert_error(set_profile(client, "trainer-9", **body), 422)
    assert event_topics(ledger) == []


def test_a_bad_trainer_id_is_422_and_appends_nothing(
    client: TestClient, ledger: PaymentLedger
) -> None:
    for trainer_id in ("..", "tr%00ainer", "x" * 201):
        answer = set_profile(client, trainer_id, tax_type="business")
        assert answer.status_code in (404, 422), answer.text
    assert_error(set_profile(client, "x" * 201, tax_type="business"), 422)
    assert event_topics(ledger) == []


def test_only_an_admin_sets_a_profile(client: TestClient, ledger: PaymentLedger) -> None:
    assert_error(set_profile(client, "trainer-9", AUDITOR, tax_type="business"), 403, "forbidden")
    assert_error(set_profile(client, "trainer-9", {}, tax_type="business"), 401)
    assert event_topics(ledger) == []
