"""Ingest in-process: raw MQTT messages in, ReadingBatches and rejections out."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contract.readings import KIND_CODES
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.batch import ReadingBatch
from ingest.rejected import RAW_KEEP_BYTES, RejectedStore
from ingest.service import Ingestor

NOW = 1_790_000_000_000


def device(device_id: str, kind: str = "fire", **extra: object) -> DeviceCreate:
    body: dict[str, object] = {"id": device_id, "kind": kind, "lat": -2.5, "lon": 112.9}
    if kind == "bin":
        body["depth_mm"] = 1000.0
    return DeviceCreate.model_validate(body | extra)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@dataclass
class Harness:
    ingestor: Ingestor
    batches: list[ReadingBatch]
    rejected: RejectedStore
    clock: Clock


@pytest.fixture
async def setup(sessions: async_sessionmaker[AsyncSession]) -> Harness:
    directory = DeviceDirectory()
    directory.upsert(device("f1"))
    directory.upsert(device("b1", "bin"))
    registry: dict[str, DeviceCreate] = {
        "late": device("late"),
        "g1": device("g1", gateway_id="gw1"),
    }
    batches: list[ReadingBatch] = []

    async def load(ids: Collection[str]) -> list[DeviceCreate]:
        return [registry[i] for i in ids if i in registry]

    async def on_batch(batch: ReadingBatch) -> None:
        batches.append(batch)

    rejected = RejectedStore(sessions, keep=100)
    clock = Clock()
    ingestor = Ingestor(
        directory, load, rejected, on_batch, batch_size=3, window_ms=100, clock=clock
    )
    return Harness(ingestor, batches, rejected, clock)


async def test_batch_columns(setup: Harness) -> None:
    ingestor, batches = setup.ingestor, setup.batches
    ingestor.handle("sigap/devices/f1/up", b'{"ts": 1789999999000, "seq": 3, "temp_c": 31}')
    ingestor.handle("sigap/devices/b1/up", b'{"distance_mm": 250}')
    assert await ingestor.flush() == 2
    (batch,) = batches
    assert [batch.device_ids[i] for i in batch.device.tolist()] == ["f1", "b1"]
    assert batch.kind.tolist() == [KIND_CODES["fire"], KIND_CODES["bin"]]
    assert batch.ts_ms.tolist() == [1_789_999_999_000, NOW]
    assert batch.seq.tolist() == [3, -1]
    assert batch.col("temp_c")[0] == 31.0 and math.isnan(batch.col("temp_c")[1])
    assert batch.col("fill_pct")[1] == 75.0  # from distance and the 1000 mm depth


async def test_calibration_offsets_apply_to_their_device_only(setup: Harness) -> None:
    ingestor, batches = setup.ingestor, setup.batches
    ingestor.directory.upsert(device("b2", "bin", sensor_offsets={"distance_mm": -50}))
    ingestor.directory.upsert(device("f2", sensor_offsets={"temp_c": -1.5, "humidity_pct": 2}))
    ingestor.handle("sigap/devices/b2/up", b'{"distance_mm": 300}')
    ingestor.handle("sigap/devices/f2/up", b'{"temp_c": 31.5}')
    ingestor.handle("sigap/devices/b1/up", b'{"distance_mm": 300}')
    assert await ingestor.flush() == 3
    (batch,) = batches
    assert batch.col("distance_mm").tolist()[::2] == [250.0, 300.0]
    assert batch.col("fill_pct").tolist()[::2] == [75.0, 70.0]  # from the corrected distance
    assert batch.col("temp_c")[1] == 30.0
    assert math.isnan(batch.col("humidity_pct")[1])  # not reported: no offset makes one up


async def test_flush_is_due_on_size_or_window(setup: Harness) -> None:
    ingestor, clock = setup.ingestor, setup.clock
    assert not ingestor.due()
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 30}')
    assert not ingestor.due()
    clock.now += 100
    assert ingestor.due()
    await ingestor.flush()
    for _ in range(3):
        ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 30}')
    assert ingestor.due()


async def test_rejections_are_stored_with_reason(setup: Harness) -> None:
    ingestor, batches, rejected = setup.ingestor, setup.batches, setup.rejected
    ingestor.handle("sigap/devices/f1/up", b"{oops")
    ingestor.handle("sigap/devices/nobody/up", b'{"temp_c": 30}')
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 30, "pad": "' + b"x" * 300_000 + b'"}')
    ingestor.handle("weird/topic", b"{}")
    assert await ingestor.flush() == 0 and batches == []
    records = await rejected.find()
    assert sorted(r.reason for r in records) == sorted(
        ["not_json", "unknown_device", "oversized", "bad_topic"]
    )
    big = next(r for r in records if r.reason == "oversized")
    assert big.truncated and len(big.raw) == RAW_KEEP_BYTES and big.device_id == "f1"
    assert next(r for r in records if r.reason == "unknown_device").raw == b'{"temp_c": 30}'


async def test_device_registered_elsewhere_is_looked_up(setup: Harness) -> None:
    ingestor = setup.ingestor
    ingestor.handle("sigap/devices/late/up", b'{"temp_c": 30}')
    assert await ingestor.flush() == 1
    assert ingestor.directory.get("late") is not None


async def test_gateway_may_report_only_its_devices(setup: Harness) -> None:
    ingestor, rejected = setup.ingestor, setup.rejected
    payload = orjson.dumps(
        {
            "readings": [
                {"device_id": "g1", "temp_c": 30},
                {"device_id": "f1", "temp_c": 30},  # registered without a gateway
                {"device_id": "g1", "temp_c": "x"},
            ]
        }
    )
    ingestor.handle("sigap/gateways/gw1/up", payload)
    ingestor.handle(
        "sigap/gateways/gw2/up", orjson.dumps({"readings": [{"device_id": "g1", "temp_c": 30}]})
    )
    assert await ingestor.flush() == 1
    records = {(r.device_id, r.reason, r.topic) for r in await rejected.find()}
    assert records == {
        ("f1", "wrong_gateway", "sigap/gateways/gw1/up"),
        ("g1", "bad_type", "sigap/gateways/gw1/up"),
        ("g1", "wrong_gateway", "sigap/gateways/gw2/up"),
    }


async def test_registry_outage_keeps_readings(setup: Harness) -> None:
    ingestor = setup.ingestor
    calls = 0

    async def broken(ids: Collection[str]) -> list[DeviceCreate]:
        nonlocal calls
        calls += 1
        raise ConnectionError("database is locked")

    original = ingestor._load_devices
    ingestor._load_devices = broken
    ingestor.handle("sigap/devices/late/up", b'{"temp_c": 30}')
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 31}')
    with pytest.raises(ConnectionError):
        await ingestor.flush()
    assert ingestor.staged == 2 and calls == 1
    ingestor._load_devices = original
    assert await ingestor.flush() == 2


async def test_rejected_store_is_bounded_by_count_even_between_prunes(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from datetime import UTC, datetime

    from ingest.rejected import Rejected

    store = RejectedStore(sessions, keep=1000)
    garbage = Rejected(datetime.now(UTC), "t", "not_json", "x", b"x")
    await store.add_many([garbage] * 50)
    assert await store.count() == 50  # under a tenth of keep: no prune yet
    for _ in range(30):  # a flood, with no periodic prune in between
        await store.add_many([garbage] * 100)
    assert await store.count() == 1000  # pruned as it went, newest kept
    assert [r.detail for r in await store.find(limit=1)] == ["x"]


async def test_rejected_store_drops_entries_past_their_age(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from datetime import UTC, datetime, timedelta

    from ingest.rejected import Rejected

    now = datetime(2026, 11, 27, tzinfo=UTC)
    store = RejectedStore(sessions, keep=1000, max_age=timedelta(days=7))
    old = Rejected(now - timedelta(days=8), "t", "not_json", "old", b"x")
    new = Rejected(now - timedelta(days=1), "t", "not_json", "new", b"x")
    await store.add_many([old, old, new])
    assert await store.prune(now) == 2
    assert [r.detail for r in await store.find()] == ["new"]


async def test_an_air_quality_station_s_reading_is_stored_with_its_fields(
    setup: Harness,
) -> None:
    from ingest.influx import LineEncoder

    ingestor, batches = setup.ingestor, setup.batches
    ingestor.directory.upsert(device("air-1", "air", sensor_offsets={"pm25_ugm3": -1.5}))
    ingestor.handle(
        "sigap/devices/air-1/up",
        b'{"ts": 1789999999000, "pm25_ugm3": 184, "pm10_ugm3": 240.5, "co_ppm": 4.2,'
        b' "battery_v": 12.6}',
    )
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 31}')
    assert await ingestor.flush() == 2
    (batch,) = batches
    assert batch.kind.tolist() == [KIND_CODES["air"], KIND_CODES["fire"]]
    assert batch.col("pm25_ugm3")[0] == 182.5  # calibrated
    assert batch.col("pm10_ugm3")[0] == 240.5 and batch.col("co_ppm")[0] == 4.2
    assert math.isnan(batch.col("fill_pct")[0])  # no bin arithmetic for a station
    # What InfluxDB receives: tagged kind=air, a field per quantity it sent.
    air_line = LineEncoder("readings").encode(batch).decode().splitlines()[0]
    assert air_line == (
        "readings,device_id=air-1,kind=air co_ppm=4.2,pm25_ugm3=182.5,battery_v=12.6,"
        "pm10_ugm3=240.5 1789999999000"
    )


async def test_messages_are_counted_by_topic_kind_at_each_fold(setup: Harness) -> None:
    # Counted as plain ints per message, folded into the Prometheus counter by the flush
    # timer (and each flush): none is lost or counted twice.
    def counted() -> dict[str, float]:
        return {
            kind: REGISTRY.get_sample_value("sigap_ingest_messages_total", {"topic_kind": kind})
            or 0.0
            for kind in ("devices", "gateways", "lorawan", "unknown")
        }

    ingestor = setup.ingestor
    before = counted()
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 31}')
    ingestor.handle("sigap/devices/f1/up", b"not json")
    ingestor.handle("sigap/gateways/gw1/up", b'{"readings": [{"device_id": "g1", "temp_c": 30}]}')
    ingestor.handle("elsewhere/up", b"{}")
    ingestor.handle("application/app/device/0101010101010101/event/up", b"{}")
    assert counted() == before  # not folded yet
    ingestor.fold_received()
    ingestor.fold_received()  # a second fold adds nothing
    after = counted()
    assert {k: after[k] - before[k] for k in after} == {
        "devices": 2,
        "gateways": 1,
        "lorawan": 1,
        "unknown": 1,
    }


async def test_plain_gateway_batches_keep_arrival_order_among_readings_alone(
    setup: Harness,
) -> None:
    ingestor, batches = setup.ingestor, setup.batches
    ingestor.directory.upsert(device("g2", "bin", gateway_id="gw1"))
    ingestor.handle("sigap/devices/f1/up", b'{"temp_c": 31, "seq": 1}')
    plain = [
        {"device_id": "g2", "distance_mm": 400, "seq": 7, "ts": NOW - 5000},
        {"device_id": "g2", "distance_mm": 500, "seq": 8, "ts": (NOW - 4000) / 1000},
    ]
    ingestor.handle("sigap/gateways/gw1/up", orjson.dumps({"readings": plain}))
    ingestor.handle("sigap/devices/b1/up", b'{"distance_mm": 250}')
    assert ingestor.staged == 4  # readings, not messages
    assert await ingestor.flush() == 4
    (batch,) = batches
    assert [batch.device_ids[i] for i in batch.device.tolist()] == ["f1", "g2", "g2", "b1"]
    assert batch.seq.tolist() == [1, 7, 8, -1]
    assert batch.ts_ms.tolist() == [NOW, NOW - 5000, NOW - 4000, NOW]
    assert batch.col("fill_pct").tolist() == [
        pytest.approx(math.nan, nan_ok=True),
        60.0,
        50.0,
        75.0,
    ]
    assert batch.kind.tolist() == [KIND_CODES[k] for k in ("fire", "bin", "bin", "bin")]


async def test_a_refused_reading_of_a_plain_batch_is_kept_as_it_was_sent(setup: Harness) -> None:
    ingestor, batches, rejected = setup.ingestor, setup.batches, setup.rejected
    items = [
        {"device_id": "g1", "temp_c": 30},
        {"device_id": "nobody", "temp_c": 31.25, "firmware": "1.2", "ts": NOW - 1},
        {"device_id": "f1", "temp_c": 32},  # registered without a gateway
        {"device_id": "g1", "temp_c": 33, "seq": 4},
    ]
    ingestor.handle("sigap/gateways/gw1/up", orjson.dumps({"readings": items}))
    assert await ingestor.flush() == 2
    (batch,) = batches
    assert batch.col("temp_c").tolist() == [30.0, 33.0] and batch.seq.tolist() == [-1, 4]
    records = {r.device_id: r for r in await rejected.find()}
    assert {d: r.reason for d, r in records.items()} == {
        "nobody": "unknown_device",
        "f1": "wrong_gateway",
    }
    assert records["nobody"].raw == orjson.dumps(items[1])  # as the careful path keeps it
    assert records["f1"].topic == "sigap/gateways/gw1/up"


async def test_a_registry_outage_keeps_a_plain_batch(setup: Harness) -> None:
    ingestor = setup.ingestor

    async def broken(ids: Collection[str]) -> list[DeviceCreate]:
        raise ConnectionError("database is locked")

    original = ingestor._load_devices
    ingestor._load_devices = broken
    items = [{"device_id": "g1", "temp_c": 30}, {"device_id": "g1", "temp_c": 31}]
    ingestor.handle("sigap/gateways/gw1/up", orjson.dumps({"readings": items}))
    with pytest.raises(ConnectionError):
        await ingestor.flush()
    assert ingestor.staged == 2
    ingestor._load_devices = original
    assert await ingestor.flush() == 2 and ingestor.staged == 0


def _tts_uplink(eui: str, f_cnt: int, decoded: dict[str, object]) -> tuple[str, bytes]:
    at = "2026-09-21T14:13:19.000Z"  # a second before NOW
    envelope = {
        "end_device_ids": {"device_id": f"d-{eui[:8]}", "dev_eui": eui.upper()},
        "received_at": at,
        "uplink_message": {"f_cnt": f_cnt, "decoded_payload": decoded, "received_at": at},
    }
    return f"v3/sampit@kotim/devices/d-{eui[:8]}/up", orjson.dumps(envelope)


async def test_uplinks_refused_when_mapped_are_kept_even_with_nothing_else_staged(
    setup: Harness,
) -> None:
    ingestor, batches, rejected = setup.ingestor, setup.batches, setup.rejected
    eui = "70b3d57ed0000001"
    ingestor.directory.upsert(device("lw1", network_server="tts", ns_device_id=eui))
    # A version report: no quantity, so refused once its device's field map is applied.
    ingestor.handle(*_tts_uplink(eui, 1, {"version": "1.2"}))
    assert await ingestor.flush() == 0 and batches == []
    assert [(r.device_id, r.reason) for r in await rejected.find()] == [("lw1", "no_quantity")]
    # And beside a reading that maps: the reading is taken, the report kept.
    ingestor.handle(*_tts_uplink(eui, 2, {"temperature": 31.5}))
    ingestor.handle(*_tts_uplink(eui, 3, {"version": "1.2"}))
    assert await ingestor.flush() == 1
    assert batches[0].col("temp_c").tolist() == [31.5]
    assert len(await rejected.find()) == 2
