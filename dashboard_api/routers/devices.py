"""/api/v1/devices: the registry, and each device's stored readings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from dashboard_api.deps import Services
from devices.registry import DeviceExistsError
from devices.schemas import DeviceCreate, DeviceKind, DevicePublic
from ingest.influx import InfluxError

router = APIRouter(prefix="/devices", tags=["devices"])


def _with_last_seen(services: Services, device: DevicePublic) -> DevicePublic:
    seen = services.last_seen(device.id)
    if seen is not None and (device.last_seen_at is None or seen > device.last_seen_at):
        return device.model_copy(update={"last_seen_at": seen})
    return device


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_device(device: DeviceCreate, services: Services) -> DevicePublic:
    """Register a device."""
    try:
        services.check_device(device)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        return await services.devices.create(device)
    except DeviceExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("")
async def list_devices(
    services: Services,
    kind: DeviceKind | None = None,
    district: str | None = None,
    zone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DevicePublic]:
    """Registered devices, ordered by id."""
    devices = await services.devices.find(
        kind=kind.value if kind else None, district=district, zone=zone, limit=limit, offset=offset
    )
    return [_with_last_seen(services, d) for d in devices]


@router.get("/{device_id}")
async def get_device(device_id: str, services: Services) -> DevicePublic:
    """One device."""
    device = await services.devices.get(device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id!r} is not registered")
    return _with_last_seen(services, device)


@router.get("/{device_id}/readings")
async def device_readings(
    device_id: str,
    services: Services,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Stored readings of one device from InfluxDB, newest first (since/until: RFC 3339)."""
    if await services.devices.get(device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id!r} is not registered")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(
                422,
                f"{name} needs a UTC offset, e.g. 2026-11-27T10:00:00Z",
            )
    if since and until and since > until:
        raise HTTPException(422, "since is after until")
    try:
        return await services.readings.readings(device_id, since, until, limit)
    except InfluxError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"reading store unavailable: {exc}"
        ) from None
