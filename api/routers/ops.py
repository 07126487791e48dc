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
    """Ready when the store answers; `projections` says how many positions each view is behind."""
    try:
        head = services.ledger.recorder.max_notification_id() or 0
        positions = services.read_models.positions()
    except Exception as exc:  # any store failure means not ready
        return JSONResponse({"ready": False, "error": type(exc).__name__}, status_code=503)
    projections = {
        name: {"position": position, "lag": max(head - position, 0)}
        for name, position in positions.items()
    }
    return JSONResponse({"ready": True, "head_position": head, "projections": projections})


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text: requests and latency per route, head position, projection lag."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
