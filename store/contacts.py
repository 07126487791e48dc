"""The contacts store: how to reach trainers and customers, kept outside the event history.

Contact details are personal data (CONTRACT.md, "Telling people"): they can be changed and
erased, so they never go into an event, whose history is immutable and hashed into the
audit chain. They live in tables of their own in the event store's database (the same
SQLite file, the same PostgreSQL schema), like the webhook inbox, and `ledger rebuild`
leaves them alone (they are not a read model: nothing could rebuild them).

- `contacts`: one row per (role, party id): e-mail, phone (E.164), locale and, for a
  trainer, the channels it wants (NULL: every channel), a JSON list.
- `contact_push_subscriptions`: a trainer's browsers' Web Push subscriptions, keyed by the
  endpoint, which the push service gave one browser: registering it again (for another
  trainer, after a log-in on a shared machine) moves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from projections.text import read_row
from store.tables import StoreTables

TRAINER, CUSTOMER = "trainer", "customer"
ROLES = (TRAINER, CUSTOMER)
DEFAULT_LOCALE = "ko"

DDL = (
    "CREATE TABLE IF NOT EXISTS contacts ("
    " role TEXT NOT NULL, party_id TEXT NOT NULL, email TEXT, phone TEXT,"
    " locale TEXT NOT NULL, channels TEXT, PRIMARY KEY (role, party_id))",
    "CREATE TABLE IF NOT EXISTS contact_push_subscriptions ("
    " endpoint TEXT PRIMARY KEY, trainer_id TEXT NOT NULL, p256dh TEXT NOT NULL,"
    " auth TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS contact_push_by_trainer ON contact_push_subscriptions (trainer_id)",
)
_UPSERT = (
    "INSERT INTO contacts (role, party_id, email, phone, locale, channels)"
    " VALUES (:role, :party_id, :email, :phone, :locale, :channels)"
    " ON CONFLICT (role, party_id) DO UPDATE SET "
)
# PUT: the body is the whole contact, so what it leaves out is cleared.
REPLACE_SQL = _UPSERT + (
    "email = excluded.email, phone = excluded.phone, locale = excluded.locale,"
    " channels = excluded.channels"
)
# Checkout: what the order says fills in what is not known yet; it never replaces what is.
# Checkout needs no token, so anyone naming a customer id could otherwise redirect that
# customer's messages; changing a known address is the admin's PUT. One statement, so two
# checkouts of one customer at once cannot lose each other's field.
MERGE_SQL = _UPSERT + (
    "email = COALESCE(contacts.email, excluded.email),"
    " phone = COALESCE(contacts.phone, excluded.phone),"
    " locale = CASE WHEN contacts.email IS NULL AND contacts.phone IS NULL"
    " THEN COALESCE(CAST(:given_locale AS TEXT), contacts.locale) ELSE contacts.locale END"
)
SUBSCRIBE_SQL = (
    "INSERT INTO contact_push_subscriptions (endpoint, trainer_id, p256dh, auth)"
    " VALUES (:endpoint, :trainer_id, :public_key, :auth)"
    " ON CONFLICT (endpoint) DO UPDATE SET trainer_id = excluded.trainer_id,"
    " p256dh = excluded.p256dh, auth = excluded.auth"
)
# RETURNING counts what was deleted: the library's SQLite cursor does not expose rowcount.
UNSUBSCRIBE_SQL = "DELETE FROM contact_push_subscriptions WHERE endpoint = :endpoint RETURNING 1"
ERASE_SQL = "DELETE FROM contacts WHERE role = :role AND party_id = :party_id RETURNING 1"
ERASE_PUSH_SQL = "DELETE FROM contact_push_subscriptions WHERE trainer_id = :party_id RETURNING 1"


@dataclass(frozen=True)
class PushSubscriptionRow:
    """A browser's Web Push subscription: where to send, and the keys to encrypt with."""

    endpoint: str
    p256dh: str  # base64url of the browser's P-256 public key (65 bytes, uncompressed)
    auth: str  # base64url of the 16-byte authentication secret


@dataclass(frozen=True)
class Contact:
    """How to reach one trainer or customer now."""

    role: str  # TRAINER | CUSTOMER
    party_id: str
    email: str | None
    phone: str | None  # E.164
    locale: str  # "ko" | "en"
    channels: tuple[str, ...] | None  # None: every channel
    push: tuple[PushSubscriptionRow, ...]  # a trainer's browsers; always () for a customer


