"""A loopback HTTP server whose answers a plain function decides.

Built as tests/fake_providers.py is, on stdlib `ThreadingHTTPServer` in a thread: no event
loop to manage from a test, synchronous shutdown, HTTP/1.0 so no keep-alive thread outlives
`stop()`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, body: dict[str, Any], **headers: str) -> HttpAnswer:
        payload = json.dumps(body, ensure_ascii=False).encode()
        return cls(status, payload, {"Content-Type": "application/json", **headers})


Answer = Callable[[HttpRequest], HttpAnswer]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # the servers record what they received themselves

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.answer(HttpRequest(self.command, self.path, headers, body))
        self.send_response(answer.status)
        for name, value in {"Content-Length": str(len(answer.body)), **answer.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST


class LoopbackHttp:
    """Serves `answer` on 127.0.0.1 at a free port from `start()` to `stop()`."""

    def __init__(self, answer: Answer) -> None:
        self._server = _Server(answer)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Idempotent: a test may stop it (the service is down) before its fixture does."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
