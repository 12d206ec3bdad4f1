"""The alert fan-out under a wall of consoles: encoded once, bounded, capped (issue #22)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.broadcast import AlertBroadcaster, Batch, encode
from dispatch.model import AlertChange, AlertPublic, AlertStatus, ChangeType
from tests.unit.conftest import api_client, api_services

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def change(event_id: int, device: str = "f1") -> AlertChange:
    """A raised fire alarm with this event id."""
    alert = AlertPublic(
        id=event_id,
        slot="fire",
        kind="fire.alarm",
        category="fire",
        severity="critical",
        status=AlertStatus.open,
        device_id=device,
        reason="heat 90 C",
        raised_at=NOW,
        updated_at=NOW,
        values={"temp_c": 90.0},
    )
    return AlertChange(event_id=event_id, type=ChangeType.raised, alert=alert)


def _fields(data: bytes) -> dict[str, str]:
    lines = data.decode().split("\r\n")
    assert lines[-2:] == ["", ""], "an event ends with a blank line"
    return dict(line.split(": ", 1) for line in lines[:-2])


def test_a_frame_is_one_sse_event_that_round_trips() -> None:
    original = change(7)
    fields = _fields(encode(original).data)
    assert fields["id"] == "7" and fields["event"] == "alert.raised"
    assert AlertPublic.model_validate_json(fields["data"]) == original.alert


def _ids(batches: list[Batch] | None) -> list[int]:
    assert batches is not None
    return [frame.event_id for batch in batches for frame in batch.frames]


async def test_every_subscriber_shares_one_encoding_and_takes_a_burst_at_once() -> None:
    broadcaster = AlertBroadcaster()
    async with broadcaster.subscribe() as a, broadcaster.subscribe() as b:
        broadcaster.publish([change(1), change(2)])
        broadcaster.publish([change(3)])
        got_a, got_b = await a.next(), b.take()
    assert _ids(got_a) == [1, 2, 3] and got_a is not None
    # The same objects, so one join of a burst serves every console.
    assert all(x is y for x, y in zip(got_a, got_b, strict=True))
    assert got_a[0].data == encode(change(1)).data + encode(change(2)).data
    assert got_a[0].data is got_b[0].data


async def test_a_slow_subscriber_is_cut_off_and_the_others_get_everything() -> None:
    broadcaster = AlertBroadcaster(queue_size=3)
    async with broadcaster.subscribe() as slow, broadcaster.subscribe() as quick:
        received: list[int] = []
        for first in (1, 3, 5):
            broadcaster.publish([change(first), change(first + 1)])
            received += _ids(quick.take())
        assert received == [1, 2, 3, 4, 5, 6]
        assert slow.lagged and await slow.next() is None
        assert broadcaster.subscribers == 1


async def test_past_the_cap_a_subscription_starts_closed() -> None:
    broadcaster = AlertBroadcaster(max_subscribers=1)
    async with broadcaster.subscribe() as first:
        assert broadcaster.full
        async with broadcaster.subscribe() as second:
            assert second.closed and await second.next() is None
            broadcaster.publish([change(1)])
        assert _ids(first.take()) == [1]
    assert not broadcaster.full


async def test_a_stream_past_the_cap_gets_503_with_retry_after(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    broadcaster = AlertBroadcaster(max_subscribers=1)
    services = api_services(sessions, broadcaster=broadcaster)
    async with broadcaster.subscribe(), api_client(services) as client:
        response = await client.get("/api/v1/alerts/stream")
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert "1 alert streams are open" in response.json()["detail"]


def test_a_logged_change_is_the_same_event_as_the_live_one() -> None:
    broadcaster = AlertBroadcaster()
    live = change(7)
    stored = live.alert.model_dump_json()
    # Not published here (another worker's, or older than the kept frames): built.
    assert broadcaster.logged_frame(7, "raised", stored).data == encode(live).data
    # Published here: the kept frame itself, not built again.
    broadcaster.publish([change(8)])
    kept = broadcaster.frame(change(8))
    assert broadcaster.logged_frame(8, "raised", "not even JSON") is kept


async def test_the_log_is_read_back_as_stored(sessions: async_sessionmaker[AsyncSession]) -> None:
    from dispatch.service import AlertService
    from dispatch.store import AlertStore
    from rules.events import Action
    from tests.unit.test_alert_store import event

    store = AlertStore(sessions)
    changes = await AlertService(store, AlertBroadcaster()).apply([event(Action.raise_)])
    ((event_id, kind, text),) = await store.log_after(0)
    assert (event_id, kind) == (changes[0].event_id, "raised")
    assert AlertPublic.model_validate_json(text) == changes[0].alert
