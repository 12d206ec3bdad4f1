"""MQTT credentials of devices and gateways: issued once, revoked on the running broker."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel

from dashboard_api.access import Principal
from dashboard_api.auth import Technician, for_admin
from dashboard_api.deps import ApiServices, Services
from devices.provisioning import (
    AccountConflictError,
    AccountKind,
    AccountNotFoundError,
    BrokerAccounts,
    BrokerCommandError,
    BrokerUnavailableError,
    Credentials,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["credentials"])
T = TypeVar("T")


class CredentialsPublic(BaseModel):
    """A device's or gateway's MQTT login: shown in this answer only, stored hashed."""

    username: str
    password: str
    publish_topics: list[str]


# What the broker's account service may answer (`_broker`), as the OpenAPI document says.
_BROKER: dict[int | str, dict[str, Any]] = {
    409: {"description": "The broker holds a conflicting account."},
    502: {"description": "The broker refused the change."},
    503: {"description": "The broker's account service is not answering, or not managed here."},
}
_ISSUE = _BROKER | {409: {"description": "Retired (make it active first), or a conflict."}}


def _accounts(services: ApiServices) -> BrokerAccounts:
    if services.accounts is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "broker accounts are not managed here: set SIGAP_MQTT_ADMIN_USERNAME and "
            "SIGAP_MQTT_ADMIN_PASSWORD (the dynamic security admin)",
        )
    return services.accounts


async def _broker(call: Awaitable[T], caller: Principal) -> T:
    """Run a broker call, turning its failures into clear HTTP answers.

    The broker's own errors name its address and quote the plugin: logged, and shown to
    an admin only.
    """
    try:
        return await call
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except AccountNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except AccountConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except BrokerUnavailableError as exc:
        log.warning("broker accounts: %s", exc)
        public = "the MQTT broker's account service is not answering; try again later"
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, for_admin(caller, str(exc), public)
        ) from None
    except BrokerCommandError as exc:
        log.warning("broker accounts: %s", exc)
        public = "the MQTT broker refused the change; the log says why"
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, for_admin(caller, str(exc), public)
        ) from None


def _public(credentials: Credentials) -> CredentialsPublic:
    return CredentialsPublic(
        username=credentials.username,
        password=credentials.password,
        publish_topics=list(credentials.publish_topics),
    )


@router.post(
    "/devices/{device_id}/credentials", status_code=status.HTTP_201_CREATED, responses=_ISSUE
)
async def issue_device_credentials(
    device_id: str, services: Services, caller: Technician
) -> CredentialsPublic:
    """Issue (or re-issue: the old password stops working) a device's MQTT login."""
    device = await services.devices.get(device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"device {device_id!r} is not registered")
    if device.status == "retired":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"device {device_id!r} is retired; PATCH its status to active first",
        )
    accounts = _accounts(services)
    return _public(await _broker(accounts.provision_device(device_id), caller))


@router.post(
    "/gateways/{gateway_id}/credentials", status_code=status.HTTP_201_CREATED, responses=_ISSUE
)
async def issue_gateway_credentials(
    gateway_id: str, services: Services, caller: Technician
) -> CredentialsPublic:
    """Issue (or re-issue) a gateway's MQTT login."""
    gateway = await services.devices.gateways.get(gateway_id)
    if gateway is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"gateway {gateway_id!r} is not registered")
    if gateway.status == "retired":
        raise HTTPException(status.HTTP_409_CONFLICT, f"gateway {gateway_id!r} is retired")
    accounts = _accounts(services)
    return _public(await _broker(accounts.provision_gateway(gateway_id), caller))


@router.delete(
    "/devices/{device_id}/credentials", status_code=status.HTTP_204_NO_CONTENT, responses=_BROKER
)
async def revoke_device_credentials(
    device_id: str, services: Services, caller: Technician
) -> Response:
    """Revoke a device's login at once: its session is closed, the next login refused."""
    return await _revoke(services, caller, AccountKind.device, device_id)


@router.delete(
    "/gateways/{gateway_id}/credentials", status_code=status.HTTP_204_NO_CONTENT, responses=_BROKER
)
async def revoke_gateway_credentials(
    gateway_id: str, services: Services, caller: Technician
) -> Response:
    """Revoke a gateway's login at once: its session is closed, the next login refused."""
    return await _revoke(services, caller, AccountKind.gateway, gateway_id)


async def _revoke(
    services: ApiServices, caller: Principal, kind: AccountKind, account_id: str
) -> Response:
    # By kind: a device and a gateway may share an id, and each path revokes only its own.
    if not await _broker(_accounts(services).revoke(account_id, kind), caller):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"{kind.value} {account_id!r} has no MQTT login"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def revoke_on_retire(services: ApiServices, kind: AccountKind, account_id: str) -> None:
    """Retiring also revokes the broker login, when Sigap manages the broker's accounts.

    If the broker cannot be reached the retirement still stands (ingest refuses a retired
    device's readings anyway); the error is logged so the login can be revoked later. A
    login of that name that is not this device's or gateway's own (Sigap's service or
    admin account, a gateway's for a device) is left alone.
    """
    if services.accounts is None:
        return
    try:
        await services.accounts.revoke(account_id, kind)
    except AccountConflictError as exc:
        log.warning("retired %s %s; its broker login was left alone: %s", kind, account_id, exc)
    except (BrokerUnavailableError, BrokerCommandError) as exc:
        log.error("retired %s %s, but could not revoke its MQTT login: %s", kind, account_id, exc)
