"""A fake Twilio Messages API: `POST /2010-04-01/Accounts/{sid}/Messages.json`.

Checks Basic auth (20003), the account in the path (20404), the form's `To` (21604 missing,
21211 not E.164), `From` / `MessagingServiceSid` (21603) and `Body` (21602); answers `201`
with a Message resource, or Twilio's error body `{code, message, more_info, status}`.
`fail_next` scripts the next answers (429, 500, 400 …).
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.notify_servers.loopback import HttpAnswer, HttpRequest, LoopbackHttp

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_DEFAULT_ERRORS = {
    400: (21211, "The 'To' number is not a valid phone number."),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service Unavailable"),
}


@dataclass(frozen=True)
class SentSms:
    sid: str
    to: str
    sender: str  # From, or the MessagingServiceSid
    body: str
    idempotency_key: str | None


class FakeTwilio:
    def __init__(self) -> None:
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self.from_number = "+15005550006"  # Twilio's own test "From" that always works
        self.requests: list[HttpRequest] = []  # every request, accepted or not
        self.messages: list[SentSms] = []  # the accepted ones
        self._failures: deque[tuple[int, int, str]] = deque()
        self._lock = threading.Lock()
        self._http = LoopbackHttp(self._answer)
        self.base_url = self._http.base_url

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        self._http.stop()

    def settings_overrides(self) -> dict[str, Any]:
        return {
            "twilio_account_sid": self.account_sid,
            "twilio_auth_token": self.auth_token,
            "twilio_from": self.from_number,
            "twilio_api_base": self.base_url,
        }

    def fail_next(self, n: int, status: int, code: int | None = None, message: str = "") -> None:
        """The next `n` well-formed requests get `status` with Twilio's error body."""
        default_code, default_message = _DEFAULT_ERRORS.get(status, (status * 100, "Error"))
        with self._lock:
            self._failures.extend([(status, code or default_code, message or default_message)] * n)

    def _answer(self, request: HttpRequest) -> HttpAnswer:
        with self._lock:
            self.requests.append(request)
            if request.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
                return _error(404, 20404, "The requested resource was not found")
            if request.headers.get("authorization") != self._expected_auth():
                return _error(401, 20003, "Authenticate")
            if self._failures:
                return _error(*self._failures.popleft())
            form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
            refusal = _invalid(form)
            if refusal is not None:
                return refusal
            return self._accept(form, request.headers.get("idempotency-key"))

    def _accept(self, form: dict[str, str], idempotency_key: str | None) -> HttpAnswer:
        sid = "SM" + secrets.token_hex(16)
        sender = form.get("From") or form["MessagingServiceSid"]
        self.messages.append(SentSms(sid, form["To"], sender, form["Body"], idempotency_key))
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return HttpAnswer.json(201, resource)

    def _expected_auth(self) -> str:
        token = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return f"Basic {token}"


def _invalid(form: dict[str, str]) -> HttpAnswer | None:
    if not form.get("To"):
        return _error(400, 21604, "A 'To' phone number is required.")
    if not _E164.match(form["To"]):
        return _error(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
    if not (form.get("From") or form.get("MessagingServiceSid")):
        return _error(400, 21603, "A 'From' phone number is required.")
    if not form.get("Body"):
        return _error(400, 21602, "Message body is required.")
    return None


def _error(status: int, code: int, message: str) -> HttpAnswer:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return HttpAnswer.json(status, body)
