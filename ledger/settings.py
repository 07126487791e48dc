"""All configuration in one object, read from the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlparse
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TOSS_API_BASE = "https://api.tosspayments.com"
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
SQLITE_RECORDER_TOPIC = "store.sqlite_polling:PollingSQLiteApplicationRecorder"
# Appends in one round trip, so the table lock is never held waiting on a client.
POSTGRES_RECORDER_TOPIC = "store.pg_recorder:OneRoundTripRecorder"
# Gives up waiting for a connection once, instead of once per library retry.
POSTGRES_FACTORY_TOPIC = "store.pg_factory:FailFastPostgresFactory"


class Settings(BaseSettings):
    """The contract's variables. Attribute names drop the prefix; env names keep it."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite:///./ledger.db", validation_alias="LEDGER_DATABASE_URL")
    timezone: str = Field("Asia/Seoul", validation_alias="LEDGER_TIMEZONE")
    admin_token: SecretStr | None = Field(None, validation_alias="LEDGER_ADMIN_TOKEN")
    auditor_token: SecretStr | None = Field(None, validation_alias="LEDGER_AUDITOR_TOKEN")
    secret_key: SecretStr | None = Field(None, validation_alias="LEDGER_SECRET_KEY")
    stripe_webhook_secret: SecretStr | None = Field(None, validation_alias="STRIPE_WEBHOOK_SECRET")
    stripe_api_key: SecretStr | None = Field(None, validation_alias="STRIPE_API_KEY")
    stripe_api_base: str = Field(DEFAULT_STRIPE_API_BASE, validation_alias="STRIPE_API_BASE")
    toss_secret_key: SecretStr | None = Field(None, validation_alias="TOSS_SECRET_KEY")
    toss_api_base: str = Field(DEFAULT_TOSS_API_BASE, validation_alias="TOSS_API_BASE")
    max_body_bytes: int = Field(262144, gt=0, validation_alias="LEDGER_MAX_BODY_BYTES")
    provider_timeout_seconds: float = Field(
        8.0, gt=0, validation_alias="LEDGER_PROVIDER_TIMEOUT_SECONDS"
    )
    # Store outages: how long a request waits for a connection (whole seconds: the library
    # reads an integer), how long /readyz waits for the store, how the read side recovers.
    db_connect_timeout_seconds: int = Field(
        3, ge=1, validation_alias="LEDGER_DB_CONNECT_TIMEOUT_SECONDS"
    )
    readyz_timeout_seconds: float = Field(
        2.0, gt=0, validation_alias="LEDGER_READYZ_TIMEOUT_SECONDS"
    )
    projection_retry_max_seconds: float = Field(
        30.0, gt=0, validation_alias="LEDGER_PROJECTION_RETRY_MAX_SECONDS"
    )
    projection_stall_seconds: float = Field(
        60.0, gt=0, validation_alias="LEDGER_PROJECTION_STALL_SECONDS"
    )
    # Reads with ?min_position=: the longest wait, and how many may wait at once per token.
    freshness_timeout_seconds: float = Field(
        5.0, gt=0, le=60, validation_alias="LEDGER_FRESHNESS_TIMEOUT_SECONDS"
    )
    freshness_waits_per_token: int = Field(
        8, ge=1, validation_alias="LEDGER_FRESHNESS_WAITS_PER_TOKEN"
    )
    # Reconciliation (api/reconcile.py): how often the leader re-reads pending payments
    # from the providers (0: never), and how old a pending payment must be to be re-read.
    reconcile_seconds: float = Field(300.0, ge=0, validation_alias="LEDGER_RECONCILE_SECONDS")
    reconcile_older_than_seconds: float = Field(
        600.0, ge=0, validation_alias="LEDGER_RECONCILE_OLDER_THAN_SECONDS"
    )
    # The webhook inbox (api/inbox.py): retries of a delivery whose provider is unreachable
    # (delay doubling from the first to the cap, `failed` after the last attempt), and how
    # often the processor looks for deliveries another process stored.
    inbox_retry_seconds: float = Field(1.0, gt=0, validation_alias="LEDGER_INBOX_RETRY_SECONDS")
    inbox_retry_max_seconds: float = Field(
        300.0, gt=0, validation_alias="LEDGER_INBOX_RETRY_MAX_SECONDS"
    )
    inbox_max_attempts: int = Field(8, ge=1, validation_alias="LEDGER_INBOX_MAX_ATTEMPTS")
    inbox_poll_seconds: float = Field(1.0, gt=0, validation_alias="LEDGER_INBOX_POLL_SECONDS")
    # How many provider re-reads (Toss) of one inbox round run at once; 1: none ahead, in order.
    inbox_fetch_concurrency: int = Field(8, ge=1, validation_alias="LEDGER_INBOX_FETCH_CONCURRENCY")

    # Settlement (CONTRACT.md "Money owed"): the default commission of a trainer without a
    # profile, VAT on the commission, income tax withheld from an individual's payout.
    commission_bps: int = Field(1500, ge=0, le=10_000, validation_alias="LEDGER_COMMISSION_BPS")
    vat_bps: int = Field(1000, ge=0, le=10_000, validation_alias="LEDGER_VAT_BPS")
    withholding_bps: int = Field(330, ge=0, le=10_000, validation_alias="LEDGER_WITHHOLDING_BPS")
    settlement_period: Literal["monthly", "weekly"] = Field(
        "monthly", validation_alias="LEDGER_SETTLEMENT_PERIOD"
    )

    # Telling people (CONTRACT.md): the outbox's channels; one left unset is skipped.
    smtp_url: SecretStr | None = Field(None, validation_alias="LEDGER_SMTP_URL")
    mail_from: str = Field("ledger@localhost", validation_alias="LEDGER_MAIL_FROM")
    twilio_account_sid: str | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_from: str | None = Field(None, validation_alias="TWILIO_FROM")
    twilio_api_base: str = Field("https://api.twilio.com", validation_alias="TWILIO_API_BASE")
    vapid_private_key: SecretStr | None = Field(None, validation_alias="LEDGER_VAPID_PRIVATE_KEY")
    vapid_subject: str | None = Field(None, validation_alias="LEDGER_VAPID_SUBJECT")
    # Where push subscriptions may point: the browsers' push services. The ledger POSTs to
    # a subscription's endpoint, so any other address would let a trainer aim it at hosts
    # inside the network. A `*.` host matches its subdomains.
    push_endpoints: tuple[str, ...] = Field(
        (
            "https://fcm.googleapis.com/",
            "https://updates.push.services.mozilla.com/",
            "https://web.push.apple.com/",
            "https://*.notify.windows.com/",
        ),
        validation_alias="LEDGER_PUSH_ENDPOINTS",
    )
    # e.g. https://app.example/bookings/{booking_id}/pay: a failed payment's retry link.
    retry_url: str | None = Field(None, validation_alias="LEDGER_RETRY_URL")
    # Seconds before each retry of a failed send (then `dead`), and how often the outbox
    # looks for work another process queued.
    outbox_retry_seconds: tuple[float, ...] = Field(
        (60.0, 300.0, 1800.0, 7200.0, 43200.0), validation_alias="LEDGER_OUTBOX_RETRY_SECONDS"
    )
    outbox_poll_seconds: float = Field(1.0, gt=0, validation_alias="LEDGER_OUTBOX_POLL_SECONDS")
    # A message older than this when first sent is `skipped: stale` (an old history
    # replayed into a new database must not mail everyone again).
    outbox_max_age_seconds: float = Field(
        86400.0, gt=0, validation_alias="LEDGER_OUTBOX_MAX_AGE_SECONDS"
    )
    channel_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="LEDGER_CHANNEL_TIMEOUT_SECONDS"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        ZoneInfo(value)  # raises for an unknown zone: fail at start-up, not at midnight
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("LEDGER_DATABASE_URL must start with sqlite:// or postgresql://")
        return value

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment `eventsourcing` reads to pick and configure its recorders."""
        if self.is_postgres:
            timeout = str(self.db_connect_timeout_seconds)
            return {**postgres_env(self.database_url), "POSTGRES_CONNECT_TIMEOUT": timeout}
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": sqlite_path(self),
            "SQLITE_LOCK_TIMEOUT": "30",
            # The library's SQLite recorder cannot subscribe; projections need to.
            "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER_TOPIC,
        }


def sqlite_path(settings: Settings) -> str:
    path = settings.database_url.removeprefix("sqlite://").removeprefix("/")
    if path in ("", ":memory:"):
        # Shared-cache memory database, so projections in this process see the events.
        return "file:ledger?mode=memory&cache=shared"
    return str(Path(path))


def postgres_env(url: str) -> dict[str, str]:
    """postgresql://user:pass@host:port/db[?schema=name] → eventsourcing's POSTGRES_* keys.

    `schema` is our extension: several ledgers (or test runs) can share one database.
    """
    parsed = urlparse(url)
    env = {
        "PERSISTENCE_MODULE": POSTGRES_FACTORY_TOPIC,
        "POSTGRES_DBNAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        # The pool opens its minimum eagerly: keep it small, let it grow under load.
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "18",
        "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
    }
    schema = parse_qs(parsed.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env
