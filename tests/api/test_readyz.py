"""`/readyz` says not ready, and why, when the store does not answer in time or a view
stops keeping up; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.test_checkout import assert_error, payment_body
from tests.conftest import make_settings
from tests.fake_providers import FakeProviders
from tests.live import until

DEADLINE_SECONDS = 20.0


def test_views_that_stay_behind_make_readyz_503_as_stalled(
    database_url: str, fake: FakeProviders
) -> None:
    """Served with --no-projections while no `ledger project` runs: events are pending
    and no view applies them."""
    settings = make_settings(database_url, fake, projection_stall_seconds=0.5)
    with TestClient(create_app(settings, run_projections=False)) as client:
        assert client.get("/readyz").status_code == 200  # nothing pending yet
        assert client.post("/api/payments", json=payment_body()).status_code == 201
        first = client.get("/readyz")
        assert first.status_code == 200, "behind for a moment is not a stall"

        def stalled() -> Any:
            answer = client.get("/readyz")
            return answer if answer.status_code == 503 else None

        answer = until(stalled, "/readyz reports the stall")
    error = assert_error(answer, 503, "projections_not_ready")
    assert "payments_table: stalled: 2 events behind" in error["message"]
    body = answer.json()
    assert body["ready"] is False
    assert body["projections"]["payments_table"] == {"position": 0, "lag": 2}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_readyz_answers_within_its_timeout_while_the_store_hangs(
    database_url: str, fake: FakeProviders
) -> None:
    settings = make_settings(database_url, fake, readyz_timeout_seconds=1.0)
    schema = database_url.rsplit("schema=", 1)[1]
    with TestClient(create_app(settings)) as client:
        until(lambda: client.get("/readyz").status_code == 200, "ready")
        locker = psycopg.connect(database_url.split("?")[0])
        # Reads of the events table wait for this lock: the store hangs, it does not fail.
        locker.execute(f"LOCK TABLE {schema}.paymentledger_events IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(15.0, locker.rollback)  # ends the hang even if we fail
        release.start()
        try:
            started = time.monotonic()
            answer = client.get("/readyz")
            took = time.monotonic() - started
        finally:
            release.cancel()
            locker.rollback()
            locker.close()
        error = assert_error(answer, 503, "store_unavailable")
        assert "did not answer within 1 s" in error["message"]
        assert took < 5.0
        assert until(lambda: client.get("/readyz").status_code == 200, "ready once it answers")
