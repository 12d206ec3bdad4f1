"""Nothing acknowledged before it is durable: acks, the disk spool and the InfluxDB writer."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import QUANTITIES
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.acks import AckTracker
from ingest.batch import ReadingBatch
from ingest.influx import InfluxClient, InfluxError, InfluxWriter, LineEncoder
from ingest.rejected import RejectedStore
from ingest.service import Ingestor
from ingest.spool import Spool, SpoolFull

NOW = 1_790_000_000_000


# -- AckTracker ------------------------------------------------------------------------


def test_acks_wait_for_every_part_and_keep_the_order() -> None:
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    first, second = tracker.received(11, 1), tracker.received(12, 1)
    assert first is not None and second is not None
    for receipt in (first, second):
        receipt.add_part()
        receipt.add_part()
        receipt.seal()
    second.done()
    second.done()
    assert acked == []  # 12 is finished, but 11 came first
    first.done()
    assert acked == []
    first.done()
    assert acked == [11, 12]
    assert tracker.outstanding == 0


def test_qos0_needs_no_ack_and_a_message_without_parts_is_acked_when_sealed() -> None:
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    assert tracker.received(1, 0) is None
    receipt = tracker.received(2, 1)
    assert receipt is not None
    receipt.seal()
    assert acked == [2]


def test_a_closed_tracker_acks_nothing_from_its_connection() -> None:
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    receipt = tracker.received(5, 1)
    assert receipt is not None
    receipt.add_part()
    receipt.seal()
    tracker.close()  # reconnected: message id 5 now means nothing
    receipt.done()
    assert acked == [] and tracker.outstanding == 0
    assert tracker.received(6, 1) is None


def test_the_unacked_gauge_is_the_newest_tracker_s_outstanding_messages() -> None:
    def gauge() -> float | None:
        return REGISTRY.get_sample_value("sigap_ingest_unacked_messages")

    old = AckTracker(lambda mid, qos: None)
    old.received(1, 1)
    assert gauge() == 1
    tracker = AckTracker(lambda mid, qos: None)  # a new connection
    old.close()
    receipts = [tracker.received(mid, 1) for mid in (1, 2, 3)]
    assert gauge() == 3
    for receipt in receipts[:2]:
        assert receipt is not None
        receipt.seal()
    assert gauge() == 1
    tracker.close()
    assert gauge() == 0


# -- Ingestor: acknowledgement follows durability --------------------------------------


class _Durable:
    """A batch handler whose batches are durable only once the test completes their future."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[None]] = []

    async def __call__(self, batch: ReadingBatch) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


async def _no_devices(ids: Collection[str]) -> list[DeviceCreate]:
    return []


async def test_ingestor_acks_readings_once_durable_and_rejections_once_stored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = DeviceDirectory()
    directory.upsert(
        DeviceCreate.model_validate({"id": "f1", "kind": "fire", "lat": -2.5, "lon": 112.9})
    )
    on_batch, load = _Durable(), _no_devices
    durable = on_batch.futures

    ingestor = Ingestor(
        directory, load, RejectedStore(sessions), on_batch, clock=lambda: NOW, window_ms=1
    )
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    ingestor.handle("sigap/devices/nobody/up", b'{"temp_c": 30}', tracker.received(1, 1))
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 30}', tracker.received(2, 1))
    # A gateway batch with one good and one bad reading is one message.
    ingestor.handle(
        "sigap/gateways/gw/up",
        b'{"readings": [{"device_id": "f1", "temp_c": 31}, {"device_id": "f1", "temp_c": "x"}]}',
        tracker.received(3, 1),
    )
    ingestor.handle("sigap/devices/f1/up", b"not json", tracker.received(4, 1))
    assert await ingestor.flush() == 1  # the gateway's f1 reading is refused: wrong gateway
    assert acked == [1]  # the unknown device's rejection is stored; message 2 is not durable
    durable[0].set_result(None)
    await asyncio.sleep(0)  # let the future's callbacks run
    assert acked == [1, 2, 3, 4]