class ContactBook(StoreTables):
    """The contacts store on the ledger's datastore (SQLite or PostgreSQL)."""

    def create_tables(self) -> None:
        self._create(DDL)

    def put(
        self,
        role: str,
        party_id: str,
        email: str | None,
        phone: str | None,
        channels: tuple[str, ...] | None,
        locale: str | None,
    ) -> Contact:
        """Set the whole contact: a field given as None is cleared (a locale: the default;
        channels: every channel). A trainer's push subscriptions are kept."""
        return self._write(REPLACE_SQL, _row(role, party_id, email, phone, locale, channels))

    def merge(
        self, role: str, party_id: str, email: str | None, phone: str | None, locale: str | None
    ) -> Contact:
        """Fill in what is not known yet from what is given; nothing known is replaced
        (checkout's contact fields: see MERGE_SQL); channels stay."""
        row = _row(role, party_id, email, phone, locale, None)
        return self._write(MERGE_SQL, {**row, "given_locale": locale})

    def get(self, role: str, party_id: str) -> Contact | None:
        """The contact, or None when nothing is known (a trainer with only push
        subscriptions has a contact with no address, the default locale, every channel)."""
        _check_role(role)
        with self._cursor() as cursor:
            return self._contact(cursor, role, party_id)

    def erase(self, role: str, party_id: str) -> bool:
        """Delete the contact and (a trainer's) push subscriptions; True if any was there."""
        _check_role(role)
        statements = (ERASE_SQL, ERASE_PUSH_SQL) if role == TRAINER else (ERASE_SQL,)
        return self._delete(statements, {"role": role, "party_id": party_id}) > 0

    def add_push_subscription(self, trainer_id: str, endpoint: str, p256dh: str, auth: str) -> None:
        """Register a browser for the trainer; an endpoint registered before is updated, and
        moves to this trainer if another had it."""
        row = {"endpoint": endpoint, "trainer_id": trainer_id, "public_key": p256dh, "auth": auth}
        self._execute(SUBSCRIBE_SQL, row)

    def remove_push_subscription(self, endpoint: str) -> bool:
        """Forget an endpoint (its push service answered 404/410 Gone); True if it was known."""
        return self._delete((UNSUBSCRIBE_SQL,), {"endpoint": endpoint}) > 0

    def _write(self, sql: str, row: dict[str, Any]) -> Contact:
        # Read back in the same transaction: an erasure at that moment cannot come between.
        with self._cursor() as cursor:
            self._run(cursor, sql, row)
            contact = self._contact(cursor, row["role"], row["party_id"])
        assert contact is not None  # just written
        return contact

    def _contact(self, cursor: Any, role: str, party_id: str) -> Contact | None:
        rows = self._fetch(
            cursor,
            "SELECT email, phone, locale, channels FROM contacts"
            " WHERE role = :role AND party_id = :party_id",
            {"role": role, "party_id": party_id},
        )
        push = self._subscriptions(cursor, party_id) if role == TRAINER else ()
        if not rows and not push:
            return None
        return _contact(role, party_id, rows[0] if rows else None, push)

    def _subscriptions(self, cursor: Any, trainer_id: str) -> tuple[PushSubscriptionRow, ...]:
        rows = self._fetch(
            cursor,
            "SELECT endpoint, p256dh, auth FROM contact_push_subscriptions"
            " WHERE trainer_id = :trainer_id ORDER BY endpoint",
            {"trainer_id": trainer_id},
        )
        return tuple(PushSubscriptionRow(**row) for row in rows)

    def _fetch(self, cursor: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        self._run(cursor, sql, params)
        return [read_row(row) for row in cursor.fetchall()]

    def _delete(self, statements: tuple[str, ...], params: dict[str, Any]) -> int:
        deleted = 0
        with self._cursor() as cursor:
            for sql in statements:
                self._run(cursor, sql, params)
                deleted += len(cursor.fetchall())
        return deleted

    def _execute(self, sql: str, params: dict[str, Any]) -> None:
        with self._cursor() as cursor:
            self._run(cursor, sql, params)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"a contact's role is one of {ROLES}, not {role!r}")


def _row(
    role: str,
    party_id: str,
    email: str | None,
    phone: str | None,
    locale: str | None,
    channels: tuple[str, ...] | None,
) -> dict[str, Any]:
    _check_role(role)
    # JSON, not a joined string: no channel name can break the list apart.
    stored_channels = None if channels is None else json.dumps(list(channels))
    return {"role": role, "party_id": party_id, "email": email, "phone": phone,
            "locale": locale or DEFAULT_LOCALE, "channels": stored_channels}  # fmt: skip


def _contact(
    role: str, party_id: str, row: dict[str, Any] | None, push: tuple[PushSubscriptionRow, ...]
) -> Contact:
    row = row or {"email": None, "phone": None, "locale": DEFAULT_LOCALE, "channels": None}
    channels = None if row["channels"] is None else tuple(json.loads(row["channels"]))
    return Contact(role, party_id, row["email"], row["phone"], row["locale"], channels, push)
