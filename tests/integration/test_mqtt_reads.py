"""Ingest's MQTT reads through ingest.bufsock, against the real broker: a burst of small
messages, a message larger than one read, and nothing left waiting in the read buffer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection

import orjson
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from contract.timeutil import now_ms
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.batch import ReadingBatch
from ingest.bufsock import READ_SIZE, BufferedSocket
from ingest.rejected import RejectedStore
from ingest.service import Ingestor, MqttEndpoint
from sigap import devstack
from sigap.runtime import make_engine
from tests.integration.conftest import BROKER, developer_client

SINGLES = 3_000
MEMBERS = 1_000  # the gateway batch: the most readings one may carry
TS0 = now_ms() - 3_600_000  # event times an hour ago: neither late nor in the future


def _endpoint(mosquitto: devstack.Service) -> MqttEndpoint:
    return MqttEndpoint(
        "127.0.0.1",
        mosquitto.port,
        client_id=f"sigap-test-{uuid.uuid4().hex[:8]}",
        username=BROKER.service_username,
        password=BROKER.service_password,
    )


async def _no_devices(_ids: Collection[str]) -> list[DeviceCreate]:
    return []


def _device(device_id: str, gateway_id: str | None = None) -> DeviceCreate:
    return DeviceCreate.model_validate(
        {"id": device_id, "kind": "fire", "lat": -2.5, "lon": 112.9, "gateway_id": gateway_id}
    )


async def test_buffered_reads_deliver_every_message_in_order(
    mosquitto: devstack.Service, sql_url: str
) -> None:
    directory = DeviceDirectory()
    directory.upsert(_device("f1"))
    members = [f"gw1-member-{i:04d}" for i in range(MEMBERS)]
    for member in members:
        directory.upsert(_device(member, "gw1"))
    expected = SINGLES + MEMBERS + 2
    batches: list[ReadingBatch] = []
    got = 0
    burst_done, everything = asyncio.Event(), asyncio.Event()

    async def on_batch(batch: ReadingBatch) -> None:
        nonlocal got
        batches.append(batch)
        got += len(batch)
        if got >= expected - 2:
            burst_done.set()
        if got >= expected:
            everything.set()

    def last(k: int) -> bytes:
        return orjson.dumps({"ts": TS0 + SINGLES + k, "seq": SINGLES + k, "temp_c": 31.0})

    engine = make_engine(sql_url)
    rejected = RejectedStore(async_sessionmaker(engine, expire_on_commit=False))
    ingestor = Ingestor(directory, _no_devices, rejected, on_batch, window_ms=20)
    task = asyncio.create_task(ingestor.run(_endpoint(mosquitto)))
    publisher = developer_client(mosquitto.port)
    try:
        await asyncio.wait_for(ingestor.subscribed.wait(), 30)
        client = ingestor._client
        assert client is not None
        assert isinstance(client._client._sock, BufferedSocket)

        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        # A burst: the broker sends them back to back, many to a read.
        for seq in range(SINGLES):
            payload = orjson.dumps({"ts": TS0 + seq, "seq": seq, "temp_c": 30.0})
            publisher.publish("sigap/devices/f1/up", payload, qos=1)
        items = [
            {"device_id": m, "ts": TS0, "temp_c": 30.5, "humidity_pct": 80, "rssi_dbm": -90}
            for m in members
        ]
        big = orjson.dumps({"readings": items})
        assert len(big) > READ_SIZE  # it takes more than one read
        publisher.publish("sigap/gateways/gw1/up", big, qos=1)
        await asyncio.wait_for(burst_done.wait(), 60)
        # Two last messages with nothing after them, and Sigap's loop held (this thread
        # waits for the broker's acknowledgements) until both are on its socket: one read
        # takes both. If the second stayed in the buffer, no readable event would come for
        # it and this would time out.
        tail = [publisher.publish("sigap/devices/f1/up", last(seq), qos=1) for seq in (0, 1)]
        for info in tail:
            info.wait_for_publish(30)
        try:
            await asyncio.wait_for(everything.wait(), 30)
        except TimeoutError:
            raise AssertionError(f"{got} of {expected} readings came through") from None
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.dispose()

    assert got == expected
    f1 = directory.get("f1")
    assert f1 is not None
    seqs = [
        s
        for batch in batches
        for s, d in zip(batch.seq.tolist(), batch.device.tolist(), strict=True)
        if d == f1.index
    ]
    assert seqs == list(range(SINGLES + 2))  # every reading, in the order sent
    gateway = {batch.device_ids[d] for batch in batches for d in batch.device.tolist()}
    assert set(members) <= gateway
