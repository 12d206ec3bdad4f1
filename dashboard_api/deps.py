"""What the API needs from the rest of Sigap, injected by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from devices.registry import DeviceRegistry
from devices.schemas import DeviceCreate
from dispatch.broadcast import AlertBroadcaster
from dispatch.store import AlertStore
from ingest.rejected import RejectedStore
from rules.engine import BinStatus


class ReadingQuery(Protocol):
    """Reads stored readings back (InfluxDB in production)."""

    async def readings(
        self, device_id: str, since: datetime | None, until: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """Readings of one device, newest first."""
        ...


# name -> None when healthy, or the error text.
ReadinessCheck = Callable[[], Awaitable[dict[str, str | None]]]


@dataclass
class ApiServices:
    """Everything the routers use; built by the composition root (sigap.runtime)."""

    devices: DeviceRegistry
    alerts: AlertStore
    broadcaster: AlertBroadcaster
    readings: ReadingQuery
    rejected: RejectedStore
    readiness: ReadinessCheck
    last_seen: Callable[[str], datetime | None]  # freshest arrival time ingest knows of
    bin_status: Callable[[str], BinStatus | None] = lambda _id: None
    check_device: Callable[[DeviceCreate], None] = lambda _device: None  # ValueError if unusable


def get_services(request: Request) -> ApiServices:
    """The services attached to the app at start-up."""
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(get_services)]