async def test_a_plain_gateway_batch_is_acked_once_its_readings_and_refusals_are_durable(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = DeviceDirectory()
    for device_id in ("g1", "g2"):
        directory.upsert(
            DeviceCreate.model_validate(
                {"id": device_id, "kind": "fire", "lat": -2.5, "lon": 112.9, "gateway_id": "gw"}
            )
        )
    on_batch, load = _Durable(), _no_devices
    durable = on_batch.futures

    store = RejectedStore(sessions)
    ingestor = Ingestor(directory, load, store, on_batch, clock=lambda: NOW)
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    # Plain batches (the fast path): readings and a refusal; refusals only; readings only.
    ingestor.handle(
        "sigap/gateways/gw/up",
        b'{"readings": [{"device_id": "g1", "temp_c": 31}, {"device_id": "x", "temp_c": 1}]}',
        tracker.received(1, 1),
    )
    ingestor.handle(
        "sigap/gateways/gw/up",
        b'{"readings": [{"device_id": "y", "temp_c": 31}, {"device_id": "z", "temp_c": 1}]}',
        tracker.received(2, 1),
    )
    ingestor.handle(
        "sigap/gateways/gw/up",
        b'{"readings": [{"device_id": "g2", "temp_c": 31}]}',
        tracker.received(3, 1),
    )
    assert await ingestor.flush() == 2
    assert acked == [] and await store.count() == 3  # message 1 waits for its reading
    assert tracker.outstanding == 3
    durable[0].set_result(None)
    await asyncio.sleep(0)  # let the future's callbacks run
    assert acked == [1, 2, 3] and tracker.outstanding == 0


async def test_rejections_that_cannot_be_stored_are_not_acked(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    class DownStore(RejectedStore):
        fail = True

        async def add_many(self, items: object) -> None:
            if self.fail:
                raise OSError("database is locked")

    async def load(ids: Collection[str]) -> list[DeviceCreate]:
        return []

    async def on_batch(batch: ReadingBatch) -> None:
        return None

    store = DownStore(sessions)
    ingestor = Ingestor(DeviceDirectory(), load, store, on_batch, clock=lambda: NOW)
    acked: list[int] = []
    tracker = AckTracker(lambda mid, qos: acked.append(mid))
    ingestor.handle("sigap/devices/x/up", b"{", tracker.received(9, 1))
    await ingestor.flush()
    assert acked == [] and ingestor.staged == 1
    store.fail = False
    await ingestor.flush()
    assert acked == [9] and ingestor.staged == 0


# -- Spool -----------------------------------------------------------------------------


def test_spool_survives_a_restart_and_drops_half_written_chunks(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=10_000)
    spool.append(b"a v=1 1\n", 1)
    spool.append(b"a v=2 2\na v=3 3\n", 2)
    (tmp_path / "0000000000000002-5.tmp").write_bytes(b"a v=4")  # died mid-write
    again = Spool(tmp_path, max_bytes=10_000)
    assert (len(again), again.readings) == (2, 3)
    assert not list(tmp_path.glob("*.tmp"))
    segments = again.oldest(max_bytes=1)
    assert Spool.read(segments) == b"a v=1 1\n"  # at least one, even over the limit
    again.remove(segments)
    again.append(b"a v=5 5\n", 1)  # numbering continues after the survivors
    assert Spool.read(again.oldest(10_000)) == b"a v=2 2\na v=3 3\na v=5 5\n"


def test_spool_is_bounded(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=20)
    spool.append(b"x" * 15, 1)
    with pytest.raises(SpoolFull, match="spool full"):
        spool.append(b"y" * 10, 1)
    assert (len(spool), spool.bytes) == (1, 15)


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir())


# -- InfluxWriter with a spool ---------------------------------------------------------


class FlakyInflux(InfluxClient):
    """InfluxDB that can be switched off; records what it stored."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9", "test")
        self.up = True
        self.bodies: list[bytes] = []
        self.attempts = 0

    async def write(self, body: bytes, precision: str = "ms") -> None:
        self.attempts += 1
        if not self.up:
            raise InfluxError("InfluxDB unreachable: connection refused")
        self.bodies.append(body)

    def lines(self) -> list[str]:
        return [line for body in self.bodies for line in body.decode().splitlines()]


def batch(*seqs: int) -> ReadingBatch:
    n = len(seqs)
    values = np.full((len(QUANTITIES), n), np.nan)
    values[0] = 30.0
    return ReadingBatch(
        np.zeros(n, np.int32),
        np.ones(n, np.uint8),
        np.arange(NOW, NOW + n, dtype=np.int64),
        np.array(seqs, np.int64),
        values,
        ["f1"],
    )


async def eventually(check: object, what: str) -> None:
    """Poll a condition the writer task reaches on its own (bounded, not a sleep-and-hope)."""
    assert callable(check)
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_writer_spools_while_influxdb_is_down_and_writes_back_in_order(
    tmp_path: Path,
) -> None:
    influx = FlakyInflux()
    writer = InfluxWriter(
        influx, LineEncoder("readings"), spool=Spool(tmp_path, 1 << 20), max_retry_delay_s=0.01
    )
    task = asyncio.create_task(writer.run())
    try:
        first = await writer.submit(batch(1))
        await first
        influx.up = False
        during = [await writer.submit(batch(seq)) for seq in (2, 3, 4)]
        await asyncio.gather(*during)  # durable on disk while InfluxDB is down
        assert writer.spool is not None and writer.spool.readings == 3
        assert writer.pending == 3 and writer.last_error is not None
        influx.up = True
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        task.cancel()
    seqs = [int(line.split("seq=")[1].split("i")[0]) for line in influx.lines()]
    assert seqs == [1, 2, 3, 4]
    assert writer.spool is not None and writer.spool.bytes == 0
    assert not _files(tmp_path)


async def test_without_room_on_disk_readings_wait_in_memory_and_are_not_durable(
    tmp_path: Path,
) -> None:
    influx = FlakyInflux()
    influx.up = False
    spool = Spool(tmp_path, max_bytes=1024 * 1024)
    writer = InfluxWriter(influx, LineEncoder("readings"), spool=spool, max_retry_delay_s=0.01)

    def no_space(body: bytes, readings: int) -> None:
        raise OSError(28, "No space left on device")

    real_append = spool.append
    spool.append = no_space  # type: ignore[method-assign]
    task = asyncio.create_task(writer.run())
    try:
        pending = await writer.submit(batch(1))
        await eventually(lambda: writer.spool_error is not None, "the spool error")
        assert "No space left" in str(writer.spool_error)
        assert not pending.done()  # not durable, so its message is not acknowledged
        spool.append = real_append  # type: ignore[method-assign]
        await asyncio.wait_for(pending, 5)
        assert writer.spool_error is None and spool.readings == 1
        influx.up = True
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        task.cancel()
    assert len(influx.lines()) == 1


async def test_a_restarted_writer_writes_the_spool_of_the_last_run_first(tmp_path: Path) -> None:
    encoder = LineEncoder("readings")
    Spool(tmp_path, 1 << 20).append(encoder.encode(batch(1, 2)), 2)
    influx = FlakyInflux()
    writer = InfluxWriter(influx, encoder, spool=Spool(tmp_path, 1 << 20))
    assert writer.pending == 2
    task = asyncio.create_task(writer.run())
    try:
        await writer.submit(batch(3))
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        task.cancel()
    assert [line.split("seq=")[1] for line in influx.lines()] == [
        f"{seq}i {NOW + i}" for i, seq in ((0, 1), (1, 2), (0, 3))
    ]
