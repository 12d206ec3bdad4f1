"""Several ingest workers in-process: ownership, forwarded batches, acknowledgements."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Collection
from typing import Any

import numpy as np
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from contract.readings import Q_INDEX
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from dispatch.broadcast import AlertBroadcaster
from dispatch.feed import ChangeFeed
from dispatch.model import AlertChange, AlertPublic, ChangeType
from ingest import partition
from ingest.acks import AckTracker
from ingest.batch import ReadingBatch
from ingest.partition import ForwardError, Owners, Partition
from ingest.rejected import RejectedStore
from ingest.service import Ingestor, Partitioned
from sigap.cli import app

NOW = 1_790_000_000_000


def device(device_id: str, kind: str = "fire", **extra: Any) -> DeviceCreate:
    body: dict[str, Any] = {"id": device_id, "kind": kind, "lat": -2.5, "lon": 112.9}
    if kind == "bin":
        body["depth_mm"] = 1000.0
    return DeviceCreate.model_validate(body | extra)


def owner_of(directory: DeviceDirectory, device_id: str, kind: str = "bin") -> int:
    """Device's owner among two workers (registered or not)."""
    info = directory.get(device_id) or DeviceDirectory().upsert(device(device_id, kind))
    return Partition(2, 0).owner(info)


def directory_of(*devices: DeviceCreate) -> DeviceDirectory:
    directory = DeviceDirectory()
    for d in devices:
        directory.upsert(d)
    return directory


# -- ownership ---------------------------------------------------------------------------


def test_partition_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"0\.\.1"):
        Partition(2, 2)
    with pytest.raises(ValueError, match="at least 1"):
        Partition(0, 0)
    with pytest.raises(ValueError, match="plain topic level"):
        Partition(2, 0, group="a/b")
    part = Partition(3, 1, group="g")
    assert part.topic == "sigap/internal/ingest/1"
    assert part.shared("sigap/devices/+/up") == "$share/g/sigap/devices/+/up"


def test_detectors_that_may_confirm_each_other_share_an_owner() -> None:
    directory = directory_of(
        *(device(f"z{i}", zone="mall") for i in range(20)),
        # No zone: 20 detectors a few metres apart fall in one map cell.
        *(device(f"c{i}", lat=-2.5301 + 1e-5 * i, lon=112.9301) for i in range(20)),
        *(device(f"b{i}", "bin") for i in range(200)),
    )
    part = Partition(4, 0)
    owner = {i: part.owner(info) for i in directory.ids if (info := directory.get(i))}
    assert len({owner[f"z{i}"] for i in range(20)}) == 1
    assert len({owner[f"c{i}"] for i in range(20)}) == 1
    # Bins have no cross-device rules: they spread by id over every worker.
    assert {owner[f"b{i}"] for i in range(200)} == {0, 1, 2, 3}
    # A pure function of the registry: every worker computes the same owners.
    again = Partition(4, 3)
    assert all(again.owner(info) == owner[info.id] for info in map(directory.get, owner) if info)


def batch_of(directory: DeviceDirectory, ids: list[str], temps: list[float]) -> ReadingBatch:
    n = len(ids)
    values = np.full((len(Q_INDEX), n), np.nan)
    values[Q_INDEX["temp_c"]] = temps
    infos = [directory.get(i) for i in ids]
    return ReadingBatch(
        np.array([info.index for info in infos if info], np.int32),
        np.array([info.kind_code for info in infos if info], np.uint8),
        np.arange(n, dtype=np.int64) + NOW,
        np.arange(n, dtype=np.int64),
        values,
        directory.ids,
        arrived_ms=NOW,
    )


