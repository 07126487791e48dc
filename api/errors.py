"""The one mapping from errors to the contract's `{"error": {code, message}}` bodies."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.hardening import SafeJSONResponse
from ledger.errors import (
    AmountMismatchError,
    ConflictError,
    LedgerError,
    NotFoundError,
    ProviderError,
    ProviderRefusedError,
    ProviderUnavailableError,
)

log = logging.getLogger("ledger.api")

# Most specific first: isinstance order matters.
_STATUS_BY_ERROR: list[tuple[type[LedgerError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (AmountMismatchError, 400),
    (ProviderError, 402),
    (ProviderUnavailableError, 502),
]


class ApiError(Exception):
    """An HTTP-level refusal that is not a domain rule (auth, signature, size)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})  # e.g. Retry-After


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return SafeJSONResponse({"error": body}, status_code=status)


def status_for(error: LedgerError) -> int:
    return next((s for cls, s in _STATUS_BY_ERROR if isinstance(error, cls)), 400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    def _ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        status = status_for(exc)
        log.info("refused %s %s: %s %s", request.method, request.url.path, exc.code, exc.message)
        if isinstance(exc, ProviderRefusedError):  # whose code it is: the page names them
            return error_response(status, exc.code, exc.message, details={"provider": exc.provider})
        return error_response(status, exc.code, exc.message)

    @app.exception_handler(ApiError)
    def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        log.info("refused %s %s: %s %s", request.method, request.url.path, exc.code, exc.message)
        response = error_response(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        invalid_json = any(d["type"] == "json_invalid" for d in details)
        code = "malformed_json" if invalid_json else "validation_error"
        message = "; ".join(f"{'.'.join(d['loc'][1:]) or 'body'}: {d['msg']}" for d in details)
        log.info("refused %s %s: %s %s", request.method, request.url.path, code, message)
        return error_response(422, code, message, details=details)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))
