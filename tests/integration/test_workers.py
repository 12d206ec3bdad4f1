"""Two ingest workers on one broker: every reading processed once, every alert once.

`sigap up` (worker 0, with the API) and `sigap ingest` (worker 1) share the device and
gateway topics through an MQTT shared subscription and one PostgreSQL database; each
device's readings are evaluated by the one worker that owns it (ingest/partition.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from devices.directory import DeviceInfo
from ingest.partition import Partition
from sigap import devstack
from tests import postgres
from tests.integration.conftest import (
    AUTH,
    SigapProcess,
    count_readings,
    developer_client,
    http,
    metric,
    start_sigap,
    stop_sigap,
)

pytestmark = pytest.mark.integration

ROUNDS = 10
PARTITION = [Partition(2, 0), Partition(2, 1)]


@pytest.fixture
def database_url(postgres_server: postgres.PostgresServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database that both workers share."""
    loop = asyncio.new_event_loop()
    database = postgres_server.database()
    try:
        yield loop.run_until_complete(database.__aenter__())
    finally:
        loop.run_until_complete(database.__aexit__(None, None, None))
        loop.close()


@pytest.fixture
def workers(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SigapProcess, SigapProcess]]:
    """`sigap up` as worker 0 of 2 and `sigap ingest` as worker 1, on one SQL database."""
    client_id = f"sigap-workers-{uuid.uuid4().hex[:8]}"

    def start(worker: int, command: str, influx_db: str | None) -> SigapProcess:
        return start_sigap(
            mosquitto,
            influxd,
            tmp_path_factory.mktemp(f"worker{worker}"),
            command=command,
            influx_db=influx_db,
            SIGAP_DATABASE_URL=database_url,
            SIGAP_INGEST_WORKERS="2",
            SIGAP_INGEST_WORKER=str(worker),
            SIGAP_ROUTES_SCHEDULE="false",
            SIGAP_INGEST_FOLLOW_REGISTRY_S="0.5",
            SIGAP_MQTT_CLIENT_ID=client_id,
        )

    api = start(0, "up", None)
    try:
        other = start(1, "ingest", api.influx_db)
    except BaseException:
        stop_sigap(api)
        raise
    yield api, other
    stop_sigap(other)
    stop_sigap(api)


def _device(device_id: str, kind: str, lat: float, lon: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": device_id,
        "kind": kind,
        "name": device_id,
        "lat": lat,
        "lon": lon,
        "district": "Baamang",
        "reporting_interval_s": 600,
    } | extra


def _owner(body: dict[str, Any]) -> int:
    info = DeviceInfo(
        0, body["id"], body["kind"], 0, None, None, body.get("zone"), body["lat"], body["lon"]
    )
    return PARTITION[0].owner(info)


