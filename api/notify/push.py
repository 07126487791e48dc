"""Web Push with VAPID (RFC 8030, 8291, 8292; CONTRACT.md "Telling people").

One encrypted push per browser subscription of the recipient, signed with the VAPID key.
`LEDGER_VAPID_PRIVATE_KEY` accepts the P-256 private key as
- base64url of the raw 32-byte scalar (the "Private Key" of `npx web-push generate-vapid-keys`),
- base64url of its DER encoding (PKCS#8 or SEC 1), as `py_vapid`'s `from_string` reads, or
- PEM text (`vapid --gen`'s private_key.pem), literal `\\n` escapes allowed in a one-line env.
A file path is not accepted: `py_vapid` silently *generates* a new key for a missing file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, VapidException
from pywebpush import WebPushException, webpush

from api.notify.channels import PushSubscription, Recipient, Rendered, SendFailed, Skipped

log = logging.getLogger("ledger.notify")

_GONE = (404, 410)  # the push service forgot this subscription (RFC 8030 §7.3)
_BODY_CHARS = 1000  # a push payload is at most 4096 bytes encrypted; Korean is 3 bytes a char


def load_vapid_key(value: str) -> Vapid:
    """The VAPID key from `LEDGER_VAPID_PRIVATE_KEY` (formats in the module docstring)."""
    text = value.strip().replace("\\n", "\n")
    try:
        vapid = Vapid.from_pem(text.encode()) if "-----BEGIN" in text else Vapid.from_string(text)
    except (ValueError, TypeError, VapidException, UnsupportedAlgorithm) as exc:
        raise ValueError("LEDGER_VAPID_PRIVATE_KEY is not a readable private key") from exc
    key = vapid.private_key
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("LEDGER_VAPID_PRIVATE_KEY must be a P-256 (prime256v1) key")
    return vapid


def application_server_key(vapid: Vapid) -> str:
    """The public key browsers subscribe with (`applicationServerKey`), base64url."""
    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class PushChannel:
    """`on_gone(endpoint)` hears of each subscription the push service no longer knows, so
    its owner can forget it (the contacts store's `remove_push_subscription`)."""

    name = "push"

    def __init__(
        self,
        vapid_private_key: str,
        vapid_subject: str,
        timeout: float,
        on_gone: Callable[[str], None] | None = None,
        ttl_seconds: int = 86400,
    ) -> None:
        if not vapid_subject.startswith(("mailto:", "https:")):
            raise ValueError("LEDGER_VAPID_SUBJECT must be a mailto: or https: URL (RFC 8292)")
        self._vapid = load_vapid_key(vapid_private_key)
        self._subject = vapid_subject
        self._timeout = timeout
        self._on_gone = on_gone
        self._ttl = ttl_seconds
        self._session = requests.Session()

    @property
    def application_server_key(self) -> str:
        return application_server_key(self._vapid)

    def close(self) -> None:
        self._session.close()

    def send(self, recipient: Recipient, message: Rendered) -> str | None:
        if not recipient.push:
            raise Skipped("no_contact")
        data = json.dumps(_payload(message), ensure_ascii=False)
        topic = _topic(message.message_id)
        _verdict([self._push(sub, data, topic) for sub in recipient.push])
        return None  # several browsers, no one id

    def _push(self, sub: PushSubscription, data: str, topic: str) -> bool | SendFailed:
        """True: accepted; False: gone; else why not."""
        try:
            webpush(
                subscription_info={"endpoint": sub.endpoint, "keys": _keys(sub)},
                data=data,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self._subject},  # fresh: webpush writes aud and exp in
                ttl=self._ttl,
                timeout=self._timeout,
                headers={"Topic": topic},
                requests_session=self._session,
            )
        except WebPushException as exc:
            return self._refused(sub, exc)
        except requests.RequestException as exc:
            return SendFailed(f"push unreachable: {type(exc).__name__}: {exc}")
        except ValueError as exc:  # keys that are not base64url or not a P-256 point
            return SendFailed(f"push subscription unusable: {exc}", permanent=True)
        return True

    def _refused(self, sub: PushSubscription, exc: WebPushException) -> bool | SendFailed:
        status: int | None = exc.response.status_code if exc.response is not None else None
        if status in _GONE:
            self._gone(sub.endpoint)
            return False
        temporary = status is not None and (status in (408, 429) or status >= 500)
        reason = f"push {status or '-'}: {exc.message}".splitlines()[0]
        return SendFailed(reason, permanent=not temporary)

    def _gone(self, endpoint: str) -> None:
        if self._on_gone is None:
            return
        try:
            self._on_gone(endpoint)
        except Exception:  # best effort: the next send finds it gone again
            host = urlsplit(endpoint).netloc  # the endpoint itself is the browser's capability
            log.exception("could not forget an expired push subscription at %s", host)


def _verdict(outcomes: list[bool | SendFailed]) -> None:
    """One browser refusing for now retries them all (the Topic makes the push service
    replace a copy still pending); a permanent refusal only counts if none accepted."""
    failures = [o for o in outcomes if isinstance(o, SendFailed)]
    temporary = [f.reason for f in failures if not f.permanent]
    if temporary:
        raise SendFailed("; ".join(temporary))
    if any(o is True for o in outcomes):
        for failure in failures:
            log.warning("push refused by one of several browsers: %s", failure.reason)
        return None
    if failures:
        raise SendFailed("; ".join(f.reason for f in failures), permanent=True)
    raise Skipped("no_contact")  # every subscription was gone


def _payload(message: Rendered) -> dict[str, Any]:
    body = message.text if len(message.text) <= _BODY_CHARS else message.text[:_BODY_CHARS] + "…"
    core = {"title": message.subject, "body": body, "url": message.url}
    return {**message.data, **core, "message_id": message.message_id}


def _topic(message_id: str) -> str:
    # RFC 8030 §5.4: at most 32 base64url characters; the same for every attempt.
    digest = hashlib.sha256(message_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def _keys(sub: PushSubscription) -> dict[str, str]:
    return {"p256dh": sub.p256dh, "auth": sub.auth}
