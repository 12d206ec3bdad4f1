"""/api/v1/alerts: alert list, one alert, and the live stream (Server-Sent Events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from dashboard_api.access import Principal
from dashboard_api.auth import DISPATCHER, Caller
from dashboard_api.deps import ApiServices, Services
from dashboard_api.inputs import JSON_CHECKED, MAX_ROW_ID, Offset, RowId
from dispatch.model import OUTCOMES, AlertActionPublic, AlertChange, AlertPublic, AlertStatus
from dispatch.store import AlertNotFoundError, TransitionError

router = APIRouter(prefix="/alerts", tags=["alerts"], dependencies=JSON_CHECKED)


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
    offset: Offset = 0,
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
            resume_after = -1
        # An id beyond 64 bits would overflow in SQL once the stream has begun (a 500).
        if not 0 <= resume_after <= MAX_ROW_ID:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"Last-Event-ID must be an event id (an integer from 0 to {MAX_ROW_ID})",
            ) from None

    async def events() -> AsyncIterator[ServerSentEvent]:
        # Subscribe before reading the backlog so nothing falls between the two.
        async with services.broadcaster.subscribe() as sub:
            # Ids sent from the backlog, not just the highest: with several ingest workers
            # a change can go live after one with a higher id (dispatch/feed.py).
            sent: set[int] = set()
            if resume_after is not None:
                after = resume_after
                while True:
                    backlog = await services.alerts.changes_after(after, limit=1000)
                    for change in backlog:
                        yield _sse(change)
                        sent.add(change.event_id)
                        after = change.event_id
                    if len(backlog) < 1000:
                        break
            while True:
                live = await sub.queue.get()
                if live is None:
                    return  # cut off (lagging) or shutting down: the client resumes
                if live.event_id in sent:
                    sent.discard(live.event_id)  # already sent from the backlog
                    continue
                if resume_after is not None and live.event_id <= resume_after:
                    continue  # the client had it before it reconnected
                yield _sse(live)

    return EventSourceResponse(events(), ping=15)


Person = Annotated[str, Field(min_length=1, max_length=200, description="Who acts (name or id).")]


class AlertAck(BaseModel):
    """Acknowledge: a person has seen the alert."""

    model_config = ConfigDict(extra="forbid")

    # Who acts at the console; by default the name of the token used.
    by: Person | None = None
    note: str | None = Field(default=None, max_length=1000)


class AlertDispatch(AlertAck):
    """Dispatch a station (default: the one currently proposed, nearest first)."""

    station_id: str | None = Field(default=None, max_length=64)


class AlertResolve(AlertAck):
    """Close the alert with an outcome."""

    outcome: AlertStatus = AlertStatus.resolved


async def _act(
    services: ApiServices,
    caller: Principal,
    alert_id: RowId,
    action: str,
    body: AlertAck,
    **extra: Any,
) -> AlertPublic:
    by = body.by or caller.name
    try:
        change = await services.dispatch().act(alert_id, action, by, note=body.note, **extra)
    except AlertNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except TransitionError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, {"message": str(exc), "status": exc.status}
        ) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return change.alert


@router.post("/{alert_id}/ack", dependencies=DISPATCHER)
async def acknowledge(
    alert_id: RowId, body: AlertAck, services: Services, caller: Caller
) -> AlertPublic:
    """Acknowledge an open alert (409 with the current status otherwise)."""
    return await _act(services, caller, alert_id, "ack", body)


@router.post("/{alert_id}/dispatch", dependencies=DISPATCHER)
async def dispatch_station(
    alert_id: RowId, body: AlertDispatch, services: Services, caller: Caller
) -> AlertPublic:
    """Send a station to an open or acknowledged alert."""
    return await _act(services, caller, alert_id, "dispatch", body, station_id=body.station_id)


@router.post("/{alert_id}/resolve", dependencies=DISPATCHER)
async def resolve(
    alert_id: RowId, body: AlertResolve, services: Services, caller: Caller
) -> AlertPublic:
    """Close an active alert: resolved, cancelled or false_alarm."""
    if body.outcome not in OUTCOMES:
        raise HTTPException(422, f"outcome must be one of {sorted(o.value for o in OUTCOMES)}")
    return await _act(services, caller, alert_id, "resolve", body, outcome=body.outcome)


@router.get("/{alert_id}/actions")
async def alert_actions(alert_id: RowId, services: Services) -> list[AlertActionPublic]:
    """The audit trail: who acknowledged, dispatched, escalated and resolved, and when."""
    if await services.alerts.get(alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    return await services.alerts.actions(alert_id)


@router.get("/{alert_id}")
async def get_alert(alert_id: RowId, services: Services) -> AlertPublic:
    """One alert."""
    alert = await services.alerts.get(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    return alert
