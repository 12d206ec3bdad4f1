"""/api/v1/alerts: alert list, one alert, and the live stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from dashboard_api.access import Principal
from dashboard_api.auth import DISPATCHER, Caller
from dashboard_api.deps import ApiServices, Services
from dashboard_api.inputs import JSON_CHECKED, MAX_ROW_ID, Offset, RowId
from dispatch.broadcast import STREAMS_REFUSED
from dispatch.model import OUTCOMES, AlertActionPublic, AlertPublic, AlertStatus
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


# The first bytes of every stream: the client knows it is subscribed, so nothing published
# from now on can pass it by (and a proxy sees the response begin).
STREAM_OPEN = b": stream open\r\n\r\n"
# Changes read from the log per query when a client resumes: a wall of consoles
# reconnecting at once reads in small steps, a few at a time (AlertBroadcaster.replays).
REPLAY_PAGE = 200
# Replayed ids remembered to skip their live copies (bounded: a resume from 0 can be long).
REPLAY_KEEP_IDS = 10_000
# A burst goes out in writes of at most this many bytes, each a turn of the event loop.
WRITE_BYTES = 64 * 1024
# A client that cannot take a write for this long is dropped; it resumes when it can.
SEND_TIMEOUT_S = 30.0
# What a client refused for the stream cap is told to wait before it tries again.
STREAM_RETRY_AFTER_S = 5


@router.get(
    "/stream",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The change stream."},
        503: {"description": "Too many streams open; try again after Retry-After seconds."},
    },
)
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
    broadcaster = services.broadcaster
    if broadcaster.full:
        STREAMS_REFUSED.inc()
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{broadcaster.max_subscribers} alert streams are open, the most this server "
            "allows (SIGAP_API_MAX_STREAMS); try again shortly",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_S)},
        )

    async def events() -> AsyncIterator[bytes]:
        # Subscribe before reading the backlog so nothing falls between the two.
        async with broadcaster.subscribe() as sub:
            if sub.closed:
                return  # the cap was reached since the check above: the client retries
            yield STREAM_OPEN
            # Ids sent from the backlog, not just the highest: with several ingest workers
            # a change can go live after one with a higher id (dispatch/feed.py).
            sent: set[int] = set()
            if resume_after is not None:
                after = resume_after
                while True:
                    async with broadcaster.replays:
                        page = await services.alerts.log_after(after, limit=REPLAY_PAGE)
                    if page:
                        sent.update(row[0] for row in page)
                        after = page[-1][0]
                        if len(sent) > 2 * REPLAY_KEEP_IDS:
                            # A live change older than the last few thousand is not coming.
                            sent = {i for i in sent if i > after - REPLAY_KEEP_IDS}
                        yield b"".join(broadcaster.logged_frame(*row).data for row in page)
                    if len(page) < REPLAY_PAGE:
                        break
            # Live changes below this may have been sent already (from the backlog) or be
            # older than what the client had; the rest go out as the shared bytes.
            seen_up_to = max(max(sent, default=0), resume_after or 0)
            while (batches := await sub.next()) is not None:
                for batch in batches:
                    if batch.lowest > seen_up_to:
                        data = batch.data
                    else:
                        data = b"".join(
                            f.data
                            for f in batch.frames
                            if f.event_id not in sent
                            and (resume_after is None or f.event_id > resume_after)
                        )
                    for start in range(0, len(data), WRITE_BYTES):
                        yield data[start : start + WRITE_BYTES]
                        # Let the other streams and /healthz in between two writes: a
                        # write that does not fill the socket buffer never suspends.
                        await asyncio.sleep(0)
            # Cut off (lagging) or shutting down: the client resumes with Last-Event-ID.

    return EventSourceResponse(events(), ping=15, send_timeout=SEND_TIMEOUT_S)


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


class RefusedTransition(BaseModel):
    """Why an alert action was refused: the alert's status does not allow it."""

    message: str
    status: AlertStatus


class TransitionRefusal(BaseModel):
    """The 409 body of an alert action."""

    detail: RefusedTransition


# A refused transition (ack of a resolved alert ...) is a 409 that says the current status.
_TRANSITION_409: dict[int | str, dict[str, Any]] = {
    409: {"model": TransitionRefusal, "description": "The alert's status does not allow this."}
}


@router.post("/{alert_id}/ack", dependencies=DISPATCHER, responses=_TRANSITION_409)
async def acknowledge(
    alert_id: RowId, body: AlertAck, services: Services, caller: Caller
) -> AlertPublic:
    """Acknowledge an open alert (409 with the current status otherwise)."""
    return await _act(services, caller, alert_id, "ack", body)


@router.post("/{alert_id}/dispatch", dependencies=DISPATCHER, responses=_TRANSITION_409)
async def dispatch_station(
    alert_id: RowId, body: AlertDispatch, services: Services, caller: Caller
) -> AlertPublic:
    """Send a station to an open or acknowledged alert."""
    return await _act(services, caller, alert_id, "dispatch", body, station_id=body.station_id)


@router.post("/{alert_id}/resolve", dependencies=DISPATCHER, responses=_TRANSITION_409)
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
