"""What the API needs from the rest of Sigap, injected by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request, status

from contract.bins import BinStatus
from dashboard_api.access import Authenticator
from dashboard_api.console.sessions import SessionStore
from devices.provisioning import BrokerAccounts
from devices.registry import DeviceRegistry
from devices.schemas import DeviceCreate
from dispatch.broadcast import AlertBroadcaster
from dispatch.service import AlertService
from dispatch.stations.registry import StationRegistry
from dispatch.store import AlertStore
from dispatch.webhooks import WebhookOutbox
from ingest.rejected import RejectedStore
from pickup_routes.service import RouteService
from rules.haze import RegionHaze


class ReadingQuery(Protocol):
    """Reads stored readings back (InfluxDB in production)."""

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """Readings of one device, newest first."""
        ...


# name -> None when healthy, or the error text.
ReadinessCheck = Callable[[], Awaitable[dict[str, str | None]]]


@dataclass(frozen=True)
class MapTiles:
    """A tile layer for the console's map: an XYZ URL template and its attribution."""

    url: str
    attribution: str = ""


@dataclass
class ApiServices:
    """Everything the routers use; built by the composition root (sigap.runtime)."""

    devices: DeviceRegistry
    alerts: AlertStore
    broadcaster: AlertBroadcaster
    readings: ReadingQuery | None  # None: no reading store here (GET .../readings: 503)
    rejected: RejectedStore
    readiness: ReadinessCheck
    last_seen: Callable[[str], datetime | None]  # freshest arrival time ingest knows of
    bin_status: Callable[[str], BinStatus | None] = lambda _id: None
    check_device: Callable[[DeviceCreate], None] = lambda _device: None  # ValueError if unusable
    alert_service: AlertService | None = None  # people's actions; built from alerts if None
    webhooks: WebhookOutbox | None = None
    # Regional haze as the rule engine estimated it last (GET /haze); None: not here.
    haze: Callable[[], list[RegionHaze]] | None = None
    cap_sender: str = "sigap@kotimkab.go.id"  # the CAP <sender> of every document
    stations: StationRegistry | None = None
    routes: RouteService | None = None
    auth: Authenticator | None = None  # None: every /api/v1 endpoint answers 503
    accounts: BrokerAccounts | None = None  # device MQTT logins; None: not managed here
    console: SessionStore | None = None  # console sign-ins; built on auth's database if None
    map_tiles: MapTiles | None = None  # the console map's tile layer; None: a plain map

    def dispatch(self) -> AlertService:
        """The alert service that records people's actions and notifies every channel."""
        if self.alert_service is None:
            self.alert_service = AlertService(self.alerts, self.broadcaster)
        return self.alert_service

    def console_sessions(self) -> SessionStore | None:
        """The console's session store (None, like auth, when the API has no tokens)."""
        if self.console is None and self.auth is not None:
            self.console = SessionStore(self.auth.store.sessions)
        return self.console


def get_services(request: Request) -> ApiServices:
    """The services attached to the app at start-up."""
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(get_services)]


def get_stations(services: Services) -> StationRegistry:
    """The stations registry (503 when this process runs without one)."""
    if services.stations is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "stations are not available")
    return services.stations


def get_routes(services: Services) -> RouteService:
    """The route planner and stop records (503 when this process runs without them)."""
    if services.routes is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "routes are not available")
    return services.routes


Stations = Annotated[StationRegistry, Depends(get_stations)]
Routes = Annotated[RouteService, Depends(get_routes)]
