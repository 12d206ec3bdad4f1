"""/api/v1/devices: the registry (CRUD, CSV import), and each device's stored readings."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from contract.readings import DeviceKind
from dashboard_api.access import Principal
from dashboard_api.auth import TECHNICIAN, Caller, for_admin
from dashboard_api.deps import Services
from dashboard_api.inputs import JSON_CHECKED, Offset
from dashboard_api.routers.credentials import revoke_on_retire
from devices.importer import import_csv
from devices.provisioning import AccountKind
from devices.registry import DeviceExistsError, NotFoundError, NsDeviceTakenError, RegistryError
from devices.schemas import (
    DeviceCreate,
    DeviceDetail,
    DevicePublic,
    DeviceStatus,
    DeviceUpdate,
    ImportReport,
    NetworkServer,
)
from ingest.influx import InfluxError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/devices", tags=["devices"], dependencies=JSON_CHECKED)

# How far back GET /devices/{id} looks for the newest battery and RSSI values.
RECENT_READINGS = 20
# InfluxDB keeps times as int64 nanoseconds (1677-09-21 .. 2262-04-11); a query outside
# overflows in its parser, whose error is no answer for the caller.
READINGS_FROM = datetime(1677, 9, 22, tzinfo=UTC)
READINGS_UNTIL = datetime(2262, 4, 11, tzinfo=UTC)
STORE_UNAVAILABLE = "reading store unavailable"
STORE_UNAVAILABLE_PUBLIC = f"{STORE_UNAVAILABLE} (InfluxDB is not answering; the log says why)"

Device = TypeVar("Device", bound=DevicePublic)


class ImportRefused(BaseModel):
    """A CSV import refused as a whole: every bad row with what is wrong."""

    detail: ImportReport


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "It conflicts with another registration (e.g. a network server id)."}
}


def _with_last_seen(services: Services, device: Device) -> Device:
    seen = services.last_seen(device.id)
    if seen is not None and (device.last_seen_at is None or seen > device.last_seen_at):
        return device.model_copy(update={"last_seen_at": seen})
    return device


def _not_found(device_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id!r} is not registered")


def _unprocessable(exc: ValueError) -> Exception:
    """A 422 in FastAPI's own shape for pydantic errors, or with the message for the rest."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False, include_context=False)
        return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors])
    return HTTPException(422, str(exc))


def _check(services: Services, device: DeviceCreate) -> None:
    try:
        services.check_device(device)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=TECHNICIAN,
    responses={409: {"description": "The id or the network server's device id is taken."}},
)
async def create_device(device: DeviceCreate, services: Services) -> DevicePublic:
    """Register a device (409 if its id or network server id is taken)."""
    _check(services, device)
    try:
        return await services.devices.create(device)
    except (DeviceExistsError, NsDeviceTakenError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ValueError as exc:
        raise _unprocessable(exc) from None


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "A header row with DeviceCreate field names, then one device per "
            "row; JSON in the thresholds, sensor_offsets and field_map cells.",
        }
    },
    responses={422: {"model": ImportRefused, "description": "Nothing imported: the errors."}},
    dependencies=TECHNICIAN,
)
async def import_devices(request: Request, services: Services) -> ImportReport:
    """Register devices from a CSV file: all rows or none; 422 with an error per bad row."""
    # At most SIGAP_API_MAX_IMPORT_BYTES: the BodySizeLimit middleware answers 413 past it.
    data = await request.body()
    report = await import_csv(services.devices, data, services.check_device)
    if report.errors:
        raise HTTPException(422, report.model_dump())
    return report


@router.get("")
async def list_devices(
    services: Services,
    kind: DeviceKind | None = None,
    district: str | None = None,
    zone: str | None = None,
    status_: Annotated[DeviceStatus | None, Query(alias="status")] = None,
    gateway_id: str | None = None,
    network_server: NetworkServer | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Offset = 0,
) -> list[DevicePublic]:
    """Registered devices, ordered by id."""
    devices = await services.devices.find(
        kind=kind.value if kind else None,
        district=district,
        zone=zone,
        status=status_.value if status_ else None,
        gateway_id=gateway_id,
        network_server=network_server.value if network_server else None,
        limit=limit,
        offset=offset,
    )
    return [_with_last_seen(services, d) for d in devices]


