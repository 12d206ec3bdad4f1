"""Device profiles against their vendors' codecs (issue #20): the decoded payloads of The
Things Network device repository's codec examples (tests/data/ttn-lorawan-devices), in The
Things Stack and ChirpStack envelopes, become the readings and faults the profile says."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from contract.readings import Q_INDEX, QUANTITIES
from devices import profiles
from devices.directory import DeviceDirectory, DeviceInfo
from devices.schemas import DeviceCreate, FieldTarget
from ingest.decode import DecodedReading, Reason, parse_ts
from ingest.lorawan import UplinkError, decode_uplink, to_reading
from tests.conftest import reference_data

NOW_MS = 1_790_000_000_000
EUI = "a84041000181c061"
TTS_TOPIC = "v3/sampit@kotim/devices/bin-1/up"
CS_TOPIC = f"application/app/device/{EUI}/event/up"
# Each shipped profile's codec in the copy of TTN's device repository.
CODECS = {
    "dragino-ldds75": "vendor/dragino/ldds75-codec.yaml",
    "milesight-em310-udl": "vendor/milesight-iot/em310-udl-codec.yaml",
    "netvox-ra02a": "vendor/netvox/ra02a-codec.yaml",
    "dragino-lht65": "vendor/dragino/lht65-codec.yaml",
}


def codec_file(relative: str) -> Path:
    return reference_data("ttn-lorawan-devices", *relative.split("/"))


def examples(profile_id: str) -> dict[str, dict[str, Any]]:
    """The codec's uplink examples that decode to data: description -> decoded payload."""
    codec = yaml.safe_load(codec_file(CODECS[profile_id]).read_text())
    found = {
        e["description"]: e["output"]["data"]
        for e in codec["uplinkDecoder"]["examples"]
        if "data" in e["output"]
    }
    assert found, f"{profile_id}: no example with data"
    return found


def registered(
    profile_id: str | None, kind: str, server: str = "chirpstack", **extra: Any
) -> DeviceInfo:
    """A LoRaWAN device registered with the profile (and `extra` fields), as the directory
    resolves it."""
    if kind == "bin":
        extra.setdefault("depth_mm", 1500.0)
    device = DeviceCreate(
        id=extra.pop("id", "dev-1"),
        kind=kind,  # type: ignore[arg-type]
        lat=-2.54,
        lon=112.95,
        network_server=server,  # type: ignore[arg-type]
        ns_device_id=EUI,
        profile=profile_id,
        **extra,
    )
    return DeviceDirectory().upsert(device)


def envelope(server: str, decoded: dict[str, Any]) -> tuple[str, bytes]:
    """The decoded payload as the network server publishes it (topic, payload)."""
    body: dict[str, Any]
    if server == "tts":
        body = {
            "end_device_ids": {"device_id": "bin-1", "dev_eui": EUI.upper()},
            "received_at": "2026-09-21T10:00:00Z",
            "uplink_message": {
                "f_cnt": 12,
                "decoded_payload": decoded,
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-a"}, "rssi": -97}],
            },
        }
        return TTS_TOPIC, orjson.dumps(body)
    body = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-09-21T10:00:00Z",
        "deviceInfo": {"devEui": EUI},
        "fCnt": 12,
        "object": decoded,
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -97}],
    }
    return CS_TOPIC, orjson.dumps(body)


def through(info: DeviceInfo, server: str, decoded: dict[str, Any]) -> DecodedReading:
    topic, payload = envelope(server, decoded)
    uplink = decode_uplink(topic, payload, NOW_MS)
    return to_reading(uplink, info.id, info.field_map, NOW_MS, status=info.status_map)


def values(reading: DecodedReading) -> dict[str, float]:
    """The quantities a reading carries (rssi_dbm aside: every uplink has it)."""
    return {
        name: v
        for name, v in zip(QUANTITIES, reading.values, strict=True)
        if not math.isnan(v) and name != "rssi_dbm"
    }


SERVERS = ["tts", "chirpstack"]


