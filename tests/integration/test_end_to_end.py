"""End to end: MQTT in, InfluxDB and alerts out, against real mosquitto, influxd and `sigap up`."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from tests.integration.conftest import AUTH, DEVELOPER, SigapProcess, http, mosquitto_pub

pytestmark = pytest.mark.integration


def register(api: str, kind: str = "fire", **extra: Any) -> str:
    """Register a fresh device and return its id."""
    device_id = f"{kind}-{uuid.uuid4().hex[:10]}"
    body = {
        "id": device_id,
        "kind": kind,
        "name": "test",
        "lat": -2.54,
        "lon": 112.95,
        "district": "Baamang",
    } | extra
    if kind == "bin":
        body.setdefault("depth_mm", 1000.0)
    response = http.post(f"{api}/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    return device_id


def publish(client: mqtt.Client, topic: str, payload: bytes | dict[str, Any]) -> None:
    """Publish at QoS 1 and wait for the broker's acknowledgement."""
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    client.publish(topic, data, qos=1).wait_for_publish(5)


def eventually(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def readings(api: str, device_id: str) -> list[dict[str, Any]]:
    """The device's stored readings (from InfluxDB, through the API)."""
    response = http.get(f"{api}/api/v1/devices/{device_id}/readings")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


async def test_fire_reading_raises_alert_on_api_and_sse(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    device = register(sigap.api)
    ts = int(time.time() * 1000)
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def follow() -> None:
        # Last-Event-ID 0 replays the change log before going live, so nothing published
        # after this point can be missed, however the connection races the publish.
        async with (
            httpx.AsyncClient(timeout=None, headers=AUTH) as client,
            client.stream(
                "GET", f"{sigap.api}/api/v1/alerts/stream", headers={"Last-Event-ID": "0"}
            ) as response,
        ):
            assert response.status_code == 200
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    await received.put((event, orjson.loads(line.split(":", 1)[1])))

    follower = asyncio.create_task(follow())
    topic = f"sigap/devices/{device}/up"

    async def next_event() -> tuple[str, dict[str, Any]]:
        # The first event for this device must come within 2 s of its reading.
        published_at = time.monotonic()
        while True:
            remaining = 2.0 - (time.monotonic() - published_at)
            event, alert = await asyncio.wait_for(received.get(), timeout=max(remaining, 0.01))
            if alert["device_id"] == device:
                print(
                    f"{event} on SSE {(time.monotonic() - published_at) * 1000:.0f} ms "
                    "after publish"
                )
                return event, alert

    try:
        publish(publisher, topic, {"ts": ts, "seq": 1, "temp_c": 71.5, "smoke_obs_pct_m": 2.0})
        event, alert = await next_event()
        assert event == "alert.raised"
        assert alert["kind"] == "fire.pre_alarm"  # one reading: not verified yet
        assert alert["status"] == "open" and alert["severity"] == "major"
        assert "temp_c 71.5 >= 57" in alert["reason"]
        assert alert["raised_at"].startswith(
            time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ts / 1000))
        )
        # A second hot reading within 60 s verifies it: the same alert, escalated.
        publish(publisher, topic, {"ts": ts + 10_000, "seq": 2, "temp_c": 74.0})
        event, verified = await next_event()
        assert event == "alert.updated"
        assert verified["id"] == alert["id"] and verified["kind"] == "fire.alarm"
        assert verified["severity"] == "critical"
    finally:
        follower.cancel()

    async with httpx.AsyncClient(base_url=sigap.api, headers=AUTH) as client:
        listed = (await client.get("/api/v1/alerts", params={"device_id": device})).json()
        assert [a["kind"] for a in listed] == ["fire.alarm"]  # one alert, escalated
        one = (await client.get(f"/api/v1/alerts/{listed[0]['id']}")).json()
        assert one["device_id"] == device

    stored = eventually(
        lambda: len(readings(sigap.api, device)) == 2 and readings(sigap.api, device),
        what="the readings in InfluxDB",
    )
    first = stored[-1]  # newest first
    assert first["temp_c"] == 71.5
    assert first["smoke_obs_pct_m"] == 2.0
    assert first["seq"] == 1
    assert first["kind"] == "fire"


def test_duplicate_delivery_opens_one_alert(sigap: SigapProcess, publisher: mqtt.Client) -> None:
    device = register(sigap.api)
    ts = int(time.time() * 1000) - 5000
    fire = {"ts": ts, "seq": 7, "temp_c": 80.0, "smoke_obs_pct_m": 15.0}  # confirmed at once
    publish(publisher, f"sigap/devices/{device}/up", fire)
    publish(publisher, f"sigap/devices/{device}/up", fire)
    publish(publisher, f"sigap/devices/{device}/up", {"ts": ts + 1000, "seq": 8, "temp_c": 81.0})
    # The last reading being stored means the two before it went through the rules.
    eventually(
        lambda: any(r.get("seq") == 8 for r in readings(sigap.api, device)),
        what="the third reading",
    )
    alerts = http.get(f"{sigap.api}/api/v1/alerts", params={"device_id": device}).json()
    assert len(alerts) == 1, alerts
    # InfluxDB keeps one point per (series, time): the duplicate is stored once.
    assert sorted(r["seq"] for r in readings(sigap.api, device)) == [7, 8]


