"""The store goes away while the service runs (its real supervisor thread included).

Each test gets a PostgreSQL database of its own: an outage is made by refusing new
connections to that database (`ALLOW_CONNECTIONS false`) and terminating its backends, and
no other database is ever altered (others run tests on the same server).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.app import create_app
from tests.api.test_checkout import assert_error, payment_body
from tests.conftest import POSTGRES_URL, make_settings
from tests.fake_providers import FakeProviders
from tests.inbox import result
from tests.live import until

ADMIN = {"Authorization": "Bearer admin-token"}
KEY = "tpk_outage"
POOL_TIMEOUT_SECONDS = 1
# Generous against the 10 s Toss allows a webhook; the library's retries alone made ~12 s.
FAST_SECONDS = 5.0
DEADLINE_SECONDS = 20.0


@dataclass
class Database:
    name: str
    url: str

    @contextmanager
    def refusing_connections(self, terminate: str = "true") -> Iterator[None]:
        """New connections are refused; existing backends matching `terminate` (an SQL
        condition on pg_stat_activity) are ended."""
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            self._allow(admin, allow=False)
            admin.execute(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid() AND ({})"
                ).format(sql.SQL(terminate)),
                (self.name,),
            )
            try:
                yield
            finally:
                self._allow(admin, allow=True)

    def _allow(self, admin: psycopg.Connection[Any], *, allow: bool) -> None:
        statement = "ALTER DATABASE {} WITH ALLOW_CONNECTIONS " + ("true" if allow else "false")
        admin.execute(sql.SQL(statement).format(sql.Identifier(self.name)))


@pytest.fixture
def database(postgres_available: bool) -> Iterator[Database]:
    if not postgres_available:
        pytest.skip("PostgreSQL not reachable (set CI=1 to make this an error)")
    name = f"ledger_outage_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield Database(name, urlparse(POSTGRES_URL)._replace(path=f"/{name}", query="").geturl())
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def client(database: Database, fake: FakeProviders) -> Iterator[TestClient]:
    settings = make_settings(
        database.url,
        fake,
        db_connect_timeout_seconds=POOL_TIMEOUT_SECONDS,
        readyz_timeout_seconds=1.0,
        projection_retry_max_seconds=1.0,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def toss_webhook(client: TestClient, fake: FakeProviders) -> httpx.Response:
    content = fake.toss_webhook_body(KEY)
    headers = {"content-type": "application/json"}
    answer: httpx.Response = client.post("/api/webhooks/toss", content=content, headers=headers)
    return answer


def ready(client: TestClient) -> dict[str, Any] | None:
    answer = client.get("/readyz")
    return answer.json() if answer.status_code == 200 else None


def status_after(client: TestClient, position: int, order_id: str) -> str:
    """The order's status in the payments view, once the view includes `position`."""
    answer = client.get(f"/api/admin/payments?min_position={position}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return str(next(i["status"] for i in answer.json()["items"] if i["order_id"] == order_id))


def test_a_store_outage_is_answered_503_quickly_and_the_views_catch_up_afterwards(
    client: TestClient, fake: FakeProviders, database: Database
) -> None:
    created = client.post("/api/payments", json=payment_body())
    assert created.status_code == 201, created.text
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    until(lambda: ready(client), "ready before the outage")

    with database.refusing_connections():
        outage_began = time.monotonic()
        readyz, readyz_took = timed(lambda: client.get("/readyz"))
        webhook, webhook_took = timed(lambda: toss_webhook(client, fake))
        checkout, checkout_took = timed(
            lambda: client.post("/api/payments", json=payment_body(order_id="order-1002"))
        )
        listing, listing_took = timed(lambda: client.get("/api/admin/payments", headers=ADMIN))
        # Longer than the pool timeout, so the supervisor meets failed restarts too.
        time.sleep(max(0.0, 4 * POOL_TIMEOUT_SECONDS - (time.monotonic() - outage_began)))

    assert_error(readyz, 503, "store_unavailable")
    assert readyz_took < FAST_SECONDS
    for answer, took in [
        (webhook, webhook_took),
        (checkout, checkout_took),
        (listing, listing_took),
    ]:
        assert_error(answer, 503, "store_unavailable")
        assert int(answer.headers["Retry-After"]) > 0
        assert took < FAST_SECONDS, f"{answer.request.url} took {took:.1f} s"

    # Toss delivers again later; the views apply it without the service being restarted.
    redelivered = until(lambda: (r := toss_webhook(client, fake)).status_code == 200 and r, "200")
    assert redelivered.json()["outcome"] == "accepted", redelivered.text
    row = result(client, redelivered)  # the inbox's processor survived the outage too
    assert (row["outcome"], row["status"]) == ("applied", "completed"), row
    assert status_after(client, row["position"], "order-1001") == "completed"
    assert until(lambda: ready(client), "ready after the outage")["ready"] is True


def test_views_whose_runners_cannot_restart_make_readyz_503_until_they_run_again(
    client: TestClient, database: Database
) -> None:
    """The store answers (the service's open connections survive) but refuses new ones,
    as when it is out of connections: the runners' LISTEN connections are cut and new
    runners cannot connect."""
    created = client.post("/api/payments", json=payment_body())
    assert created.status_code == 201, created.text
    until(lambda: ready(client), "ready before the outage")

    def cannot_start() -> dict[str, Any] | None:
        answer = client.get("/readyz")
        body: dict[str, Any] = answer.json()
        message = body.get("error", {}).get("message", "")
        return (
            body if answer.status_code == 503 and "not running: cannot start" in message else None
        )

    with database.refusing_connections(terminate="starts_with(query, 'LISTEN ')"):
        body = until(cannot_start, "/readyz names the views whose runners cannot start")

    assert body["ready"] is False and body["error"]["code"] == "projections_not_ready"
    assert set(body["projections"]) >= {"payments_table", "revenue"}
    assert until(lambda: ready(client), "ready once the runners run again")["ready"] is True
    later = client.post("/api/payments", json=payment_body(order_id="order-1002"))
    assert later.status_code == 201, later.text
    assert status_after(client, later.json()["position"], "order-1002") == "pending"


def test_a_delivery_waiting_in_the_inbox_through_a_store_outage_is_applied_after_it(
    client: TestClient, fake: FakeProviders, database: Database
) -> None:
    """Acknowledged to Toss, not applied yet (Toss's API was away): the store going away
    too loses nothing, nor counts an attempt; the processor applies it once both are back."""
    created = client.post("/api/payments", json=payment_body())
    assert created.status_code == 201, created.text
    fake.toss_payment(KEY, "order-1001", 55000, status="DONE")
    fake.toss_fail_next(status=503)
    answer = toss_webhook(client, fake)
    waiting = result(client, answer, waiting=("accepted",))
    assert (waiting["outcome"], waiting["attempts"]) == ("retrying", 1), waiting
    assert waiting["reason"].startswith("provider_unavailable"), waiting

    with database.refusing_connections():
        time.sleep(4 * POOL_TIMEOUT_SECONDS)  # its retry falls due during the outage

    row = result(client, answer)
    assert (row["outcome"], row["status"], row["attempts"]) == ("applied", "completed", 2), row
    assert status_after(client, row["position"], "order-1001") == "completed"
    listed = until(
        lambda: (r := client.get("/api/admin/payments", headers=ADMIN)).is_success and r,
        "a listing",
    )
    assert [p["status"] for p in listed.json()["items"]] == ["completed"]  # one payment, once
