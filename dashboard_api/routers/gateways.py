"""/api/v1/gateways: MQTT batch gateways and LoRaWAN gateways (CRUD; delete retires)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from dashboard_api.auth import TECHNICIAN
from dashboard_api.deps import Services
from dashboard_api.inputs import JSON_CHECKED, Offset
from dashboard_api.routers.credentials import revoke_on_retire
from devices.provisioning import AccountKind
from devices.registry import GatewayExistsError, GatewayInUseError, GatewayRegistry, NotFoundError
from devices.schemas import (
    DevicePublic,
    GatewayCreate,
    GatewayKind,
    GatewayPublic,
    GatewayStatus,
    GatewayUpdate,
)

router = APIRouter(prefix="/gateways", tags=["gateways"], dependencies=JSON_CHECKED)


def get_gateways(services: Services) -> GatewayRegistry:
    """The gateway registry (it shares the device registry's database)."""
    return services.devices.gateways


Gateways = Annotated[GatewayRegistry, Depends(get_gateways)]


_IN_USE: dict[int | str, dict[str, Any]] = {
    409: {"description": "Devices that are not retired report through the gateway."}
}


def _not_found(gateway_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"gateway {gateway_id!r} is not registered")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=TECHNICIAN,
    responses={409: {"description": "The id is taken."}},
)
async def create_gateway(gateway: GatewayCreate, gateways: Gateways) -> GatewayPublic:
    """Register a gateway (409 if the id is taken)."""
    try:
        return await gateways.create(gateway)
    except GatewayExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("")
async def list_gateways(
    gateways: Gateways,
    kind: GatewayKind | None = None,
    status_: Annotated[GatewayStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Offset = 0,
) -> list[GatewayPublic]:
    """Registered gateways, ordered by id."""
    return await gateways.find(
        kind=kind.value if kind else None,
        status=status_.value if status_ else None,
        limit=limit,
        offset=offset,
    )


@router.get("/{gateway_id}")
async def get_gateway(gateway_id: str, gateways: Gateways) -> GatewayPublic:
    """One gateway."""
    found = await gateways.get(gateway_id)
    if found is None:
        raise _not_found(gateway_id)
    return found


@router.get("/{gateway_id}/devices")
async def gateway_devices(gateway_id: str, gateways: Gateways) -> list[DevicePublic]:
    """The devices (not retired) registered behind this gateway."""
    if await gateways.get(gateway_id) is None:
        raise _not_found(gateway_id)
    return await gateways.devices_behind(gateway_id)


@router.patch("/{gateway_id}", dependencies=TECHNICIAN, responses=_IN_USE)
async def update_gateway(
    gateway_id: str, changes: GatewayUpdate, gateways: Gateways
) -> GatewayPublic:
    """Change only the fields sent (409 if that would strand its devices)."""
    try:
        return await gateways.update(gateway_id, changes)
    except NotFoundError:
        raise _not_found(gateway_id) from None
    except GatewayInUseError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.delete("/{gateway_id}", dependencies=TECHNICIAN, responses=_IN_USE)
async def retire_gateway(gateway_id: str, gateways: Gateways, services: Services) -> GatewayPublic:
    """Retire a gateway (kept for history); 409 while devices not retired report through it."""
    try:
        retired = await gateways.retire(gateway_id)
    except NotFoundError:
        raise _not_found(gateway_id) from None
    except GatewayInUseError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await revoke_on_retire(services, AccountKind.gateway, gateway_id)
    return retired
