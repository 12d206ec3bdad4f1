"""/healthz (the process is up), /readyz (its dependencies answer) and /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard_api.auth import MaybeCaller, for_admin
from dashboard_api.deps import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process runs."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: Services, caller: MaybeCaller) -> JSONResponse:
    """Readiness: 200 when every dependency works, else 503 naming the failing ones.

    Open to probes; the error texts (which may name hosts and files) only for an admin.
    """
    checks = await services.readiness()
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {
            name: "ok" if error is None else for_admin(caller, error, "failing")
            for name, error in checks.items()
        },
    }
    return JSONResponse(body, status_code=200 if ready else 503)


# Open like /healthz and /readyz: scrapers, like probes, sit on the internal network
# (README), and the metrics are counts and timings with fixed labels: no hosts, device ids
# or error texts to hide.
@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics (open, for scrapers on the internal network)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
