"""/healthz (the process is up), /readyz (its dependencies answer) and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard_api.deps import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process runs."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: Services) -> JSONResponse:
    """Readiness: 200 when the broker, InfluxDB and SQL all answer, else 503 with the reasons."""
    checks = await services.readiness()
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: error or "ok" for name, error in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
