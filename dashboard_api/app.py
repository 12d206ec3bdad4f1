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


def create_app(lifespan: Lifespan | None = None, services: ApiServices | None = None) -> FastAPI:
    """Build the app; the lifespan (from the composition root) attaches `app.state.services`."""
    app = FastAPI(
        title="Sigap",
        summary="Fire and waste-bin alerts for Kotawaringin Timur",
        version="0.1.0",
        lifespan=lifespan,
    )
    if services is not None:
        app.state.services = services
    # Every /api/v1 endpoint needs a bearer token (any role may read); writes check
    # their role on top. /healthz, /readyz and /metrics stay open for probes and scrapers.
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(authenticated)])
    api.include_router(devices.router)
    api.include_router(gateways.router)
    api.include_router(credentials.router)
    api.include_router(cap.router)  # before alerts: /alerts/cap is not an alert id
    api.include_router(alerts.router)
    api.include_router(incidents.router)
    api.include_router(bins.router)
    api.include_router(ingest.router)
    api.include_router(stations.router)
    api.include_router(routes.router)
    api.include_router(webhooks.router)
    api.include_router(tokens.router)
    app.include_router(api)
    app.include_router(health.router)
    return app
