"""The API documentation: `/docs` (Swagger UI served from this package, since admin networks
often have no internet and FastAPI's page loads it from a CDN), and the OpenAPI schema's
error bodies, which FastAPI would otherwise describe as its own `{detail}` shape."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from api.errors import ApiError

STATIC_DIR = Path(__file__).parent / "docs_static"  # swagger-ui-dist, see its README.md
STATIC_PREFIX = "/docs/static/"
# Only these files are served: no part of a request becomes a path on disk.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# Swagger UI's default validator badge would send the schema's address to swagger.io.
SWAGGER_PARAMETERS = {"validatorUrl": None}
PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _example(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


_ID = "5f0c3a9e2b7d4e1f8a6c0b3d9e2f7a41"
_INVALID = "Input should be a valid integer, unable to parse string as an integer"
# What each error status this module adds means here, and one real body of it.
ERROR_RESPONSES: dict[str, tuple[str, dict[str, Any]]] = {
    "401": (
        "`unauthorized`: no bearer token, or not a valid one",
        _example("unauthorized", "a bearer token is required"),
    ),
    "403": (
        "`forbidden`: this token's role may not use this route",
        _example("forbidden", "admin role required"),
    ),
    "413": (
        "`payload_too_large`: the body exceeds LEDGER_MAX_BODY_BYTES",
        _example("payload_too_large", "request body exceeds 262144 bytes"),
    ),
    "422": (
        "`validation_error` (`details`: one item per problem) or `malformed_json`",
        _example(
            "validation_error",
            f"amount: {_INVALID}",
            details=[{"loc": ["body", "amount"], "msg": _INVALID, "type": "int_parsing"}],
        ),
    ),
    "4XX": (
        "Any other refusal: `code` says which (e.g. `not_found`, `amount_mismatch`)",
        _example("not_found", "Not Found"),
    ),
    "500": (
        "`internal_error`: unexpected; quote `request_id` when reporting it",
        _example("internal_error", f"unexpected error; quote request id {_ID}", request_id=_ID),
    ),
    "503": (
        "`store_unavailable` (retry after `Retry-After` seconds), a setting this route needs "
        "is missing (`admin_not_configured`, `webhook_not_configured`), or a `min_position` "
        "read timed out (`projection_lagging`)",
        _example("store_unavailable", "the store cannot be reached; retry later"),
    ),
}
_SCHEMA = "#/components/schemas/"
ERROR_SCHEMAS: dict[str, Any] = {
    "ErrorBody": {
        "type": "object",
        "description": "Every error answer's body; nothing else is in it.",
        "required": ["error"],
        "properties": {"error": {"$ref": _SCHEMA + "ErrorDetail"}},
        "additionalProperties": False,
    },
    "ErrorDetail": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "Stable and machine-readable"},
            "message": {"type": "string", "description": "For people; its wording may change"},
            "details": {
                "description": "Validation errors: one item per problem; others: an object",
                "anyOf": [
                    {"type": "array", "items": {"$ref": _SCHEMA + "ValidationIssue"}},
                    {"type": "object"},
                ],
            },
            "request_id": {"type": "string", "description": "`internal_error` only"},
        },
    },
    "ValidationIssue": {
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"type": "string"}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
    },
    "NotReady": {
        "type": "object",
        "description": "`/readyz` when not ready: the readiness report, and why.",
        "required": ["ready", "error"],
        "properties": {
            "ready": {"const": False},
            "head_position": {"type": "integer"},
            "projections": {"type": "object"},
            "error": {"$ref": _SCHEMA + "ErrorDetail"},
        },
    },
}
# The one route whose error body is not ErrorBody (ops.py: the report comes with the error).
SPECIAL_RESPONSES = {
    ("/readyz", "get"): {
        "503": {
            "description": "`store_unavailable` or `projections_not_ready`",
            "content": {"application/json": {"schema": {"$ref": _SCHEMA + "NotReady"}}},
        }
    }
}

static_router = APIRouter(include_in_schema=False)


@static_router.get(STATIC_PREFIX + "{name}")
def docs_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", f"no docs asset {name}")
    # no-cache: revalidated by ETag, so an upgraded Swagger UI is never served stale.
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=PAGE_HEADERS)


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` and its assets, and document error bodies in `app.openapi()`.
    The app is built with `docs_url=None, redoc_url=None`: FastAPI's pages use a CDN."""
    html = swagger_page_html(app.openapi_url or "/openapi.json", f"{app.title} — API docs")
    headers = {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(html)}

    @app.get("/docs", include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    app.include_router(static_router)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:  # built once, on the first request for it
            app.openapi_schema = with_error_bodies(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def swagger_page_html(openapi_url: str, title: str) -> str:
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=STATIC_PREFIX + "swagger-ui-bundle.js",
        swagger_css_url=STATIC_PREFIX + "swagger-ui.css",
        swagger_favicon_url=STATIC_PREFIX + "favicon-32x32.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )
    return bytes(page.body).decode()


def content_security_policy(html: str) -> str:
    """Only our own files run, and FastAPI's inline start-up script, allowed by its hash
    (computed from the page itself, so a FastAPI upgrade cannot break it silently)."""
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    hashes = [base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in inline]
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in hashes)])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def with_error_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation's error responses carry ErrorBody, the one body errors.py renders;
    FastAPI's `HTTPValidationError` is gone (errors.py renders 422s as ErrorBody too)."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(copy.deepcopy(ERROR_SCHEMAS))
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                _document_errors(path, method, operation)
    return schema


def _document_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.update(copy.deepcopy(SPECIAL_RESPONSES.get((path, method), {})))
    for status, response in responses.items():
        if status.startswith(("4", "5")):
            _with_error_body(status, response)
    for status in _error_statuses(path, operation):
        responses.setdefault(status, _error_response(status))
    operation["responses"] = dict(sorted(responses.items()))


def _error_statuses(path: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["500"]  # api/hardening.py: whatever escapes a route
    if path.startswith("/api/"):
        statuses += ["4XX", "503"]
    if "security" in operation:
        statuses += ["401", "403"]
    if "requestBody" in operation:
        statuses += ["413", "422"]
    return statuses


def _with_error_body(status: str, response: dict[str, Any]) -> None:
    content = response.setdefault("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None or schema.get("$ref", "").endswith("/HTTPValidationError"):
        content["application/json"] = _error_content(status)
    if response.get("description") == "Validation Error":  # FastAPI's own wording
        response["description"] = ERROR_RESPONSES["422"][0]


def _error_response(status: str) -> dict[str, Any]:
    content = {"application/json": _error_content(status)}
    return {"description": ERROR_RESPONSES[status][0], "content": content}


def _error_content(status: str) -> dict[str, Any]:
    """ErrorBody, with an example where this module knows the status (Swagger UI would
    otherwise show every optional field at once)."""
    if status not in ERROR_RESPONSES:  # a route's own status: its description says the codes
        return {"schema": ERROR_REF}
    return {"schema": ERROR_REF, "example": copy.deepcopy(ERROR_RESPONSES[status][1])}
