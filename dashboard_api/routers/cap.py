"""CAP 1.2 for fire consoles and warning systems: one document per alert or incident, and
an Atom feed of the active fire alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status

from dashboard_api.deps import Services
from dashboard_api.inputs import RowId
from dispatch.cap import cap_feed, latest_alert_cap, latest_incident_cap

router = APIRouter(tags=["cap"])

CAP_TYPE = "application/cap+xml"


@router.get("/alerts/cap", response_class=Response)
async def cap_alert_feed(request: Request, services: Services) -> Response:
    """Atom feed of the active fire alerts' current CAP messages, and of the ones closed in
    the last 24 h (so that pollers see their Cancel instead of a silent disappearance)."""
    now = datetime.now(UTC)
    alerts = await services.alerts.find(active=True, category="fire", limit=10_000)
    closed = await services.alerts.find(active=False, category="fire", limit=500)
    alerts += [a for a in closed if a.resolved_at and a.resolved_at >= now - timedelta(hours=24)]
    histories = await services.alerts.histories([a.id for a in alerts])
    devices = {d.id: d for d in await services.devices.get_many({a.device_id for a in alerts})}
    documents, links = [], []
    for alert in alerts:
        if alert.id in histories:
            documents.append(
                latest_alert_cap(
                    histories[alert.id], devices.get(alert.device_id), sender=services.cap_sender
                )
            )
            links.append(str(request.url_for("alert_cap", alert_id=alert.id)))
    feed = cap_feed(
        documents,
        title="Sigap: active fire alerts, Kotawaringin Timur",
        updated=now,
        self_url=str(request.url),
        links=links,
    )
    return Response(feed, media_type="application/atom+xml")


@router.get("/alerts/{alert_id}/cap", response_class=Response, name="alert_cap")
async def alert_cap(alert_id: RowId, services: Services) -> Response:
    """The alert's current CAP 1.2 message (Alert, Update or Cancel, with references)."""
    alert = await services.alerts.get(alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    history = await services.alerts.history(alert_id)
    device = await services.devices.get(alert.device_id)
    document = latest_alert_cap(history, device, sender=services.cap_sender)
    return Response(document, media_type=CAP_TYPE)


@router.get("/incidents/{incident_id}/cap", response_class=Response)
async def incident_cap(incident_id: RowId, services: Services) -> Response:
    """The incident's current CAP 1.2 message, one area per detector."""
    incident = await services.alerts.incident(incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id} not found")
    histories = await services.alerts.histories(incident.alert_ids)
    devices = {d.id: d for d in await services.devices.get_many(incident.device_ids)}
    document = latest_incident_cap(incident, histories, devices, sender=services.cap_sender)
    return Response(document, media_type=CAP_TYPE)
