"""Operations: liveness and readiness (with each projection's lag)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when the store answers in time and every view is running and keeping up;
    `projections` says how many positions each view is behind."""
    timeout = services.settings.readyz_timeout_seconds
    head = services.ledger.recorder.max_notification_id
    try:
        report = services.read_models.readiness(lambda: head() or 0, timeout)
    except TimeoutError:
        return _not_ready("store_unavailable", f"the store did not answer within {timeout:g} s")
    except Exception as exc:  # any store failure means not ready
        return _not_ready("store_unavailable", f"the store failed: {type(exc).__name__}")
    projections = {
        name: {"position": position, "lag": report.lag(name)}
        for name, position in report.positions.items()
    }
    body = {"ready": True, "head_position": report.head, "projections": projections}
    if not report.problems:
        return JSONResponse(body)
    message = "; ".join(f"{name}: {why}" for name, why in report.problems.items())
    not_ready = {"code": "projections_not_ready", "message": message}
    return JSONResponse({**body, "ready": False, "error": not_ready}, status_code=503)


def _not_ready(code: str, message: str) -> JSONResponse:
    body = {"ready": False, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text: requests and latency per route, head position, projection lag."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
