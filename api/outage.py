"""A store that cannot be reached is answered `503 store_unavailable` with `Retry-After`.

Fast: a request waits LEDGER_DB_CONNECT_TIMEOUT_SECONDS for a connection, once
(store/pg_factory.py stops the library's retries from multiplying that wait), well within
the 10 s Toss allows a webhook; and a 5xx makes both providers deliver again later.
"""

from __future__ import annotations

import logging

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.errors import error_response

log = logging.getLogger("ledger.api")

RETRY_AFTER_SECONDS = 5
# What surfaces when the store is away: the pool's PoolTimeout (a psycopg
# OperationalError), or the library's wrappers once its retries on dead connections ran
# out. (SQLite's "database is locked" is one of the library's OperationalErrors too.)
UNREACHABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    OperationalError,
    InterfaceError,
)


def install_outage_handlers(app: FastAPI) -> None:
    for error_class in UNREACHABLE:
        app.add_exception_handler(error_class, _store_unavailable)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    # One line, no traceback: an outage fails every request alike.
    first_line = next(iter(str(exc).splitlines()), "")
    log.warning("store unavailable for %s %s: %s: %s",
                request.method, request.url.path, type(exc).__name__, first_line)  # fmt: skip
    response: JSONResponse = error_response(
        503, "store_unavailable", "the store cannot be reached; retry later"
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
