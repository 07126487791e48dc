"""A Web Push service on a loopback port, and the browsers subscribed to it.

`subscribe()` makes a browser: an ECDH P-256 key pair and a 16-byte auth secret, as
`PushManager.subscribe()` does, with an endpoint on this server. A push to it is checked as
push services and browsers do (RFC 8030, 8291, 8292): the VAPID JWT's signature against
this service's VAPID key, its `aud` and `sub` and `exp`, a `TTL`, `aes128gcm`; then the body is
decrypted with the browser's private key and kept, parsed, in `received`. Scripted: `expire`
(410 Gone from then on) and `fail_next` (429, 500 …).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from api.notify.channels import PushSubscription
from tests.notify_servers.loopback import HttpAnswer, HttpRequest, LoopbackHttp


@dataclass(frozen=True)
class ReceivedPush:
    endpoint: str
    headers: dict[str, str]  # names lower-cased: ttl, topic, authorization …
    payload: dict[str, Any]  # the decrypted JSON
    vapid_claims: dict[str, Any]  # the verified JWT's claims


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class _Browser:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes


class PushService:
    vapid_subject = "mailto:ops@ledger.test"

    def __init__(self) -> None:
        self._vapid = ec.generate_private_key(ec.SECP256R1())
        # What LEDGER_VAPID_PRIVATE_KEY takes: base64url of the raw 32-byte private scalar.
        self.vapid_private_key = _b64(self._vapid.private_numbers().private_value.to_bytes(32))
        self.vapid_public_key = _b64(_point(self._vapid.public_key()))
        self.received: list[ReceivedPush] = []
        self._browsers: dict[str, _Browser] = {}
        self._expired: set[str] = set()
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._http = LoopbackHttp(self._answer)
        self.base_url = self._http.base_url

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        self._http.stop()

    def settings_overrides(self) -> dict[str, Any]:
        return {
            "vapid_private_key": self.vapid_private_key,
            "vapid_subject": self.vapid_subject,
            "push_endpoints": (f"{self.base_url}/push/",),  # LEDGER_PUSH_ENDPOINTS
        }

    def subscribe(self) -> PushSubscription:
        """A new browser's subscription (what it would POST to the ledger)."""
        key, auth = ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
        path = f"/push/{secrets.token_urlsafe(12)}"
        with self._lock:
            self._browsers[path] = _Browser(key, auth)
        return PushSubscription(self.base_url + path, _b64(_point(key.public_key())), _b64(auth))

    def expire(self, subscription: PushSubscription) -> None:
        """The browser unsubscribed: its endpoint answers 410 Gone from now on."""
        with self._lock:
            self._expired.add(subscription.endpoint.removeprefix(self.base_url))

    def fail_next(self, n: int, status: int = 429) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def pushes_to(self, subscription: PushSubscription) -> list[ReceivedPush]:
        with self._lock:
            return [push for push in self.received if push.endpoint == subscription.endpoint]

    def _answer(self, request: HttpRequest) -> HttpAnswer:
        with self._lock:
            browser = self._browsers.get(request.path)
            if browser is None or request.path in self._expired:
                return HttpAnswer(404 if browser is None else 410)
            if self._failures:
                return HttpAnswer(self._failures.popleft())
            try:
                push = self._open(request, browser)
            except _Refused as refused:
                return HttpAnswer(refused.status, str(refused).encode())
            self.received.append(push)
            location = f"{self.base_url}/message/{len(self.received)}"
            return HttpAnswer(201, headers={"Location": location})

    def _open(self, request: HttpRequest, browser: _Browser) -> ReceivedPush:
        try:
            claims = self._verify_vapid(request.headers.get("authorization", ""))
        except (ValueError, KeyError, InvalidSignature) as exc:  # push services answer 403
            raise _Refused(403, f"VAPID: {exc!r}") from exc
        encoding = request.headers.get("content-encoding")
        if "ttl" not in request.headers or encoding != "aes128gcm":
            raise _Refused(400, "TTL and Content-Encoding: aes128gcm required")
        try:
            payload = _decrypt(request.body, browser)
        except (http_ece.ECEException, InvalidTag, ValueError) as exc:
            raise _Refused(400, f"the browser could not decrypt it: {exc!r}") from exc
        return ReceivedPush(self.base_url + request.path, request.headers, payload, claims)

    def _verify_vapid(self, authorization: str) -> dict[str, Any]:
        """RFC 8292 `vapid t=<JWT>, k=<public key>`: ES256 signed with our VAPID key."""
        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        if scheme.lower() != "vapid" or fields["k"] != self.vapid_public_key:
            raise ValueError("not this service's VAPID key")
        signed, _, signature = fields["t"].rpartition(".")
        raw = _unb64(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
        self._vapid.public_key().verify(der, signed.encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(_unb64(signed.split(".")[1]))
        if claims["aud"] != self.base_url or claims["sub"] != self.vapid_subject:
            raise ValueError(f"wrong audience or subject: {claims}")
        if not time.time() < claims["exp"] <= time.time() + 86400:
            raise ValueError(f"exp outside the next 24 hours: {claims}")  # RFC 8292 §2
        return claims


def _decrypt(body: bytes, browser: _Browser) -> dict[str, Any]:
    plain = http_ece.decrypt(
        body, private_key=browser.private_key, auth_secret=browser.auth_secret, version="aes128gcm"
    )
    payload: dict[str, Any] = json.loads(plain)
    return payload


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