@router.get("/{device_id}")
async def get_device(device_id: str, services: Services, caller: Caller) -> DeviceDetail:
    """One device, with when it was last seen and its latest reading, battery and RSSI."""
    device = await services.devices.get(device_id)
    if device is None:
        raise _not_found(device_id)
    detail = DeviceDetail.model_validate(device.model_dump())
    if services.readings is not None:
        try:
            recent = await services.readings.readings(device_id, None, None, RECENT_READINGS)
        except InfluxError as exc:
            # The registry answers even when InfluxDB does not: say why the reading is missing.
            log.warning("latest readings of %s: reading store unavailable: %s", device_id, exc)
            detail.readings_error = _store_error(caller, exc)
        else:
            _add_latest(detail, recent)
    return _with_last_seen(services, detail)


def _store_error(caller: Principal, exc: InfluxError) -> str:
    # InfluxDB's error names its address and quotes its client; only an admin sees that.
    return for_admin(caller, f"{STORE_UNAVAILABLE}: {exc}", STORE_UNAVAILABLE_PUBLIC)


def _add_latest(detail: DeviceDetail, recent: list[dict[str, Any]]) -> None:
    # Battery and RSSI may not come with every reading: take each from the newest that has it.
    if not recent:
        return
    detail.last_reading = recent[0]
    for name in ("battery_v", "battery_pct", "rssi_dbm"):
        value = next((r[name] for r in recent if r.get(name) is not None), None)
        setattr(detail, name, value)


@router.put("/{device_id}", dependencies=TECHNICIAN, responses=_CONFLICT)
async def replace_device(device_id: str, device: DeviceCreate, services: Services) -> DevicePublic:
    """Replace every writable field (the id and kind cannot change)."""
    _check(services, device)
    try:
        return _with_last_seen(services, await services.devices.replace(device_id, device))
    except NotFoundError:
        raise _not_found(device_id) from None
    except RegistryError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except ValueError as exc:
        raise _unprocessable(exc) from None


@router.patch("/{device_id}", dependencies=TECHNICIAN, responses=_CONFLICT)
async def update_device(device_id: str, changes: DeviceUpdate, services: Services) -> DevicePublic:
    """Change only the fields sent; null clears an optional field."""
    current = await services.devices.get(device_id)
    if current is None:
        raise _not_found(device_id)
    try:
        updated = changes.apply(current)
    except ValueError as exc:
        raise _unprocessable(exc) from None
    return await replace_device(device_id, updated, services)


@router.delete("/{device_id}", dependencies=TECHNICIAN)
async def retire_device(device_id: str, services: Services) -> DevicePublic:
    """Retire a device: kept for its alerts and history, its readings refused from now on."""
    try:
        retired = await services.devices.retire(device_id)
    except NotFoundError:
        raise _not_found(device_id) from None
    await revoke_on_retire(services, AccountKind.device, device_id)
    return _with_last_seen(services, retired)


@router.get(
    "/{device_id}/readings",
    responses={503: {"description": "The reading store (InfluxDB) is not answering, or none."}},
)
async def device_readings(
    device_id: str,
    services: Services,
    caller: Caller,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    """Stored readings of one device from InfluxDB, newest first (since/until: RFC 3339)."""
    if await services.devices.get(device_id) is None:
        raise _not_found(device_id)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(
                422,
                f"{name} needs a UTC offset, e.g. 2026-11-27T10:00:00Z",
            )
        if moment is not None and not _storable(moment):
            raise HTTPException(
                422,
                f"{name} must lie between {READINGS_FROM:%Y-%m-%d} and {READINGS_UNTIL:%Y-%m-%d} "
                "(the times InfluxDB can hold)",
            )
    if since and until and since > until:
        raise HTTPException(422, "since is after until")
    if services.readings is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{STORE_UNAVAILABLE}: there is none here"
        )
    try:
        return await services.readings.readings(device_id, since, until, limit)
    except InfluxError as exc:
        log.warning("readings of %s: reading store unavailable: %s", device_id, exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, _store_error(caller, exc)
        ) from None


def _storable(moment: datetime) -> bool:
    try:
        return READINGS_FROM <= moment <= READINGS_UNTIL
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        return False
