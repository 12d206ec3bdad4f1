"""The FastAPI application: REST under /api/v1, health and metrics at the root."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import APIRouter, Depends, FastAPI

from dashboard_api.auth import authenticated
from dashboard_api.deps import ApiServices
from dashboard_api.routers import (
    alerts,
    bins,
    cap,
    credentials,
    devices,
    gateways,
    health,
    incidents,
    ingest,
    routes,
    stations,
    tokens,
    webhooks,
)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    lifespan: Lifespan | None = None, services: ApiServices | None = None, *, api: bool = True
) -> FastAPI:
    """Build the app; the lifespan (from the composition root) attaches `app.state.services`.

    `api=False` is an ingest worker's app: /healthz, /readyz and /metrics only.
    """
    app = FastAPI(
        title="Sigap",
        summary="Fire and waste-bin alerts for Kotawaringin Timur",
        version="0.1.0",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    app.include_router(health.router)
    if not api:
        return app
    # Every /api/v1 endpoint needs a bearer token (any role may read); writes check
    # their role on top. /healthz, /readyz and /metrics stay open for probes and scrapers.
    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(authenticated)])
    v1.include_router(devices.router)
    v1.include_router(gateways.router)
    v1.include_router(credentials.router)
    v1.include_router(cap.router)  # before alerts: /alerts/cap is not an alert id
    v1.include_router(alerts.router)
    v1.include_router(incidents.router)
    v1.include_router(bins.router)
    v1.include_router(ingest.router)
    v1.include_router(stations.router)
    v1.include_router(routes.router)
    v1.include_router(webhooks.router)
    v1.include_router(tokens.router)
    app.include_router(v1)
    return app
