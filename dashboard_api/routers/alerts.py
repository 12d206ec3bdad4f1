"""/api/v1/alerts: alert list, one alert, and the live stream (Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from sse_starlette import EventSourceResponse, ServerSentEvent

from dashboard_api.deps import Services
from dispatch.model import AlertChange, AlertPublic, AlertStatus

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(
    services: Services,
    status_: Annotated[AlertStatus | None, Query(alias="status")] = None,
    kind: str | None = None,
    category: str | None = None,
    device_id: str | None = None,
    active: bool | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AlertPublic]:
    """Alerts, newest first; `active=true` for the unresolved ones."""
    return await services.alerts.find(
        status=status_.value if status_ else None,
        kind=kind,
        category=category,
        device_id=device_id,
        active=active,
        since=since,
        limit=limit,
        offset=offset,
    )


def _sse(change: AlertChange) -> ServerSentEvent:
    data = change.alert.model_dump_json()
    return ServerSentEvent(data=data, event=f"alert.{change.type.value}", id=str(change.event_id))


@router.get("/stream")
async def stream_alerts(
    request: Request,
    services: Services,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Every alert change as it happens; send Last-Event-ID to get what you missed first."""
    resume_after: int | None = None
    if last_event_id:
        try:
            resume_after = int(last_event_id)
        except ValueError:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be an event id (an integer)"
            ) from None

    async def events() -> AsyncIterator[ServerSentEvent]:
        # Subscribe before reading the backlog so nothing falls between the two.
        async with services.broadcaster.subscribe() as sub:
            sent = resume_after if resume_after is not None else -1
            if resume_after is not None:
                while True:
                    backlog = await services.alerts.changes_after(sent, limit=1000)
                    for change in backlog:
                        yield _sse(change)
                        sent = change.event_id
                    if len(backlog) < 1000:
                        break
            while True:
                live = await sub.queue.get()
                if live is None:
                    return  # cut off (lagging) or shutting down: the client resumes
                if live.event_id <= sent:
                    continue  # already sent from the backlog
                sent = live.event_id
                yield _sse(live)

    return EventSourceResponse(events(), ping=15)


@router.get("/{alert_id}")
async def get_alert(alert_id: int, services: Services) -> AlertPublic:
    """One alert."""
    alert = await services.alerts.get(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    return alert
