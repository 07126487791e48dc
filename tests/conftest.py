"""Fixtures shared by every layer: a store per backend, the fake providers, the app."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.application import PaymentLedger
from ledger.settings import Settings
from tests.fake_providers import FakeProviders

POSTGRES_URL = os.environ.get(
    "LEDGER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL unreachable at {POSTGRES_URL} in CI: {exc}")
        return False


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    if not request.getfixturevalue("postgres_available"):
        pytest.skip("PostgreSQL not reachable (set CI=1 to make this an error)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeProviders]:
    fake = FakeProviders()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake(fake_server: FakeProviders) -> FakeProviders:
    fake_server.reset()
    return fake_server


def make_settings(database_url: str, fake: FakeProviders, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "toss_secret_key": fake.toss_secret_key,
        "toss_api_base": fake.base_url,
        "stripe_api_key": fake.stripe_api_key,
        "stripe_api_base": fake.base_url,
        "stripe_webhook_secret": fake.stripe_webhook_secret,
        "admin_token": "admin-token",
        "auditor_token": "auditor-token",
        "secret_key": "trainer-signing-key",
        "provider_timeout_seconds": 1.0,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str, fake: FakeProviders) -> Settings:
    return make_settings(database_url, fake)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def ledger(client: TestClient) -> PaymentLedger:
    """The app's own ledger, to read the event store behind the HTTP answers."""
    services = client.app.state.services  # type: ignore[attr-defined]
    return services.ledger  # type: ignore[no-any-return]


def event_topics(ledger: PaymentLedger) -> list[str]:
    """Every stored event's class name, in commit order."""
    notifications = ledger.recorder.select_notifications(start=None, limit=1_000_000)
    return [n.topic.rsplit(".", 1)[-1] for n in notifications]
