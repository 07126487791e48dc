"""SMS through a Twilio-compatible Messages API (CONTRACT.md "Telling people").

`POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`, `From`
(or `MessagingServiceSid` when `TWILIO_FROM` names a Messaging Service, `MG…`), `Body`, with
HTTP Basic auth (account sid, auth token); Twilio answers `201` with the Message's `sid`, or
an error `{code, message, more_info, status}`
(https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from api.notify.channels import Recipient, Rendered, SendFailed, Skipped


class SmsChannel:
    name = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str,
        timeout: float,
    ) -> None:
        self._path = f"/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        sender_field = "MessagingServiceSid" if from_number.startswith("MG") else "From"
        self._sender = {sender_field: from_number}
        self._http = httpx.Client(
            base_url=api_base.rstrip("/"), auth=(account_sid, auth_token), timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def send(self, recipient: Recipient, message: Rendered) -> str | None:
        """Returns the Message's `sid`."""
        if not recipient.phone:
            raise Skipped("no_contact")
        form = {"To": recipient.phone, **self._sender, "Body": message.sms}
        # Twilio documents no idempotency header for creating a Message (its
        # I-Twilio-Idempotency-Token is what Twilio's own webhooks carry), so this sends the
        # common `Idempotency-Key`: Twilio-compatible gateways that dedupe read it, Twilio
        # ignores it. Same message id on every attempt.
        headers = {"Idempotency-Key": message.message_id}
        try:
            answer = self._http.post(self._path, data=form, headers=headers)
        except httpx.HTTPError as exc:  # refused, reset, timed out: it may pass later
            raise SendFailed(f"twilio unreachable: {type(exc).__name__}: {exc}") from exc
        return _accepted(answer)


def _accepted(answer: httpx.Response) -> str | None:
    body = _json(answer)
    if answer.is_success:
        sid = body.get("sid")
        return sid if isinstance(sid, str) else None
    status = answer.status_code
    reason = f"twilio {status} {body.get('code', '-')}: {body.get('message', answer.reason_phrase)}"
    # 429 and 5xx may pass later; 401 too: the account's credentials are wrong for every
    # message alike, and retrying delivers them once an operator fixes the token. Any other
    # 4xx (21211 invalid number, 21610 opted out…) will never pass for this message.
    temporary = status in (401, 408, 429) or status >= 500 or status < 400
    raise SendFailed(reason, permanent=not temporary)


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
