"""/api/v1/webhooks: subscribers that receive every alert change by signed HTTP POST."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError

from dashboard_api.access import Principal, Role
from dashboard_api.auth import ADMIN, Caller
from dashboard_api.deps import Services
from dashboard_api.inputs import JSON_CHECKED, RowId
from dispatch.egress import EgressError
from dispatch.webhooks import (
    DeliveryState,
    WebhookCreate,
    WebhookDelivery,
    WebhookOutbox,
    WebhookPublic,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=JSON_CHECKED)


def get_webhooks(services: Services) -> WebhookOutbox:
    """The webhook outbox (503 when this process runs without one)."""
    if services.webhooks is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "webhooks are not available")
    return services.webhooks


Webhooks = Annotated[WebhookOutbox, Depends(get_webhooks)]


async def _found(webhooks: WebhookOutbox, webhook_id: int) -> WebhookPublic:
    found = await webhooks.get(webhook_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id} not found")
    return found


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=ADMIN)
async def create_webhook(create: WebhookCreate, webhooks: Webhooks) -> WebhookPublic:
    """Subscribe a URL to alert changes (filters optional); the secret is never shown again.

    422 when the URL's host is, or resolves to, an address that is not public (loopback,
    private, link-local ...) unless SIGAP_DISPATCH_WEBHOOK_ALLOW_NETS lists it, or does
    not resolve.
    """
    try:
        return await webhooks.subscribe(create)
    except EgressError as exc:
        # Shaped like every other 422 (a list of errors at body.url), as the schema says.
        error = {"type": "value_error", "loc": ("body", "url"), "msg": str(exc)}
        raise RequestValidationError([error | {"input": create.url}]) from None


def _shown_to(caller: Principal, webhook: WebhookPublic) -> WebhookPublic:
    # Even a hint narrows a guess at the signing secret; only an admin manages secrets.
    if caller.role is Role.admin:
        return webhook
    return webhook.model_copy(update={"secret_hint": None})


@router.get("")
async def list_webhooks(webhooks: Webhooks, caller: Caller) -> list[WebhookPublic]:
    """Every subscriber with its pending and dead message counts."""
    return [_shown_to(caller, webhook) for webhook in await webhooks.list()]


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: RowId, webhooks: Webhooks, caller: Caller) -> WebhookPublic:
    """One subscriber (the secret's hint only for an admin)."""
    return _shown_to(caller, await _found(webhooks, webhook_id))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=ADMIN)
async def delete_webhook(webhook_id: RowId, webhooks: Webhooks) -> Response:
    """Unsubscribe; messages not yet delivered are dropped with it."""
    if not await webhooks.delete(webhook_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"webhook {webhook_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: RowId,
    webhooks: Webhooks,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[WebhookDelivery]:
    """A subscriber's messages, newest first; `state=dead` shows those out of attempts."""
    await _found(webhooks, webhook_id)
    return await webhooks.deliveries(webhook_id, state=state, limit=limit)


@router.post("/{webhook_id}/redeliver", dependencies=ADMIN)
async def redeliver(webhook_id: RowId, webhooks: Webhooks) -> dict[str, int]:
    """Give the subscriber's dead messages a fresh set of attempts."""
    await _found(webhooks, webhook_id)
    return {"requeued": await webhooks.redeliver(webhook_id)}
