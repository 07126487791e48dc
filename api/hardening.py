"""What every answer carries, whatever route made it: a request id, no caching of JSON, no
content sniffing; and a last line of defence that turns an unexpected exception into the
contract's error body instead of Starlette's plain-text "Internal Server Error"."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.transcoding import json_utf8

log = logging.getLogger("ledger.api")

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's own request id is kept when it is short and plain, so logs on both sides match.
_CALLER_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class SafeJSONResponse(JSONResponse):
    """JSON that can carry any text the ledger holds.

    Starlette encodes with UTF-8 strictly, so an unpaired surrogate (valid in JSON's
    `\\udXXX` escapes, and thus in a provider's text or an old event) made the answer a
    500. Such a code point is written back as its JSON escape; all other text is unchanged.
    """

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return json_utf8(text)


def _request_id(scope: Scope) -> str:
    given = dict(scope["headers"]).get(REQUEST_ID_HEADER.lower().encode(), b"")
    text = given.decode("latin-1")
    return text if _CALLER_REQUEST_ID.match(text) else uuid.uuid4().hex


class Hardening:
    """Adds the headers below to every HTTP answer and answers an escaped exception with
    `500 {"error": {"code": "internal_error", "message", "request_id"}}`, logging its
    traceback once (it is not re-raised, so the server does not log it again)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = _with_headers(message.get("headers", []), request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("request %s %s failed (%s)", scope["method"], scope["path"], request_id)
            if not started:  # else the client already has a status; the connection just ends
                await _internal_error(request_id)(scope, receive, send_with_headers)


def _with_headers(headers: Any, request_id: str) -> list[tuple[bytes, bytes]]:
    result = list(headers)
    names = {name.lower() for name, _ in result}
    content_type = next((v for n, v in result if n.lower() == b"content-type"), b"")
    wanted = [
        (b"x-request-id", request_id.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if content_type.startswith(b"application/json"):
        # Payment data must not sit in a shared or browser cache.
        wanted.append((b"cache-control", b"no-store"))
    result.extend((name, value) for name, value in wanted if name not in names)
    return result


def _internal_error(request_id: str) -> SafeJSONResponse:
    body = {
        "error": {
            "code": "internal_error",
            "message": f"unexpected error; quote request id {request_id}",
            "request_id": request_id,
        }
    }
    return SafeJSONResponse(body, status_code=500)