@pytest.mark.parametrize("server", SERVERS)
def test_ldds75_no_sensor_is_a_fault_kept_with_the_uplink(server: str) -> None:
    info = registered("dragino-ldds75", "bin", server)
    reading = through(info, server, examples("dragino-ldds75")["Distance Detection"])
    assert reading.fault == "distance: No Sensor"
    assert values(reading) == {}  # no measurement, but not rejected: a status report
    assert reading.values[Q_INDEX["rssi_dbm"]] == -97  # the radio link still counts
    assert reading.ts_ms == parse_ts("2026-09-21T10:00:00Z") and reading.seq == 12


@pytest.mark.parametrize("server", SERVERS)
def test_ldds75_distances_and_invalid_readings(server: str) -> None:
    info = registered("dragino-ldds75", "bin", server)
    # What its decoder (ldds75.js) gives for a 5-byte uplink: a number in mm, and text
    # under 20 mm; Dragino's full decoder adds the battery.
    good = through(info, server, {"distance": 1203, "value": 0, "Bat": 3.384})
    assert good.fault is None
    assert values(good) == {"distance_mm": 1203.0, "battery_v": 3.384}
    invalid = through(info, server, {"distance": "Invalid Reading", "value": 0})
    assert invalid.fault == "distance: Invalid Reading" and values(invalid) == {}


@pytest.mark.parametrize("server", SERVERS)
def test_em310_udl_tilt_and_position_set_the_tilt(server: str) -> None:
    info = registered("milesight-em310-udl", "bin", server)
    (decoded,) = examples("milesight-em310-udl").values()
    reading = through(info, server, decoded)
    assert reading.fault is None
    assert values(reading) == {"battery_pct": 92.0, "distance_mm": 2116.0, "tilt_deg": 90.0}
    # The 2025 decoder names it `position` (tests/data/ttn-lorawan-devices/alt-versions/):
    # the same bytes give {"battery": 92, "distance": 2116, "position": "tilt"}.
    newer = through(info, server, {"battery": 92, "distance": 2116, "position": "normal"})
    assert values(newer)["tilt_deg"] == 0.0
    unknown = through(info, server, {"battery": 92, "distance": 2116, "position": "unknown"})
    assert unknown.fault == "position: unknown" and values(unknown)["distance_mm"] == 2116.0


@pytest.mark.parametrize("server", SERVERS)
def test_ra02a_alarm_state_and_temperature(server: str) -> None:
    info = registered("netvox-ra02a", "fire", server)
    ex = examples("netvox-ra02a")
    alarm = through(info, server, ex["Status report"])
    assert alarm.fault is None
    assert values(alarm) == {"battery_v": 3.0, "temp_c": 120.0, "smoke_obs_pct_m": 20.0}
    # Its decoder appends "(low battery)" to a low voltage: the number is read.
    quiet = dict(ex["Status report"], FireAlarm="No Alarm", Volt="2.9(low battery)", Temp=28.5)
    assert values(through(info, server, quiet)) == {
        "battery_v": 2.9,
        "temp_c": 28.5,
        "smoke_obs_pct_m": 0.0,
    }
    # A version report or a configuration response carries no reading: kept as rejected
    # with the reason, as any uplink that maps to nothing.
    for description in ("Startup version report", "Configure report response"):
        with pytest.raises(UplinkError) as caught:
            through(info, server, ex[description])
        assert caught.value.reason == Reason.NO_QUANTITY


@pytest.mark.parametrize("server", SERVERS)
def test_lht65_reads_its_built_in_sensor(server: str) -> None:
    info = registered("dragino-lht65", "fire", server)
    reading = through(info, server, examples("dragino-lht65")["Temperature"])
    assert reading.fault is None
    assert values(reading) == {"temp_c": 28.29, "humidity_pct": 88.6, "battery_v": 3.062}


def test_a_status_string_the_profile_does_not_know_is_rejected_naming_it() -> None:
    info = registered("dragino-ldds75", "bin")
    with pytest.raises(UplinkError) as caught:
        through(info, "chirpstack", {"distance": "Sensor Busy"})
    assert caught.value.reason == Reason.BAD_TYPE
    assert "distance_mm='Sensor Busy'" in caught.value.detail


