"""Device profiles end to end (issue #20): codec output as the network servers publish it,
through mosquitto into `sigap up`; the readings stored, the faults the sensors report raised
and cleared, a tilt switch's text made a tilt."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.conftest import reference_data
from tests.integration.conftest import SigapProcess, http
from tests.integration.test_end_to_end import eventually, publish, readings, register
from tests.integration.test_lorawan import _rfc3339, tts_envelope

pytestmark = pytest.mark.integration


def chirpstack(eui: str, f_cnt: int, decoded: dict[str, Any], seconds_ago: float) -> dict[str, Any]:
    """A ChirpStack v4 up event carrying this decoded payload (`object`)."""
    return {
        "deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{eui}:{f_cnt}")),
        "time": _rfc3339(seconds_ago),
        "deviceInfo": {"deviceName": "bin", "devEui": eui},
        "fCnt": f_cnt,
        "object": decoded,
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -97}],
    }


def alerts(api: str, device_id: str, kind: str) -> list[dict[str, Any]]:
    """The device's alerts of one kind."""
    found: list[dict[str, Any]] = http.get(
        f"{api}/api/v1/alerts", params={"device_id": device_id}
    ).json()
    return [a for a in found if a["kind"] == kind]


def test_a_bin_sensor_s_no_sensor_is_a_fault_until_it_measures_again(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    eui = uuid.uuid4().hex[:16]
    bin_id = register(
        sigap.api,
        kind="bin",
        network_server="chirpstack",
        ns_device_id=eui,
        profile="dragino-ldds75",
        depth_mm=1500.0,
    )
    topic = f"application/app/device/{eui}/event/up"
    # The codec example of TTN's device repository (vendor/dragino/ldds75-codec.yaml).
    publish(publisher, topic, chirpstack(eui, 1, {"distance": "No Sensor"}, seconds_ago=2))
    fault = eventually(
        lambda: alerts(sigap.api, bin_id, "device.fault"), what="device.fault from the sensor"
    )[0]
    assert fault["reason"] == "the sensor reports distance: No Sensor"
    stored = eventually(lambda: readings(sigap.api, bin_id), what="the status report stored")
    assert stored[0]["fault"] == "distance: No Sensor" and stored[0]["rssi_dbm"] == -97
    assert "distance_mm" not in stored[0]

    publish(publisher, topic, chirpstack(eui, 2, {"distance": 300, "Bat": "3.384 V"}, 1))
    resolved = eventually(
        lambda: [
            a
            for a in alerts(sigap.api, bin_id, "device.fault")
            if a["id"] == fault["id"] and a["status"] == "resolved"
        ],
        what="device.fault resolved by the next distance",
    )
    assert resolved[0]["cleared_at"] is not None
    latest = eventually(
        lambda: [r for r in readings(sigap.api, bin_id) if "distance_mm" in r],
        what="the distance stored",
    )[0]
    assert latest["distance_mm"] == 300 and latest["battery_v"] == 3.384
    assert latest["fill_pct"] == pytest.approx(80.0)  # (1500 - 300) / 1500
    assert "fault" not in latest
    assert (
        http.get(f"{sigap.api}/api/v1/ingest/rejected", params={"device_id": bin_id}).json() == []
    )


def test_a_tilt_switch_s_text_tilts_the_bin_through_the_things_stack(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    eui = uuid.uuid4().hex[:16]
    tts_id = f"em310-{eui[:6]}"
    bin_id = register(
        sigap.api,
        kind="bin",
        network_server="tts",
        ns_device_id=eui,
        profile="milesight-em310-udl",
        depth_mm=2500.0,
    )
    # vendor/milesight-iot/em310-udl-codec.yaml's example output.
    decoded = {"battery": 92, "distance": 2116, "tilt": "tilt"}
    publish(
        publisher, f"v3/sampit@kotim/devices/{tts_id}/up", tts_envelope(tts_id, eui, 5, decoded)
    )
    tilted = eventually(lambda: alerts(sigap.api, bin_id, "bin.tilted"), what="bin.tilted")
    assert "tilt_deg" in tilted[0]["reason"]
    stored = readings(sigap.api, bin_id)[0]
    assert stored["tilt_deg"] == 90 and stored["battery_pct"] == 92
    assert stored["distance_mm"] == 2116


# Each shipped profile's codec examples (TTN's device repository), as stored and alerted.
CODECS = {
    "dragino-ldds75": ("bin", "vendor/dragino/ldds75-codec.yaml"),
    "milesight-em310-udl": ("bin", "vendor/milesight-iot/em310-udl-codec.yaml"),
    "netvox-ra02a": ("fire", "vendor/netvox/ra02a-codec.yaml"),
    "dragino-lht65": ("fire", "vendor/dragino/lht65-codec.yaml"),
}
# description -> the fields stored (or "rejected": kept in the rejected list) and the alert.
EXPECTED: dict[str, tuple[dict[str, Any] | str, str | None]] = {
    "Distance Detection": ({"fault": "distance: No Sensor"}, "device.fault"),
    "Ultrasonic Distance/Level Sensor (example 1) - Milesgiht IoT": (
        {"battery_pct": 92, "distance_mm": 2116, "tilt_deg": 90},
        "bin.tilted",
    ),
    "Status report": ({"battery_v": 3, "temp_c": 120, "smoke_obs_pct_m": 20}, "fire.confirmed"),
    "Startup version report": ("rejected", None),
    "Configure report response": ("rejected", None),
    "Read configure report response": ("rejected", None),
    "Temperature": ({"temp_c": 28.29, "humidity_pct": 88.6, "battery_v": 3.062}, None),
}


@pytest.mark.parametrize("server", ["tts", "chirpstack"])
def test_every_codec_example_of_every_profile_through_the_real_stack(
    sigap: SigapProcess, publisher: mqtt.Client, server: str
) -> None:
    for profile, (kind, codec) in CODECS.items():
        examples = [
            e
            for e in yaml.safe_load(
                reference_data("ttn-lorawan-devices", *codec.split("/")).read_text()
            )["uplinkDecoder"]["examples"]
            if "data" in e["output"]
        ]
        for example in examples:
            eui = uuid.uuid4().hex[:16]
            extra = {"depth_mm": 2500.0} if kind == "bin" else {}
            device = register(
                sigap.api, kind, network_server=server, ns_device_id=eui, profile=profile, **extra
            )
            decoded = example["output"]["data"]
            body: bytes | dict[str, Any]
            if server == "tts":
                tts_id = f"d-{eui[:8]}"
                topic = f"v3/sampit@kotim/devices/{tts_id}/up"
                body = tts_envelope(tts_id, eui, 1, decoded)
            else:
                topic = f"application/app/device/{eui}/event/up"
                body = chirpstack(eui, 1, decoded, seconds_ago=0)
            publish(publisher, topic, body)
            stored, alert = EXPECTED[example["description"]]
            what = f"{profile} {example['description']!r} through {server}"
            if stored == "rejected":
                found = eventually(partial(rejected_of, sigap.api, device), what=f"{what}: kept")
                assert found[0]["reason"] == "no_quantity", found
                continue
            assert isinstance(stored, dict)
            row = eventually(partial(readings, sigap.api, device), what=f"{what}: stored")[0]
            assert {k: row.get(k) for k in stored} == pytest.approx(stored), (what, row)
            if alert is not None:
                eventually(partial(alerts, sigap.api, device, alert), what=f"{what}: {alert}")


def rejected_of(api: str, device_id: str) -> list[dict[str, Any]]:
    """The device's rejected messages, newest first."""
    found: list[dict[str, Any]] = http.get(
        f"{api}/api/v1/ingest/rejected", params={"device_id": device_id}
    ).json()
    return found