async def test_two_workers_process_each_reading_once_and_alert_once(
    workers: tuple[SigapProcess, SigapProcess], mosquitto: devstack.Service
) -> None:
    api, other = workers
    tag = uuid.uuid4().hex[:6]
    gateway = f"gw-{tag}"
    assert http.post(
        f"{api.api}/api/v1/gateways",
        json={"id": gateway, "kind": "mqtt", "name": "TPS", "lat": -2.53, "lon": 112.94},
    ).is_success

    # 8 zones of 3 detectors, 16 detectors without a zone far apart, 20 bins behind a
    # gateway. Burning: the detectors of one zone each worker owns, and two full bins.
    zones = [f"zone-{z}" for z in range(8)]  # fixed names: which worker owns each is fixed
    detectors = [
        _device(f"fd-{tag}-{z}-{i}", "fire", -2.54 + 0.001 * i, 112.95, zone=zone)
        for z, zone in enumerate(zones)
        for i in range(3)
    ] + [_device(f"fl-{tag}-{i}", "fire", -2.40 - 0.05 * i, 112.80) for i in range(16)]
    bins = [
        _device(f"bn-{tag}-{i}", "bin", -2.55, 112.90 + 0.01 * i, depth_mm=1000, gateway_id=gateway)
        for i in range(20)
    ]
    fleet = detectors + bins
    for body in fleet:
        response = http.post(f"{api.api}/api/v1/devices", json=body)
        assert response.status_code == 201, response.text
    owners = {body["id"]: _owner(body) for body in fleet}
    burning_zones = [
        next(z for z in zones if owners[f"fd-{tag}-{zones.index(z)}-0"] == worker)
        for worker in (0, 1)
    ]
    burning = {b["id"] for b in detectors if b.get("zone") in burning_zones}
    full_bins = {next(b["id"] for b in bins if owners[b["id"]] == worker) for worker in (0, 1)}
    assert {owners[d] for d in burning} == {0, 1}, "each worker owns a burning zone"

    # Follow the API's live stream (no Last-Event-ID: only what goes live from now on),
    # so that worker 1's alerts can only arrive through the change feed.
    seen: list[dict[str, Any]] = []
    connected = asyncio.Event()

    async def follow() -> None:
        async with (
            httpx.AsyncClient(timeout=None, headers=AUTH) as client,
            client.stream("GET", f"{api.api}/api/v1/alerts/stream") as response,
        ):
            assert response.status_code == 200
            connected.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    seen.append(orjson.loads(line.split(":", 1)[1]))

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(connected.wait(), 10)

    publisher = developer_client(mosquitto.port)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    start = int(time.time() * 1000) - ROUNDS * 1000
    published = 0
    try:
        for r in range(ROUNDS):
            ts = start + r * 1000
            hot = r >= ROUNDS - 3
            for body in detectors:
                temp = 70.0 + r if hot and body["id"] in burning else 28.0 + 0.1 * r
                payload = {"ts": ts, "seq": r, "temp_c": temp, "battery_v": 3.6}
                topic = f"sigap/devices/{body['id']}/up"
                publisher.publish(topic, orjson.dumps(payload), qos=1).wait_for_publish(5)
                published += 1
            for first in range(0, len(bins), 10):
                batch = [
                    {
                        "device_id": body["id"],
                        "ts": ts,
                        "seq": r,
                        "fill_pct": 95.0 if hot and body["id"] in full_bins else 20.0 + r,
                    }
                    for body in bins[first : first + 10]
                ]
                topic = f"sigap/gateways/{gateway}/up"
                message = orjson.dumps({"readings": batch})
                publisher.publish(topic, message, qos=1).wait_for_publish(5)
                published += len(batch)
    finally:
        publisher.disconnect()
        publisher.loop_stop()

    expected = {d: "fire.confirmed" for d in burning} | {b: "bin.full" for b in full_bins}
    try:
        deadline = time.monotonic() + 30
        while True:
            evaluated = [metric(w.api, "sigap_rules_evaluated_readings_total") for w in workers]
            stored = count_readings(api.influx_url, api.influx_db, f'"device_id" =~ /{tag}/')
            live = {a["device_id"]: a["kind"] for a in seen}
            if sum(evaluated) >= published and stored >= published and live == expected:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"after 30 s: evaluated {evaluated}, stored {stored} of {published}; "
                    f"streamed {live}, expected {expected}\n"
                    f"{api.log()[-2000:]}\n{other.log()[-2000:]}"
                )
            await asyncio.sleep(0.1)
    finally:
        follower.cancel()

    # Every reading stored, and evaluated exactly once, by the worker that owns its device.
    assert stored == published
    per_device = Counter({body["id"]: ROUNDS for body in fleet})
    own = [sum(n for d, n in per_device.items() if owners[d] == w) for w in (0, 1)]
    assert evaluated == own, f"evaluated {evaluated}, owned readings {own}"
    # The shared subscription spread the messages: both received some and forwarded some.
    for worker in workers:
        assert metric(worker.api, "sigap_ingest_forwarded_readings_total") > 0
        assert metric(worker.api, "sigap_ingest_forwarded_in_readings_total") > 0

    # One alert per device and kind, none elsewhere; one incident per burning zone.
    listed = http.get(f"{api.api}/api/v1/alerts", params={"limit": 1000}).json()
    mine = [a for a in listed if tag in a["device_id"]]
    assert Counter((a["device_id"], a["kind"]) for a in mine) == Counter(expected.items())
    incidents = http.get(f"{api.api}/api/v1/incidents").json()
    assert sorted(i["zone"] for i in incidents if i.get("zone") in zones) == sorted(burning_zones)
    # Every change was streamed once: none twice, though two processes committed them.
    ids = [a["id"] for a in seen]
    changes = [(a["id"], a["kind"], a["status"]) for a in seen]
    assert len(changes) == len(set(changes)), changes
    assert {a["device_id"] for a in seen} == set(expected), ids

    # GET /bins in the API process shows every bin's fill, also those worker 1 evaluates.
    def bin_levels() -> dict[str, str | None]:
        listed = http.get(f"{api.api}/api/v1/bins", params={"limit": 1000}).json()
        return {b["id"]: b["level"] for b in listed if tag in b["id"]}

    want = {b["id"]: "full" if b["id"] in full_bins else "ok" for b in bins}
    deadline = time.monotonic() + 15
    while (levels := bin_levels()) != want:
        if time.monotonic() > deadline:
            pytest.fail(f"bin levels {levels}, expected {want}")
        await asyncio.sleep(0.1)
    print(f"evaluated per worker {evaluated}, {published} readings stored once")