def test_split_keeps_each_owners_rows_in_order() -> None:
    directory = directory_of(*(device(f"b{i}", "bin") for i in range(50)))
    owners = Owners(Partition(2, 0), directory)
    ids = [f"b{i % 50}" for i in range(120)]
    batch = batch_of(directory, ids, [float(i) for i in range(120)])
    local, others = owners.split(batch)
    assert local is not None and set(others) == {1}
    for part, worker in ((local, 0), (others[1], 1)):
        got = [batch.device_ids[i] for i in part.device.tolist()]
        want = [i for i in ids if owner_of(directory, i) == worker]
        assert got == want
        assert np.all(np.diff(part.col("temp_c")) > 0)  # arrival order kept
    assert len(local) + len(others[1]) == 120
    # A device registered later is owned too (the directory tells Owners): one that
    # worker 1 owns must not pass for worker 0's (the owner table starts as zeros).
    late = next(f"late{i}" for i in range(100) if owner_of(directory, f"late{i}", "bin") == 1)
    directory.upsert(device(late, "bin"))
    mine, rest = owners.split(batch_of(directory, [late], [1.0]))
    assert mine is None and list(rest) == [1]


def test_forwarded_batches_round_trip_with_missing_values() -> None:
    directory = directory_of(device("f1"), device("f2"))
    batch = batch_of(directory, ["f1", "f2", "f1"], [30.0, 31.5, 70.0])
    batch.values[Q_INDEX["battery_v"], 1] = 3.6
    wire = partition.encode(batch, Partition(2, 1))
    got = partition.decode(wire)
    assert (got.workers, got.sender, got.arrived_ms) == (2, 1, NOW)
    assert got.device_ids == ["f1", "f2", "f1"]
    assert got.ts_ms.tolist() == batch.ts_ms.tolist() and got.seq.tolist() == [0, 1, 2]
    assert got.values[Q_INDEX["temp_c"]].tolist() == [30.0, 31.5, 70.0]
    battery = got.values[Q_INDEX["battery_v"]]
    assert math.isnan(battery[0]) and battery[1] == 3.6 and math.isnan(battery[2])
    assert "humidity_pct" not in orjson.loads(wire)["q"]  # columns nobody carried stay home


def test_forwarded_batches_keep_the_faults_sensors_report() -> None:
    # A LoRaWAN status report ("distance: No Sensor") reaching a worker that does not own
    # the device is forwarded with its fault, renumbered with the rows the owner gets.
    directory = directory_of(*(device(f"b{i}", "bin") for i in range(20)))
    owners = Owners(Partition(2, 0), directory)
    ids = [f"b{i}" for i in range(20)]
    batch = batch_of(directory, ids, [float(i) for i in range(20)])
    faulty = {row: f"distance: No Sensor at {ids[row]}" for row in (3, 11, 17)}
    batch = dataclasses.replace(batch, faults=faulty)
    local, others = owners.split(batch)
    by_device = {ids[row]: text for row, text in faulty.items()}
    parts = [p for p in (local, *others.values()) if p is not None]
    for part in parts:
        names = [batch.device_ids[i] for i in part.device.tolist()]
        want = {row: by_device[name] for row, name in enumerate(names) if name in by_device}
        assert dict(part.faults) == want
        got = partition.decode(partition.encode(part, Partition(2, 0)))
        assert got.faults == want
    assert sum(len(p.faults) for p in parts) == 3
    with pytest.raises(ForwardError, match="row"):
        partition.decode(
            b'{"v": 1, "workers": 2, "from": 0, "arrived_ms": 1, "device_id": ["a"],'
            b' "ts_ms": [1], "seq": [1], "q": {}, "faults": {"4": "x"}}'
        )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 99}', "version 1"),
        (b'{"v": 1, "device_id": ["a"], "ts_ms": [1, 2], "seq": [1], "q": {}}', "lengths"),
        (b'{"v": 1, "device_id": [1], "ts_ms": [1], "seq": [1], "q": {}}', "strings"),
        (b'{"v": 1, "device_id": ["a"], "ts_ms": [1], "seq": [1], "q": {"x": [1]}}', "malformed"),
    ],
)
def test_unreadable_forwarded_batches_say_why(payload: bytes, message: str) -> None:
    with pytest.raises(ForwardError, match=message):
        partition.decode(payload)


# -- two ingestors, forwarding through a recording "broker" ------------------------------