def test_bin_full_raises_and_emptying_clears(sigap: SigapProcess, publisher: mqtt.Client) -> None:
    device = register(sigap.api, kind="bin", depth_mm=1000.0)
    ts = int(time.time() * 1000) - 10_000
    topic = f"sigap/devices/{device}/up"
    publish(publisher, topic, {"ts": ts, "seq": 1, "distance_mm": 50.0})  # 95 % full
    publish(publisher, topic, {"ts": ts + 500, "seq": 2, "distance_mm": 52.0})  # confirmed
    alert = eventually(
        lambda: http.get(f"{sigap.api}/api/v1/alerts", params={"device_id": device}).json(),
        what="bin.full",
    )[0]
    assert alert["kind"] == "bin.full" and alert["status"] == "open"
    assert "fill_pct 94.8 >= 90" in alert["reason"]
    publish(publisher, topic, {"ts": ts + 1000, "seq": 3, "fill_pct": 5.0})
    publish(publisher, topic, {"ts": ts + 1500, "seq": 4, "fill_pct": 4.0})
    cleared = eventually(
        lambda: [
            a
            for a in http.get(f"{sigap.api}/api/v1/alerts/{alert['id']}").json().items()
            if a == ("status", "resolved")
        ],
        what="bin.full resolved after emptying",
    )
    assert cleared


BAD_INPUTS: list[tuple[str, bytes, str]] = [
    ("not json", b"this is not json {", "not_json"),
    ("wrong type", b'{"temp_c": "hot"}', "bad_type"),
    ("NaN", b'{"temp_c": NaN}', "not_finite"),
    ("out of range", b'{"smoke_obs_pct_m": 250}', "out_of_range"),
    ("no quantity", b'{"seq": 3}', "no_quantity"),
    ("1 MB payload", b'{"temp_c": 30, "pad": "' + b"x" * 1_000_000 + b'"}', "oversized"),
]


def test_bad_input_is_kept_with_reason_and_ingest_keeps_going(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    device = register(sigap.api)
    topic = f"sigap/devices/{device}/up"
    for _, payload, _ in BAD_INPUTS:
        publish(publisher, topic, payload)
    stranger = f"unregistered-{uuid.uuid4().hex[:8]}"
    publish(publisher, f"sigap/devices/{stranger}/up", {"temp_c": 30.0})
    publish(publisher, topic, {"seq": 99, "temp_c": 29.5})

    eventually(
        lambda: any(r.get("seq") == 99 for r in readings(sigap.api, device)),
        what="the good reading after the bad ones",
    )
    rejected = http.get(
        f"{sigap.api}/api/v1/ingest/rejected", params={"device_id": device, "limit": 100}
    ).json()
    reasons = sorted(r["reason"] for r in rejected)
    assert reasons == sorted(reason for _, _, reason in BAD_INPUTS)
    for entry in rejected:
        assert entry["topic"] == topic
        assert entry["detail"]
    oversized = next(r for r in rejected if r["reason"] == "oversized")
    assert oversized["size"] > 1_000_000 and oversized["truncated"]
    assert len(oversized["raw"]) <= 4096

    unknown = http.get(f"{sigap.api}/api/v1/ingest/rejected", params={"device_id": stranger}).json()
    assert [r["reason"] for r in unknown] == ["unknown_device"]
    assert orjson.loads(unknown[0]["raw"]) == {"temp_c": 30.0}

    metrics = http.get(f"{sigap.api}/metrics").text
    assert 'sigap_ingest_rejected_total{reason="unknown_device"}' in metrics


def test_gateway_batch_only_for_its_own_devices(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    mine = register(sigap.api, gateway_id="gw-test-1")
    other = register(sigap.api, gateway_id="gw-test-2")
    ts = int(time.time() * 1000)
    publish(
        publisher,
        "sigap/gateways/gw-test-1/up",
        {
            "readings": [
                {"device_id": mine, "ts": ts, "seq": 1, "temp_c": 30.0},
                {"device_id": other, "ts": ts, "seq": 1, "temp_c": 30.0},
                {"device_id": mine, "ts": ts + 1, "seq": 2, "temp_c": "warm"},
            ]
        },
    )
    eventually(lambda: readings(sigap.api, mine), what="the gateway's own device reading")
    wrong = http.get(f"{sigap.api}/api/v1/ingest/rejected", params={"device_id": other}).json()
    assert [r["reason"] for r in wrong] == ["wrong_gateway"]
    bad = http.get(f"{sigap.api}/api/v1/ingest/rejected", params={"device_id": mine}).json()
    assert [r["reason"] for r in bad] == ["bad_type"]
    assert readings(sigap.api, other) == []


@pytest.mark.skipif(mosquitto_pub() is None, reason="mosquitto_pub (mosquitto-clients) missing")
def test_mosquitto_pub_reading_with_rfc3339_ts_is_stored(sigap: SigapProcess) -> None:
    device = register(sigap.api, kind="bin", depth_mm=1200.0)
    ts = datetime.now(UTC).replace(microsecond=0)
    payload = {"ts": ts.isoformat().replace("+00:00", "Z"), "distance_mm": 600, "battery_pct": 88}
    subprocess.run(
        [
            mosquitto_pub() or "",
            "-p",
            str(sigap.mqtt_port),
            "-u",
            DEVELOPER[0],
            "-P",
            DEVELOPER[1],
            "-q",
            "1",
            "-t",
            f"sigap/devices/{device}/up",
            "-m",
            orjson.dumps(payload).decode(),
        ],
        check=True,
    )
    stored = eventually(lambda: readings(sigap.api, device), what="the reading")
    assert stored[0]["fill_pct"] == 50.0  # from distance_mm and the registered depth
    assert stored[0]["distance_mm"] == 600.0
    assert stored[0]["ts"] == payload["ts"]