def test_a_device_s_own_field_map_wins_over_its_profile() -> None:
    info = registered(
        "milesight-em310-udl",
        "bin",
        id="dev-2",
        depth_mm=1200.0,
        field_map={"battery": FieldTarget(field="battery_v", scale=0.001)},
        reporting_interval_s=300.0,
    )
    assert info.reporting_interval_s == 300.0  # its own, not the profile's 600
    reading = through(info, "chirpstack", {"battery": 3600, "distance": 800, "tilt": "normal"})
    assert values(reading) == {"battery_v": 3.6, "distance_mm": 800.0, "tilt_deg": 0.0}
    # Without its own interval the profile's applies.
    bare = registered("milesight-em310-udl", "bin")
    assert bare.reporting_interval_s == 600.0


def test_the_soil_probe_of_issue_20_with_a_field_map_is_stored_not_rejected() -> None:
    # The uplinks that were all rejected as bad_type: Dragino LSE01's toFixed() strings.
    codec = yaml.safe_load(codec_file("vendor/dragino/lse01-codec.yaml").read_text())
    decoded = codec["uplinkDecoder"]["examples"][0]["output"]["data"]
    assert decoded["temp_SOIL"] == "24.59"  # a string, as the codec sends it
    info = registered(
        None,
        "fire",
        id="soil-1",
        field_map={"temp_SOIL": "temp_c", "water_SOIL": "humidity_pct", "Bat": "battery_v"},
    )
    reading = through(info, "chirpstack", decoded)
    assert values(reading) == {"temp_c": 24.59, "humidity_pct": 19.57, "battery_v": 3.625}


@pytest.mark.parametrize("profile_id", sorted(CODECS))
def test_every_status_string_a_profile_names_is_one_its_decoder_emits(profile_id: str) -> None:
    # A typo in a profile ("No sensor") would never match: the strings must be the
    # decoder's own, as its JavaScript writes them.
    profile = profiles.library().get(profile_id)
    assert profile is not None
    codec = yaml.safe_load(codec_file(CODECS[profile_id]).read_text())
    decoder = codec["uplinkDecoder"]["fileName"]
    folder = Path(CODECS[profile_id]).parent
    sources = [codec_file(f"{folder}/{decoder}").read_text()]
    # Other versions of the same decoder (the 2025 EM310-UDL one names the tilt `position`).
    data = reference_data("ttn-lorawan-devices")
    sources += [p.read_text() for p in data.glob(f"alt-versions/*/{folder}/{decoder}")]
    literals = {m for text in sources for m in re.findall(r"[\"']([^\"'\n]*)[\"']", text)}
    for key, strings in profile.status.items():
        assert key in " ".join(sources), f"{profile_id}: the decoder has no key {key!r}"
        for text in strings:
            assert text in literals, f"{profile_id}: {key}={text!r} is not in its decoder"


def test_an_operator_s_profile_with_a_mounting_offset(tmp_path: Path) -> None:
    # A technician's own profile (SIGAP_DEVICES_PROFILES_DIR): the sensor sits 25 mm inside
    # its housing, so every distance it reports is 25 mm longer than from the housing's rim.
    (tmp_path / "acme-bin-9.toml").write_text(
        'vendor = "Acme"\nmodel = "Bin 9"\nkind = "bin"\nmounting_offset_mm = -25\n'
        '[fields]\nrange_cm = { field = "distance_mm", unit = "cm" }\n'
    )
    try:
        profiles.install(tmp_path)
        info = registered("acme-bin-9", "bin")
        assert info.sensor_offsets == {"distance_mm": -25.0}
        reading = through(info, "chirpstack", {"range_cm": 80})
        assert values(reading) == {"distance_mm": 800.0}  # the offset is added at ingest
        own = registered(
            "acme-bin-9",
            "bin",
            id="dev-3",
            depth_mm=1000.0,
            sensor_offsets={"distance_mm": -10.0},
        )
        assert own.sensor_offsets == {"distance_mm": -10.0}  # the device's own wins
    finally:
        profiles.install(None)
    assert profiles.library().get("acme-bin-9") is None