class Broker:
    """Records publishes; `release()` sends the PUBACKs."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.pubacks: asyncio.Event = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, **options: Any) -> None:
        assert options["qos"] == 1
        self.sent.append((topic, payload))
        await self.pubacks.wait()


class Worker:
    def __init__(self, index: int, directory: DeviceDirectory, rejected: RejectedStore) -> None:
        self.evaluated: list[list[str]] = []
        self.stored: list[int] = []
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def evaluate(batch: ReadingBatch) -> asyncio.Future[None]:
            self.evaluated.append([batch.device_ids[i] for i in batch.device.tolist()])
            return self.committed

        async def store(batch: ReadingBatch) -> None:
            self.stored.append(len(batch))

        async def load(ids: Collection[str]) -> list[DeviceCreate]:
            return []

        async def unused(batch: ReadingBatch) -> None:
            raise AssertionError("a partitioned ingestor evaluates and stores separately")

        self.owners = Owners(Partition(2, index), directory)
        self.ingestor = Ingestor(
            directory,
            load,
            rejected,
            unused,
            clock=lambda: NOW,
            partitioned=Partitioned(self.owners, evaluate, store),
        )
        self.broker = Broker()
        self.ingestor._client = self.broker  # type: ignore[assignment]
        self.acked: list[int] = []
        self.acks = AckTracker(lambda mid, qos: self.acked.append(mid))


async def test_a_reading_is_evaluated_by_its_owner_and_acked_after_the_forward(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fleet = [device(f"b{i}", "bin") for i in range(40)]
    rejected = RejectedStore(sessions, keep=100)
    w0 = Worker(0, directory_of(*fleet), rejected)
    w1 = Worker(1, directory_of(*reversed(fleet)), rejected)  # other indices, same owners
    theirs = [d.id for d in fleet if owner_of(w0.ingestor.directory, d.id) == 1]
    ours = [d.id for d in fleet if d.id not in theirs]
    assert theirs and ours

    # Worker 0 receives every reading (one gateway message, QoS 1).
    gateway_batch = {"readings": [{"device_id": d.id, "fill_pct": 50.0} for d in fleet]}
    for d in fleet:
        w0.ingestor.directory.upsert(device(d.id, "bin", gateway_id="gw"))
    receipt = w0.acks.received(7, 1)
    w0.ingestor.handle("sigap/gateways/gw/up", orjson.dumps(gateway_batch), receipt)
    assert await w0.ingestor.flush() == 40
    assert w0.evaluated == [ours] and w0.stored == [40]  # stores all, evaluates its own
    await asyncio.sleep(0)
    ((topic, wire),) = w0.broker.sent
    assert topic == "sigap/internal/ingest/1"
    w0.committed.set_result(None)
    await asyncio.sleep(0)
    assert w0.acked == []  # the forward has no PUBACK yet
    w0.broker.pubacks.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert w0.acked == [7]

    # Worker 1 evaluates the forwarded rows, stores nothing, acks once committed.
    forwarded = w1.acks.received(3, 1)
    w1.ingestor.handle(topic, wire, forwarded)
    assert w1.ingestor.due()
    await w1.ingestor.flush()
    assert w1.evaluated == [theirs] and w1.stored == []
    assert w1.acked == []
    w1.committed.set_result(None)
    await asyncio.sleep(0)
    assert w1.acked == [3]


async def test_a_broken_forwarded_batch_is_rejected_with_its_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rejected = RejectedStore(sessions, keep=100)
    w1 = Worker(1, directory_of(device("f1")), rejected)
    receipt = w1.acks.received(1, 1)
    w1.ingestor.handle("sigap/internal/ingest/1", b'{"v": 1}', receipt)
    await w1.ingestor.flush()
    (row,) = await rejected.find(limit=10)
    assert row.reason == "bad_forward" and "malformed" in row.detail
    assert w1.acked == [1] and w1.evaluated == []


async def test_a_forwarded_batch_waits_for_the_alert_store_and_is_acked_later(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    fleet = [device(f"b{i}", "bin") for i in range(10)]
    w1 = Worker(1, directory_of(*fleet), RejectedStore(sessions, keep=100))
    down = [True]
    evaluate = w1.ingestor._partitioned.evaluate  # type: ignore[union-attr]

    async def flaky(batch: ReadingBatch) -> asyncio.Future[None] | None:
        if down[0]:
            raise ConnectionError("database is down")
        return await evaluate(batch)

    w1.ingestor._partitioned = Partitioned(w1.owners, flaky, w1.ingestor._partitioned.store)  # type: ignore[union-attr]
    directory = w1.ingestor.directory
    wire = partition.encode(batch_of(directory, ["b1", "b2"], [1.0, 2.0]), Partition(2, 0))
    w1.ingestor.handle("sigap/internal/ingest/1", wire, w1.acks.received(1, 1))
    w1.ingestor.handle("sigap/internal/ingest/1", b"garbage", w1.acks.received(2, 1))
    with pytest.raises(ConnectionError):
        await w1.ingestor.flush()
    assert w1.acked == [] and w1.ingestor.staged == 2  # kept, in order, for the next flush
    down[0] = False
    await w1.ingestor.flush()
    w1.committed.set_result(None)
    await asyncio.sleep(0)
    assert w1.acked == [1, 2] and w1.evaluated == [["b1", "b2"]]


# -- the API process's change feed -------------------------------------------------------


def change(event_id: int) -> AlertChange:
    alert = AlertPublic.model_validate(
        {
            "id": event_id,
            "slot": "fire",
            "kind": "fire.alarm",
            "category": "fire",
            "device_id": f"f{event_id}",
            "status": "open",
            "severity": "critical",
            "raised_at": "2026-11-27T00:00:00Z",
            "updated_at": "2026-11-27T00:00:00Z",
            "reason": "temp_c 70 >= 57",
        }
    )
    return AlertChange(event_id=event_id, type=ChangeType.raised, alert=alert)


async def test_change_feed_publishes_late_commits_once_and_skips_its_own() -> None:
    log: dict[int, AlertChange] = {}
    published: list[int] = []
    clock = [0.0]

    async def changes_after(after: int, limit: int) -> list[AlertChange]:
        return [log[i] for i in sorted(log) if i > after][:limit]

    feed = ChangeFeed(
        changes_after,
        lambda changes: published.extend(c.event_id for c in changes),
        lambda event_id: event_id == 5,  # this process published 5 itself
        gap_s=10.0,
        clock=lambda: clock[0],
    )
    feed.start_at(0)
    for i in (1, 2, 4, 5, 7):
        log[i] = change(i)
    assert await feed.poll() == 4
    assert published == [1, 2, 4, 7]
    # 3 committed late (a PostgreSQL transaction that took its id early): still streamed.
    log[3] = change(3)
    clock[0] = 5.0
    await feed.poll()
    assert published == [1, 2, 4, 7, 3]
    await feed.poll()  # nothing twice
    assert published == [1, 2, 4, 7, 3]
    # A gap nobody fills is given up after gap_s; what comes after it still flows.
    clock[0] = 20.0
    log[8] = change(8)
    await feed.poll()
    log[6] = change(6)  # too late: the feed stopped waiting for 6
    await feed.poll()
    assert published == [1, 2, 4, 7, 3, 8]


async def test_a_change_reaching_the_broadcaster_twice_goes_out_once() -> None:
    # Committed here and read back by the feed before its own publication: one event.
    broadcaster = AlertBroadcaster()
    async with broadcaster.subscribe() as sub:
        broadcaster.publish([change(1), change(2)])
        broadcaster.publish([change(2), change(3)])
        got = [frame for batch in sub.take() for frame in batch.frames]
    assert [frame.event_id for frame in got] == [1, 2, 3]
    assert broadcaster.published(2) and not broadcaster.published(4)


def test_sigap_ingest_refuses_to_run_as_the_only_worker() -> None:
    # One worker means one MQTT session, which `sigap up` holds: a second process with
    # it would take the session over. The settings are checked before anything starts.
    result = CliRunner().invoke(app, ["ingest"], env={"SIGAP_INGEST_WORKERS": "1"})
    assert result.exit_code == 2
    assert "SIGAP_INGEST_WORKERS" in result.output
    wrong = CliRunner().invoke(
        app, ["ingest"], env={"SIGAP_INGEST_WORKERS": "2", "SIGAP_INGEST_WORKER": "2"}
    )
    assert wrong.exit_code != 0 and "numbered 0..1" in str(wrong.exception)
