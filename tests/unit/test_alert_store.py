"""The SQL alert store: one active alert per (device, kind), and an ordered change log."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.timeutil import from_ms
from dispatch.broadcast import AlertBroadcaster
from dispatch.model import AlertStatus, ChangeType
from dispatch.service import AlertService
from dispatch.store import AlertStore
from dispatch.tables import AlertRow
from rules.events import Action, AlertEvent, Severity
from tests.postgres import both_backends

# The registry and alert store run on SQLite and PostgreSQL alike.
pytestmark = both_backends

T0 = 1_790_000_000_000


SLOTS = {
    "fire.pre_alarm": "fire",
    "fire.alarm": "fire",
    "fire.confirmed": "fire",
    "bin.nearly_full": "bin.fill",
    "bin.full": "bin.fill",
}


def event(
    action: Action,
    kind: str = "fire.alarm",
    device: str = "f1",
    ts: int = T0,
    reason: str = "temp_c 80 >= 57",
    partners: tuple[str, ...] = (),
) -> AlertEvent:
    slot = SLOTS.get(kind, kind)
    category = "fire" if slot in ("fire", "bin.fire") else slot.split(".")[0]
    return AlertEvent(
        action,
        slot,
        kind,
        category,
        device,
        0,
        ts,
        Severity.critical,
        reason,
        {"temp_c": 80.0},
        partners,
    )


async def test_raise_twice_is_one_alert(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = AlertStore(sessions)
    first = await store.apply([event(Action.raise_), event(Action.raise_, ts=T0 + 1)])
    again = await store.apply([event(Action.raise_, ts=T0 + 2)])
    assert [c.type for c in first] == [ChangeType.raised] and again == []
    alerts = await store.find(device_id="f1")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.status is AlertStatus.open and alert.category == "fire"
    assert alert.raised_at == from_ms(T0)
    assert alert.values == {"temp_c": 80.0}


async def test_fire_clear_keeps_alert_active_and_reraise_updates_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AlertStore(sessions)
    (raised,) = await store.apply([event(Action.raise_)])
    (cleared,) = await store.apply([event(Action.clear, ts=T0 + 10, reason="back to normal")])
    assert cleared.type is ChangeType.cleared
    assert cleared.alert.status is AlertStatus.open  # a dispatcher resolves a fire
    assert cleared.alert.cleared_at == from_ms(T0 + 10)
    (updated,) = await store.apply([event(Action.raise_, ts=T0 + 20)])
    assert updated.type is ChangeType.updated and updated.alert.id == raised.alert.id
    assert updated.alert.cleared_at is None
    assert len(await store.find(device_id="f1")) == 1  # never the same fire twice


async def test_bin_clear_resolves_and_next_fill_is_a_new_alert(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AlertStore(sessions)
    changes = await store.apply(
        [
            event(Action.raise_, "bin.full", "b1", T0),
            event(Action.clear, "bin.full", "b1", T0 + 1),
            event(Action.clear, "bin.full", "b1", T0 + 2),  # nothing left to clear
            event(Action.raise_, "bin.full", "b1", T0 + 3),
        ]
    )
    assert [c.type for c in changes] == [ChangeType.raised, ChangeType.cleared, ChangeType.raised]
    assert changes[1].alert.status is AlertStatus.resolved
    assert changes[0].alert.id != changes[2].alert.id
    assert [a.id for a in await store.find(active=True)] == [changes[2].alert.id]


async def test_change_log_resumes_in_order(sessions: async_sessionmaker[AsyncSession]) -> None:
    store = AlertStore(sessions)
    changes = await store.apply([event(Action.raise_, device=f"f{i}") for i in range(5)])
    ids = [c.event_id for c in changes]
    assert ids == sorted(ids)
    later = await store.changes_after(ids[1])
    assert [c.event_id for c in later] == ids[2:]
    assert [c.alert.device_id for c in later] == ["f2", "f3", "f4"]


async def test_database_refuses_a_second_active_alert(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await AlertStore(sessions).apply([event(Action.raise_)])
    async with sessions() as session:
        session.add(
            AlertRow(
                slot="fire",
                kind="fire.alarm",
                category="fire",
                device_id="f1",
                status="open",
                severity="critical",
                reason="x",
                raised_at=from_ms(T0),
                updated_at=from_ms(T0),
                values={},
            )
        )
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_service_publishes_changes(sessions: async_sessionmaker[AsyncSession]) -> None:
    broadcaster = AlertBroadcaster(queue_size=2)
    service = AlertService(AlertStore(sessions), broadcaster)
    async with broadcaster.subscribe() as sub:
        await service.apply([event(Action.raise_)])
        (batch,) = sub.take()
        (frame,) = batch.frames
        assert b'"device_id":"f1"' in frame.data and frame.data.endswith(b"\r\n\r\n")
        # A subscriber that falls behind is cut off, not allowed to grow memory.
        await service.apply([event(Action.raise_, device=f"x{i}") for i in range(5)])
        assert sub.lagged and await sub.next() is None


async def test_escalation_updates_the_same_alert(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AlertStore(sessions)
    changes = await store.apply(
        [
            event(Action.raise_, "fire.pre_alarm"),
            event(Action.update, "fire.alarm", ts=T0 + 10),
            event(Action.update, "fire.confirmed", ts=T0 + 20),
            event(Action.raise_, "fire.confirmed", ts=T0 + 30),  # a repeat: no change
        ]
    )
    assert [c.type for c in changes] == [ChangeType.raised, ChangeType.updated, ChangeType.updated]
    assert len({c.alert.id for c in changes}) == 1
    (alert,) = await store.find(device_id="f1")
    assert alert.kind == "fire.confirmed" and alert.slot == "fire"
    assert alert.raised_at == from_ms(T0) and alert.updated_at == from_ms(T0 + 20)


async def test_confirmed_fire_groups_alerts_into_one_incident(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AlertStore(sessions)
    await store.apply([event(Action.raise_, "fire.pre_alarm", device=d) for d in "abc"])
    await store.apply(
        [
            event(Action.update, "fire.confirmed", device="a", ts=T0 + 5, partners=("b",)),
            event(Action.update, "fire.confirmed", device="b", ts=T0 + 5, partners=("a",)),
        ]
    )
    await store.apply(
        [
            event(Action.update, "fire.confirmed", device="c", ts=T0 + 9, partners=("a", "b")),
        ]
    )
    (incident,) = await store.incidents()
    assert incident.status == "open" and incident.kind == "fire"
    assert sorted(incident.device_ids) == ["a", "b", "c"]
    assert {a.incident_id for a in await store.find()} == {incident.id}
    assert await store.incident(incident.id) == incident
    assert await store.incident(incident.id + 1) is None


async def test_bin_fire_stays_active_until_resolved(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = AlertStore(sessions)
    await store.apply(
        [event(Action.raise_, "bin.fire", "b1"), event(Action.clear, "bin.fire", "b1", T0 + 1)]
    )
    (alert,) = await store.find(device_id="b1")
    assert alert.category == "fire" and alert.status is AlertStatus.open
    assert alert.cleared_at is not None


async def test_a_long_reason_is_cut_to_fit_the_column(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # PostgreSQL, unlike SQLite, refuses strings longer than the column.
    partners = ", ".join(f"pasar-mentaya-detector-{i:03d}" for i in range(100))
    store = AlertStore(sessions)
    (change,) = await store.apply([event(Action.raise_, reason=f"confirmed by {partners}")])
    assert len(change.alert.reason) == 1000
    assert change.alert.reason.startswith("confirmed by pasar-mentaya-detector-000")
    assert change.alert.reason.endswith("…")
