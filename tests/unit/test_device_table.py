"""The directory's device table: ingest's per-reading registry checks as numpy columns,
always in step with the DeviceInfo records they come from."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.directory import NO_GATEWAY_CHECK, UNKNOWN_GATEWAY, DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.batch import ReadingBatch
from ingest.rejected import RejectedStore
from ingest.service import Ingestor

NOW = 1_790_000_000_000

_DEVICES = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["a", "b", "c", "d"]),
        "kind": st.sampled_from(["fire", "bin"]),
        "gateway_id": st.sampled_from([None, "gw1", "gw2", "gw3"]),
        "status": st.sampled_from(["active", "maintenance", "retired"]),
        "depth_mm": st.sampled_from([800.0, 1200.0]),
        "sensor_offsets": st.sampled_from([None, {}, {"temp_c": -1.5}]),
    }
).map(lambda d: d if d["kind"] == "bin" else {**d, "depth_mm": None})  # depth: bins only


@settings(max_examples=200, deadline=None)
@given(st.lists(_DEVICES, min_size=1, max_size=12))
def test_the_table_follows_every_upsert(changes: list[dict[str, object]]) -> None:
    directory = DeviceDirectory()
    for change in changes:
        directory.upsert(DeviceCreate.model_validate({**change, "lat": -2.5, "lon": 112.9}))
        table = directory.table
        gateways: dict[str | None, int] = {}
        for device_id in directory.ids:
            info = directory.get(device_id)
            assert info is not None
            at = table.index[device_id]
            assert at == info.index
            assert table.kind[at] == info.kind_code
            depth = float(table.depth_mm[at])
            assert depth == info.depth_mm if info.depth_mm else math.isnan(depth)
            assert table.retired[at] == (info.status == "retired")
            assert table.has_offsets[at] == bool(info.sensor_offsets)
            code = int(table.gateway[at])
            assert (code == 0) == (info.gateway_id is None)
            assert gateways.setdefault(info.gateway_id, code) == code  # one code per gateway
            if info.gateway_id is not None:
                assert table.gateway_code(info.gateway_id) == code
        assert len(set(gateways.values())) == len(gateways)  # and one gateway per code
    assert directory.table.gateway_code(None) == NO_GATEWAY_CHECK
    assert directory.table.gateway_code("never-seen") == UNKNOWN_GATEWAY


async def test_a_retired_or_moved_device_is_refused_on_every_path(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    directory = DeviceDirectory()
    base = {"kind": "fire", "lat": -2.5, "lon": 112.9}
    for device_id, gateway in (("r1", "gw1"), ("m1", "gw1"), ("ok", "gw1")):
        directory.upsert(
            DeviceCreate.model_validate({**base, "id": device_id, "gateway_id": gateway})
        )
    batches: list[ReadingBatch] = []

    async def on_batch(batch: ReadingBatch) -> None:
        batches.append(batch)

    async def load(ids: object) -> list[DeviceCreate]:
        return []

    store = RejectedStore(sessions)
    ingestor = Ingestor(directory, load, store, on_batch, clock=lambda: NOW)
    directory.upsert(
        DeviceCreate.model_validate({**base, "id": "r1", "gateway_id": "gw1", "status": "retired"})
    )
    directory.upsert(DeviceCreate.model_validate({**base, "id": "m1", "gateway_id": "gw2"}))
    plain = [{"device_id": d, "temp_c": 30} for d in ("r1", "m1", "ok")]
    careful = [*plain, {"device_id": "ok", "temp_c": "x"}]  # one bad reading: reading by reading
    for items in (plain, careful):
        ingestor.handle("sigap/gateways/gw1/up", orjson.dumps({"readings": items}))
    ingestor.handle("sigap/devices/r1/up", b'{"temp_c": 30}')
    ingestor.handle("sigap/devices/m1/up", b'{"temp_c": 30}')  # its own topic: any gateway
    assert await ingestor.flush() == 3
    (batch,) = batches
    assert [batch.device_ids[i] for i in batch.device.tolist()] == ["ok", "ok", "m1"]
    reasons = sorted((r.device_id, r.reason) for r in await store.find())
    assert reasons == [
        ("m1", "wrong_gateway"),
        ("m1", "wrong_gateway"),
        ("ok", "bad_type"),
        ("r1", "device_retired"),
        ("r1", "device_retired"),
        ("r1", "device_retired"),
    ]


async def test_a_table_out_of_step_is_mended_and_the_registry_decides(
    sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    directory = DeviceDirectory()
    for device_id in ("f1", "f2"):
        directory.upsert(
            DeviceCreate.model_validate(
                {"id": device_id, "kind": "fire", "lat": -2.5, "lon": 112.9, "gateway_id": "gw1"}
            )
        )
    batches: list[ReadingBatch] = []

    async def on_batch(batch: ReadingBatch) -> None:
        batches.append(batch)

    async def load(ids: object) -> list[DeviceCreate]:
        return []

    ingestor = Ingestor(directory, load, RejectedStore(sessions), on_batch, clock=lambda: NOW)
    table = directory.table
    table.retired[table.index["f1"]] = True  # what a bug in DeviceTable.set would leave
    del table.index["f2"]
    items = [{"device_id": "f1", "temp_c": 30}, {"device_id": "f2", "temp_c": 31}]
    ingestor.handle("sigap/gateways/gw1/up", orjson.dumps({"readings": items}))
    assert await ingestor.flush() == 2  # the registry says both are fine: both taken
    assert [batches[0].device_ids[i] for i in batches[0].device.tolist()] == ["f1", "f2"]
    assert "device table out of step" in caplog.text
    assert not table.retired[table.index["f1"]] and table.index["f2"] == 1  # mended
