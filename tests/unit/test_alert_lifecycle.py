"""Alert lifecycle: acknowledge, dispatch, resolve with an audit trail; escalation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.model import AlertStatus, ChangeType
from dispatch.store import AlertStore, TransitionError
from rules.events import Action, AlertEvent, Severity
from tests.unit.conftest import api_client, api_services

T0 = 1_790_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def fire_event(device: str = "f1", kind: str = "fire.alarm") -> AlertEvent:
    return AlertEvent(
        Action.raise_, "fire", kind, "fire", device, 0, T0, Severity.critical, "temp_c 80 >= 57"
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> AlertStore:
    return AlertStore(sessions, propose=lambda device: ["st-baamang", "st-ketapang"], clock=clock)


async def test_ack_dispatch_resolve_with_audit_trail(store: AlertStore, clock: Clock) -> None:
    (raised,) = await store.apply([fire_event()])
    alert_id = raised.alert.id
    assert raised.alert.proposed_stations == ["st-baamang", "st-ketapang"]
    ack = await store.act(alert_id, "ack", "operator Budi")
    assert ack.type is ChangeType.acknowledged and ack.alert.status is AlertStatus.acknowledged
    clock.now += timedelta(seconds=30)
    sent = await store.act(alert_id, "dispatch", "operator Budi")
    assert sent.alert.station_id == "st-baamang"  # the proposed nearest station
    assert sent.alert.status is AlertStatus.dispatched
    clock.now += timedelta(minutes=20)
    done = await store.act(
        alert_id, "resolve", "Pak Andi", outcome=AlertStatus.resolved, note="extinguished"
    )
    assert done.alert.status is AlertStatus.resolved and done.alert.resolved_by == "Pak Andi"
    trail = await store.actions(alert_id)
    assert [(a.action, a.by) for a in trail] == [
        ("ack", "operator Budi"),
        ("dispatch", "operator Budi"),
        ("resolve", "Pak Andi"),
    ]
    assert trail[1].details == {"station_id": "st-baamang"}
    assert trail[2].details == {"note": "extinguished", "outcome": "resolved"}
    assert trail[2].at - trail[0].at == timedelta(minutes=20, seconds=30)
    # Closed: the same fire does not come back as a second alert of this one.
    assert (await store.find(active=True)) == []


async def test_invalid_transitions_say_the_current_status(store: AlertStore) -> None:
    (raised,) = await store.apply([fire_event()])
    alert_id = raised.alert.id
    await store.act(alert_id, "dispatch", "op", station_id="st-seranau")
    with pytest.raises(TransitionError) as info:
        await store.act(alert_id, "ack", "op")
    assert info.value.status == "dispatched"
    await store.act(alert_id, "resolve", "op", outcome=AlertStatus.false_alarm)
    for action in ("ack", "dispatch", "resolve"):
        with pytest.raises(TransitionError, match="false_alarm"):
            await store.act(alert_id, action, "op")


async def test_escalation_moves_to_the_next_station_then_a_supervisor(
    sessions: async_sessionmaker[AsyncSession], store: AlertStore, clock: Clock
) -> None:
    (raised,) = await store.apply([fire_event()])
    assert await store.escalate_due(60) == []  # not yet
    clock.now += timedelta(seconds=61)
    (first,) = await store.escalate_due(60)
    assert first.type is ChangeType.escalated and first.alert.escalation_level == 1
    # A restart: a new store on the same database carries on from the alert table.
    again = AlertStore(sessions, clock=clock)
    clock.now += timedelta(seconds=30)
    assert await again.escalate_due(60) == []
    clock.now += timedelta(seconds=31)
    (second,) = await again.escalate_due(60)
    assert second.alert.escalation_level == 2
    trail = await again.actions(raised.alert.id)
    assert [a.details["to"] for a in trail] == ["st-ketapang", "supervisor"]
    # Acknowledged alerts are not escalated.
    await again.act(raised.alert.id, "ack", "op")
    clock.now += timedelta(minutes=10)
    assert await again.escalate_due(60) == []


async def test_only_fire_alerts_escalate(store: AlertStore, clock: Clock) -> None:
    await store.apply(
        [
            AlertEvent(
                Action.raise_, "bin.fill", "bin.full", "bin", "b1", 1, T0, Severity.minor, "full"
            )
        ]
    )
    clock.now += timedelta(hours=1)
    assert await store.escalate_due(60) == []


@pytest.fixture
async def client(
    sessions: async_sessionmaker[AsyncSession], store: AlertStore
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api_services(sessions, alerts=store)) as c:
        yield c


async def test_lifecycle_api(client: httpx.AsyncClient, store: AlertStore) -> None:
    (raised,) = await store.apply([fire_event()])
    base = f"/api/v1/alerts/{raised.alert.id}"
    unknown_field = await client.post(f"{base}/ack", json={"who": "operator Sri"})
    assert unknown_field.status_code == 422 and "who" in unknown_field.text
    ack = await client.post(f"{base}/ack", json={"by": "operator Sri"})
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "operator Sri"
    again = await client.post(f"{base}/ack", json={"by": "operator Sri"})
    assert again.status_code == 409
    assert again.json()["detail"] == {
        "message": f"cannot ack alert {raised.alert.id}: it is acknowledged",
        "status": "acknowledged",
    }
    sent = await client.post(
        f"{base}/dispatch", json={"by": "operator Sri", "station_id": "st-ketapang"}
    )
    assert sent.json()["station_id"] == "st-ketapang" and sent.json()["status"] == "dispatched"
    bad = await client.post(f"{base}/resolve", json={"by": "x", "outcome": "open"})
    assert bad.status_code == 422
    closed = await client.post(f"{base}/resolve", json={"by": "Pak Andi", "outcome": "false_alarm"})
    assert closed.json()["status"] == "false_alarm"
    trail = (await client.get(f"{base}/actions")).json()
    assert [a["action"] for a in trail] == ["ack", "dispatch", "resolve"]
    assert (await client.post("/api/v1/alerts/999/ack", json={"by": "x"})).status_code == 404
    assert (await client.get("/api/v1/alerts/999/actions")).status_code == 404


async def test_dispatch_without_any_station_is_a_clear_422(
    sessions: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    bare = AlertStore(sessions)  # no stations known
    (raised,) = await bare.apply([fire_event("f9")])
    response = await client.post(f"/api/v1/alerts/{raised.alert.id}/dispatch", json={"by": "op"})
    assert response.status_code == 422 and "give station_id" in response.text
