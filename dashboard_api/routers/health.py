"""/healthz (the process is up), /readyz (its dependencies answer) and /metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from dashboard_api.auth import MaybeCaller, for_admin
from dashboard_api.deps import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: answers while the process runs."""
    return {"status": "ok"}


class Readiness(BaseModel):
    """Whether every dependency answers, and each one's state."""

    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(
        description="Each dependency: ok, or failing (why, to an admin)."
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is failing."}},
)
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
@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus metrics (open, for scrapers on the internal network)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
