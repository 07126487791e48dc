"""Webhooks are answered once stored and applied after (api/inbox.py): what a test waits for
to see a delivery's result, as an admin (or the provider's support) reads it."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.live import until

ADMIN = {"Authorization": "Bearer admin-token"}
WAITING = ("accepted", "retrying")


def result(client: TestClient, answer: httpx.Response, waiting: tuple[str, ...] = WAITING) -> Any:
    """The stored delivery `answer` acknowledged, once the processor has applied it (and, by
    default, once it is no longer waiting for a retry): `GET /api/admin/webhooks/{id}`."""
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] in ("accepted", "duplicate"), answer.text
    delivery = answer.json()["delivery_id"]

    def applied() -> dict[str, Any] | None:
        row = client.get(f"/api/admin/webhooks/{delivery}", headers=ADMIN)
        assert row.status_code == 200, row.text
        found: dict[str, Any] = row.json()
        return found if found["outcome"] not in waiting else None

    return until(applied, f"delivery {delivery} applied")


def outcome(client: TestClient, answer: httpx.Response) -> str:
    return str(result(client, answer)["outcome"])
