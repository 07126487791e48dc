"""The outbox's channels: one protocol, one registry (CONTRACT.md, "Telling people").

A channel sends one rendered message to one recipient over a real protocol (SMTP, a
Twilio-compatible Messages API, Web Push). The outbox worker (api/notify/dispatcher.py)
decides when; a channel only says how it went: it returns, or raises `Skipped` (nothing
to send to: no address, no subscription) or `SendFailed` (try again later, unless
`permanent`). Each message's id is stable, so a send repeated after a crash carries the
same identity (the e-mail's Message-ID, the SMS request's idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

CHANNELS = ("email", "sms", "push")  # besides the trainer's inbox, which is an event


@dataclass(frozen=True)
class PushSubscription:
    """A browser's Web Push subscription (the PushSubscription JSON's fields)."""

    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to, with the contact details the contacts store holds now."""

    role: str  # "trainer" | "customer"
    party_id: str
    email: str | None = None
    phone: str | None = None  # E.164
    locale: str = "ko"
    push: tuple[PushSubscription, ...] = ()


@dataclass(frozen=True)
class Rendered:
    """One message's texts, in the recipient's language."""

    message_id: str  # the message's stable id (a UUID's text)
    subject: str
    text: str  # plain text: the e-mail's text part, the push body
    html: str  # the e-mail's HTML part
    sms: str  # short: an SMS segment or two
    url: str | None = None  # where a click on the push notification goes (a retry link)
    data: dict[str, Any] = field(default_factory=dict)  # extra fields for the push payload


class Skipped(Exception):
    """Nothing to send on this channel (reason: `no_contact`, say); not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SendFailed(Exception):
    """The send did not happen (or may not have); retried with backoff unless permanent."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Channel(Protocol):
    @property
    def name(self) -> str:
        """One of CHANNELS."""
        ...

    def send(self, recipient: Recipient, message: Rendered) -> str | None:
        """Send; returns the far side's id of what it accepted (an SMS sid), if any."""
        ...

    def close(self) -> None: ...
