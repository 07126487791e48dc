"""Bearer tokens: admin and auditor tokens from settings, trainer tokens signed with
LEDGER_SECRET_KEY (`ledger token trainer ID`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ServicesDep
from api.errors import ApiError
from ledger.settings import Settings

TRAINER_TOKEN_PREFIX = "tr1"


@dataclass(frozen=True)
class Principal:
    role: str  # "admin" | "auditor" | "trainer"
    trainer_id: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue_trainer_token(settings: Settings, trainer_id: str, ttl_days: int = 365) -> str:
    if settings.secret_key is None:
        raise ValueError("LEDGER_SECRET_KEY is not set; trainer tokens cannot be signed")
    claims = {"sub": trainer_id, "exp": int(time.time()) + ttl_days * 86400}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _signature(settings.secret_key.get_secret_value(), payload)
    return f"{TRAINER_TOKEN_PREFIX}.{payload}.{signature}"


def _trainer_from_token(settings: Settings, token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TRAINER_TOKEN_PREFIX or settings.secret_key is None:
        return None
    expected = _signature(settings.secret_key.get_secret_value(), parts[1])
    if not hmac.compare_digest(expected, parts[2]):
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return None
    if not isinstance(claims, dict) or int(claims.get("exp", 0)) < time.time():
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None


def _matches(configured: object, token: str) -> bool:
    secret = getattr(configured, "get_secret_value", lambda: None)()
    return bool(secret) and hmac.compare_digest(str(secret).encode(), token.encode())


# Declares `bearerAuth` in the OpenAPI schema (Swagger UI's Authorize button) on every route
# that depends on it; auto_error=False keeps the refusals below, in the contract's body.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="The admin or auditor token (LEDGER_ADMIN_TOKEN, LEDGER_AUDITOR_TOKEN), "
    "or a trainer's token from `ledger token trainer TRAINER_ID`.",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def _bearer(credentials: BearerCredentials) -> str:
    # None: no Authorization header, another scheme, or an empty token.
    if credentials is None:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    return credentials.credentials


def current_principal(token: Annotated[str, Depends(_bearer)], services: ServicesDep) -> Principal:
    settings = services.settings
    if _matches(settings.admin_token, token):
        return Principal("admin")
    if _matches(settings.auditor_token, token):
        return Principal("auditor")
    trainer_id = _trainer_from_token(settings, token)
    if trainer_id is not None:
        return Principal("trainer", trainer_id)
    raise ApiError(401, "unauthorized", "the bearer token is not valid")


def _admin_configured(services: ServicesDep) -> None:
    # Contract: admin routes answer 503 until an admin token is configured.
    if services.settings.admin_token is None:
        raise ApiError(503, "admin_not_configured", "LEDGER_ADMIN_TOKEN is not set")


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def admin_reader(_: Annotated[None, Depends(_admin_configured)], who: PrincipalDep) -> Principal:
    """Admin, or auditor (read-only)."""
    if who.role not in ("admin", "auditor"):
        raise ApiError(403, "forbidden", "admin or auditor role required")
    return who


def admin_writer(_: Annotated[None, Depends(_admin_configured)], who: PrincipalDep) -> Principal:
    if who.role != "admin":
        raise ApiError(403, "forbidden", "admin role required")
    return who


def auditor(who: PrincipalDep) -> Principal:
    if who.role not in ("admin", "auditor"):
        raise ApiError(403, "forbidden", "auditor or admin role required")
    return who


def trainer_or_admin(trainer_id: str, who: PrincipalDep) -> Principal:
    """The trainer named in the path, or an admin."""
    if who.role == "admin" or (who.role == "trainer" and who.trainer_id == trainer_id):
        return who
    raise ApiError(403, "forbidden", "this inbox belongs to another trainer")


AdminReader = Annotated[Principal, Depends(admin_reader)]
AdminWriter = Annotated[Principal, Depends(admin_writer)]
Auditor = Annotated[Principal, Depends(auditor)]
TrainerOrAdmin = Annotated[Principal, Depends(trainer_or_admin)]
