"""Contact details as the API takes them: e-mail, E.164 phone, locale, channels, Web Push.

The checks are the ledger's own, small and stated here rather than a library's (pydantic's
`EmailStr` needs `email-validator`, which also accepts what our channels cannot send:
`Name <addr>` forms, non-ASCII addresses that need SMTPUTF8, and it refuses some domains
by a list of its own). An e-mail address here is an ASCII dot-atom mailbox (RFC 5321
without quoted local parts or address literals): at most 64 characters before the `@`, a
domain of at least two labels (LDH, at most 63 each) whose last one is alphabetic or
punycode, at most 254 characters in all.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# `[0-9]`, not `\d`: pydantic's regex engine counts every Unicode digit as `\d`.
_TOP_LABEL = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TOP_LABEL}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{7,14}$"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# P-256 (SEC 2, secp256r1): y^2 = x^3 - 3x + b over the prime field p.
_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


def _mailbox_lengths(value: str) -> str:
    if len(value.split("@", 1)[0]) > 64:
        raise ValueError("an e-mail address has at most 64 characters before the @")
    return value


Email = Annotated[
    str,
    Field(max_length=254, pattern=EMAIL_PATTERN, examples=["minji@example.com"]),
    AfterValidator(_mailbox_lengths),
]
Phone = Annotated[
    str, Field(pattern=PHONE_PATTERN, description="E.164", examples=["+821012345678"])
]
Locale = Literal["ko", "en"]
ChannelName = Literal["inbox", "email", "sms", "push"]


def _unique(channels: list[ChannelName]) -> list[ChannelName]:
    return list(dict.fromkeys(channels))  # a name given twice is the same wish


class TrainerContactRequest(BaseModel):
    """The trainer's whole contact: what is left out is cleared."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Phone | None = None
    channels: Annotated[list[ChannelName], AfterValidator(_unique)] | None = Field(
        None,
        description="the channels the trainer wants messages on; omitted or null: every channel",
    )
    locale: Locale | None = Field(None, description="omitted: ko")


class CustomerContactRequest(BaseModel):
    """The customer's whole contact: what is left out is cleared."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Phone | None = None
    locale: Locale | None = Field(None, description="omitted: ko")


class PushEndpoint(BaseModel):
    endpoint: str


class ContactOut(BaseModel):
    role: Literal["trainer", "customer"]
    party_id: str = Field(description="the trainer's or the customer's id")
    email: str | None
    phone: str | None
    locale: Locale
    channels: list[str] | None = Field(description="null: every channel")
    push_subscriptions: list[PushEndpoint] = Field(
        description="a trainer's registered browsers (their keys are not shown)"
    )


def _web_url(value: str) -> str:
    """An http(s) URL; which hosts may be named is the route's check (LEDGER_PUSH_ENDPOINTS:
    https push services by default; a test's or a developer's loopback one if listed)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError("endpoint must be an https URL") from None
    scheme_ok = parts.scheme in ("https", "http")
    if not scheme_ok or not parts.hostname or re.search(r"[\s\x00-\x1f\x7f]", value):
        raise ValueError("endpoint must be an https URL")
    return value


def _base64url_bytes(value: str) -> bytes:
    if not _BASE64URL.fullmatch(value):
        raise ValueError("must be base64url")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None


def _unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _p256_point(value: str) -> str:
    raw = _base64url_bytes(value)
    if len(raw) != 65 or raw[0] != 0x04:
        raise ValueError("p256dh must be an uncompressed P-256 point (65 bytes, 0x04 first)")
    x, y = int.from_bytes(raw[1:33]), int.from_bytes(raw[33:])
    # A point off the curve could never be encrypted to: refused now, not at every send.
    if x >= _P or y >= _P or (y * y - (x * x * x - 3 * x + _B)) % _P != 0:
        raise ValueError("p256dh is not a point on the P-256 curve")
    return _unpadded(raw)


def _auth_secret(value: str) -> str:
    raw = _base64url_bytes(value)
    if len(raw) != 16:
        raise ValueError("auth must be 16 bytes, base64url")
    return _unpadded(raw)


class PushKeys(BaseModel):
    p256dh: Annotated[str, Field(max_length=100), AfterValidator(_p256_point)]
    auth: Annotated[str, Field(max_length=30), AfterValidator(_auth_secret)]


class PushSubscriptionRequest(BaseModel):
    """A browser's `PushSubscription.toJSON()`. Unknown fields are ignored, not refused: the
    browser writes this body, and a newer one may add a field."""

    endpoint: Annotated[str, Field(max_length=2048), AfterValidator(_web_url)]
    expirationTime: float | None = Field(  # the browser's own name
        None, ge=0, description="accepted, not kept: an expired endpoint answers 404/410"
    )
    keys: PushKeys


class PushSubscriptionOut(BaseModel):
    trainer_id: str
    endpoint: str
