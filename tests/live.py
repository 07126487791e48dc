"""What tests that need a real server or a condition to become true share."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp

START_SECONDS = 20.0


def until(condition: Callable[[], Any], what: str, seconds: float = 20.0) -> Any:
    """Poll `condition` until it returns something truthy (and return that)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)  # most waits are for the inbox or a view: milliseconds
    pytest.fail(f"not within {seconds} s: {what}")


@contextmanager
def uvicorn_serving(app: ASGIApp) -> Iterator[str]:
    """`app` behind a real uvicorn in a thread, on a free port, lifespan run; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:  # uvicorn sets this flag once the lifespan has run
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start the app (its log is in the captured stderr)")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(START_SECONDS)
        sock.close()
