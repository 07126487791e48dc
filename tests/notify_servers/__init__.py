"""Real protocol servers on loopback ports for the outbox's channels, and their fixtures.

- `smtp_server` → `MailServer` (aiosmtpd, AUTH required): `.received` (`ReceivedMail`),
  `.refuse_next(n, reply)`, `.stop()` / `.start()`.
- `twilio_server` → `FakeTwilio`: `.messages` (`SentSms`), `.requests`, `.fail_next(n, status)`.
- `push_server` → `PushService`: `.subscribe()`, `.received` / `.pushes_to(sub)`
  (`ReceivedPush`, decrypted), `.expire(sub)`, `.fail_next(n, status)`.
Each has `settings_overrides()`: the Settings fields that point the ledger at it. A test
module (or conftest) imports the fixtures to use them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify_servers.smtp import MailServer, ReceivedMail
from tests.notify_servers.twilio import FakeTwilio, SentSms
from tests.notify_servers.webpush import PushService, ReceivedPush

__all__ = [
    "FakeTwilio",
    "MailServer",
    "PushService",
    "ReceivedMail",
    "ReceivedPush",
    "SentSms",
    "push_server",
    "smtp_server",
    "twilio_server",
]


@pytest.fixture
def smtp_server() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def push_server() -> Iterator[PushService]:
    server = PushService()
    server.start()
    try:
        yield server
    finally:
        server.stop()
