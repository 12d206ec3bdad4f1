"""LoRaWAN uplinks from The Things Stack v3 and ChirpStack v4, as those servers publish them.

TTS envelopes are the lorawan-stack-docs examples in tests/data/lorawan (used as they
are). ChirpStack ships no sample file; CHIRPSTACK_DOCS_UP below is the `up` event JSON
example of the ChirpStack v4 documentation (chirpstack-docs,
src/chirpstack/integrations/events.md, "up - Uplink event"), copied field for field. That
example has no `object` (its device profile has no codec) and no `fCnt` (the protobuf JSON
mapping leaves zero out); the `object` and `fCnt` added for the other cases are named as
in ChirpStack's integration.proto (`UplinkEvent.object`, a google.protobuf.Struct, and
`f_cnt`, which the JSON mapping spells `fCnt`).
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import orjson
import pytest

from contract.readings import Q_INDEX
from devices.directory import DeviceDirectory
from devices.schemas import DeviceCreate
from ingest.decode import Limits, Reason, parse_ts
from ingest.lorawan import (
    CHIRPSTACK,
    DEFAULT_TOPICS,
    TTS,
    Deduplicator,
    Uplink,
    UplinkError,
    decode_uplink,
    map_fields,
    reading_object,
    to_reading,
    topic_network_server,
)
from tests.conftest import reference_data

TTS_TOPIC = "v3/app1@tenant1/devices/dev1/up"
CS_TOPIC = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"

CHIRPSTACK_DOCS_UP: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
        "applicationName": "Test application",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
        "deviceProfileName": "Test device-profile",
        "deviceName": "Test device",
        "devEui": "0101010101010101",
        "tags": {"key": "value"},
    },
    "devAddr": "00189440",
    "dr": 1,
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [
        {
            "gatewayId": "0016c001f153a14c",
            "uplinkId": 4217106255,
            "rssi": -36,
            "snr": 10.5,
            "context": "E3OWOQ==",
            "metadata": {"region_name": "eu868", "region_common_name": "EU868"},
        }
    ],
    "txInfo": {
        "frequency": 867100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}},
    },
}
CS_TIME_MS = parse_ts("2022-07-18T09:34:15.775023242+00:00")


def chirpstack_up(**changes: Any) -> dict[str, Any]:
    """The docs' up event with some fields added or replaced."""
    return copy.deepcopy(CHIRPSTACK_DOCS_UP) | changes


def tts_published_text() -> str:
    return reference_data(
        "lorawan", "tts-v3-uplink-with-decoded-payload.as-published-invalid-json.txt"
    ).read_text()


def tts_repaired() -> dict[str, Any]:
    """The docs' fuller TTS example with the one comma it lacks put back (in memory only)."""
    text = tts_published_text()
    broken = '"key2": "value2"\n    }\n    "received_at"'
    assert broken in text, "the published example changed; update this repair"
    envelope: dict[str, Any] = json.loads(
        text.replace(broken, '"key2": "value2"\n    },\n    "received_at"')
    )
    return envelope


def up(topic: str, envelope: dict[str, Any], arrival_ms: int = 1) -> Uplink:
    return decode_uplink(topic, orjson.dumps(envelope), arrival_ms)


def rejected(topic: str, payload: bytes) -> UplinkError:
    with pytest.raises(UplinkError) as caught:
        decode_uplink(topic, payload, 1)
    return caught.value


# -- The Things Stack v3 -------------------------------------------------------------------


def test_tts_docs_example_without_decoded_payload_is_rejected_clearly() -> None:
    payload = reference_data("lorawan", "tts-v3-uplink-docs-example.json").read_bytes()
    error = rejected(TTS_TOPIC, payload)
    assert error.reason == Reason.NO_DECODED_PAYLOAD == "no_decoded_payload"
    assert "decoded_payload" in error.detail and "payload formatter" in error.detail
    # The reject names the device, so a technician finds it under the device's rejections.
    assert error.network_server == TTS
    assert error.device_keys == ("4200000000000000", "dev1")


def test_tts_published_invalid_json_is_rejected_as_not_json() -> None:
    error = rejected(TTS_TOPIC, tts_published_text().encode())
    assert error.reason == Reason.NOT_JSON
    assert error.detail.startswith("not valid JSON")
    assert "line" in error.detail  # says where, so the sender can find the missing comma
    assert error.network_server == TTS and error.device_keys == ("dev1",)


def test_tts_uplink_with_decoded_payload() -> None:
    uplink = up(TTS_TOPIC, tts_repaired(), arrival_ms=5)
    assert uplink.network_server == TTS and uplink.application == "app1@tenant1"
    assert uplink.device_keys == ("0004a30b001c0530", "dev1")  # DevEUI first, lowercased
    assert uplink.decoded == {"temperature": 1.0, "luminosity": 0.64}
    assert uplink.f_cnt == 1 and uplink.rssi_dbm == -35.0 and uplink.gateway_ids == ("gtw1",)
    assert uplink.event_ms == parse_ts("2020-02-12T15:15:46.014773143Z")
    assert not uplink.time_from_arrival
    assert uplink.dedup_key == (TTS, "0004a30b001c0530", 1, str(uplink.event_ms))
    reading = to_reading(uplink, "fire-lora-1", None, uplink.event_ms + 1000, Limits())
    assert reading.device_id == "fire-lora-1" and reading.ts_ms == uplink.event_ms
    assert reading.seq == 1 and not reading.ts_from_arrival
    assert reading.values[Q_INDEX["temp_c"]] == 1.0
    assert reading.values[Q_INDEX["rssi_dbm"]] == -35.0
    assert math.isnan(reading.values[Q_INDEX["battery_v"]])


def test_tts_envelope_problems() -> None:
    envelope = tts_repaired()
    mismatch = rejected("v3/app1@tenant1/devices/other/up", orjson.dumps(envelope))
    assert mismatch.reason == Reason.DEVICE_ID_MISMATCH and "'dev1'" in mismatch.detail

    no_uplink = {k: v for k, v in envelope.items() if k != "uplink_message"}
    error = rejected(TTS_TOPIC, orjson.dumps(no_uplink))
    assert error.reason == Reason.BAD_ENVELOPE == "bad_envelope"
    assert "uplink_message is missing" in error.detail

    bad_count = copy.deepcopy(envelope)
    bad_count["uplink_message"]["f_cnt"] = "1"
    assert rejected(TTS_TOPIC, orjson.dumps(bad_count)).reason == Reason.BAD_ENVELOPE

    assert rejected(TTS_TOPIC, b"[1, 2]").reason == Reason.BAD_ENVELOPE
    assert rejected(TTS_TOPIC, b"{" + b" " * 300_000 + b"}").reason == Reason.OVERSIZED

    # No time from the server: the arrival time stands in, and the reading says so.
    untimed = copy.deepcopy(envelope)
    del untimed["received_at"], untimed["uplink_message"]["received_at"]
    uplink = up(TTS_TOPIC, untimed, arrival_ms=1_790_000_000_000)
    assert uplink.time_from_arrival and uplink.event_ms == 1_790_000_000_000
    assert "ts" not in reading_object(uplink)


# -- ChirpStack v4 -------------------------------------------------------------------------


def test_chirpstack_docs_example_without_object_is_rejected_clearly() -> None:
    error = rejected(CS_TOPIC, orjson.dumps(CHIRPSTACK_DOCS_UP))
    assert error.reason == Reason.NO_DECODED_PAYLOAD
    assert "no object" in error.detail and "codec" in error.detail
    assert error.network_server == CHIRPSTACK and error.device_keys == ("0101010101010101",)


def test_chirpstack_uplink_with_object() -> None:
    envelope = chirpstack_up(fCnt=10, object={"temperature": 24.5, "battery_mv": 3600})
    uplink = up(CS_TOPIC, envelope)
    assert uplink.network_server == CHIRPSTACK
    assert uplink.application == "17c82e96-be03-4f38-aef3-f83d48582d97"
    assert uplink.device_key == "0101010101010101" and uplink.f_cnt == 10
    assert uplink.event_ms == CS_TIME_MS and uplink.rssi_dbm == -36.0
    assert uplink.gateway_ids == ("0016c001f153a14c",)
    assert uplink.dedup_key == (
        CHIRPSTACK,
        "0101010101010101",
        10,
        "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    )
    reading = to_reading(uplink, "bin-lora-1", None, CS_TIME_MS + 500)
    assert reading.values[Q_INDEX["temp_c"]] == 24.5
    assert reading.values[Q_INDEX["battery_v"]] == pytest.approx(3.6)
    assert reading.seq == 10 and reading.ts_ms == CS_TIME_MS


def test_chirpstack_missing_fcnt_is_zero_and_topic_checks() -> None:
    assert up(CS_TOPIC, chirpstack_up(object={"fill": 40})).f_cnt == 0
    upper = CS_TOPIC.replace("0101010101010101", "0101010101010101".upper())
    assert up(upper, chirpstack_up(object={"fill": 40})).device_key == "0101010101010101"
    other = CS_TOPIC.replace("0101010101010101", "0202020202020202")
    error = rejected(other, orjson.dumps(chirpstack_up(object={"fill": 40})))
    assert error.reason == Reason.DEVICE_ID_MISMATCH
    no_info = {k: v for k, v in chirpstack_up(object={}).items() if k != "deviceInfo"}
    assert rejected(CS_TOPIC, orjson.dumps(no_info)).reason == Reason.BAD_ENVELOPE
    # The protobuf marshaler sends binary: the reason says how to fix the integration.
    binary = rejected(CS_TOPIC, b"\x0a\x24\x33\x61\x63\x37\xff\xfe")
    assert binary.reason == Reason.NOT_JSON and "JSON marshaler" in binary.detail


def test_topics() -> None:
    assert topic_network_server(TTS_TOPIC) == (TTS, "app1@tenant1", "dev1")
    assert topic_network_server("bridge/" + TTS_TOPIC) == (TTS, "app1@tenant1", "dev1")
    assert topic_network_server(CS_TOPIC) == (
        CHIRPSTACK,
        "17c82e96-be03-4f38-aef3-f83d48582d97",
        "0101010101010101",
    )
    for topic in (
        "sigap/devices/fire-001/up",
        "sigap/gateways/gw-1/up",
        "v3/app1@tenant1/devices/dev1/join",
        CS_TOPIC.replace("/event/up", "/event/status"),
    ):
        assert topic_network_server(topic) is None, topic
    assert rejected("sigap/devices/x/up", b"{}").reason == Reason.BAD_TOPIC
    assert DEFAULT_TOPICS == ("v3/+/devices/+/up", "application/+/device/+/event/up")


# -- one uplink, several gateways ----------------------------------------------------------


def test_same_uplink_through_several_gateways_has_one_dedup_key() -> None:
    first = chirpstack_up(fCnt=7, object={"smoke": 0.4})
    second = copy.deepcopy(first)
    second["rxInfo"].append(
        {"gatewayId": "0016c001f1500001", "uplinkId": 11, "rssi": -20, "snr": 9.0}
    )
    a, b = up(CS_TOPIC, first), up(CS_TOPIC, second)
    assert a.dedup_key == b.dedup_key
    assert b.rssi_dbm == -20.0 and b.gateway_ids == ("0016c001f153a14c", "0016c001f1500001")

    tts_a = tts_repaired()
    tts_b = copy.deepcopy(tts_a)
    tts_b["uplink_message"]["rx_metadata"] = [
        {"gateway_ids": {"gateway_id": "gtw2"}, "rssi": -90, "channel_rssi": -90},
        {"gateway_ids": {"gateway_id": "gtw3"}, "channel_rssi": -70},
    ]
    ta, tb = up(TTS_TOPIC, tts_a), up(TTS_TOPIC, tts_b)
    assert ta.dedup_key == tb.dedup_key
    assert tb.rssi_dbm == -70.0 and tb.gateway_ids == ("gtw2", "gtw3")

    dedup = Deduplicator(window_ms=60_000)
    assert not dedup.seen(a.dedup_key, 1_000)
    assert dedup.seen(b.dedup_key, 2_000)  # stored once
    assert not dedup.seen(ta.dedup_key, 2_000) and dedup.seen(tb.dedup_key, 2_500)
    next_uplink = up(CS_TOPIC, chirpstack_up(fCnt=8, deduplicationId="another", object={}))
    assert not dedup.seen(next_uplink.dedup_key, 3_000)
    # Keys are forgotten after the window and beyond the size bound.
    assert not dedup.seen(a.dedup_key, 1_000 + 60_001)
    small = Deduplicator(max_keys=2)
    for key in ("k1", "k2", "k3"):
        assert not small.seen(key, 0)
    assert len(small) == 2 and not small.seen("k1", 0)


def test_odd_radio_metadata_does_not_cost_the_reading() -> None:
    envelope = chirpstack_up(object={"temperature": 30})
    envelope["rxInfo"] = [{"gatewayId": "g1", "rssi": "loud"}, {"gatewayId": "g2", "rssi": 7}]
    uplink = up(CS_TOPIC, envelope)
    assert uplink.rssi_dbm is None and "rssi_dbm" not in reading_object(uplink)
    assert to_reading(uplink, "f", None, CS_TIME_MS).values[Q_INDEX["temp_c"]] == 30


# -- field maps -----------------------------------------------------------------------------


def test_field_maps() -> None:
    decoded = {
        "temperature": 31.0,
        "t_internal": 29.5,
        "sensor": {"dist": 420},
        "battery": 87,
        "humidity_pct": 70,
        "luminosity": 0.6,
    }
    # Defaults and Sigap names alone; unknown keys are left out.
    assert map_fields(decoded) == {"humidity_pct": 70, "temp_c": 31.0, "battery_v": 87}
    # The device's map comes first and wins; dots reach into objects; scale converts units.
    device_map = {
        "t_internal": "temp_c",
        "sensor.dist": "distance_mm",
        "battery": {"field": "battery_pct", "scale": 1.0},
        "luminosity": {"field": "smoke_obs_pct_m", "scale": 10},
    }
    assert map_fields(decoded, device_map) == {
        "temp_c": 29.5,
        "distance_mm": 420,
        "battery_pct": 87,
        "smoke_obs_pct_m": 6.0,
        "humidity_pct": 70,
    }


def test_numbers_sent_as_strings_and_with_units_are_read() -> None:
    # Issue #20: Dragino's codecs return toFixed() strings and vendors append units.
    decoded = {
        "Bat": "3.384 V",
        "TempC_DS18B20": "24.1",
        "water_SOIL": "19.57",
        "battery_mv": "3600",  # a millivolt key (scaled), sent as a string
        "distance": "120.5 cm",  # a unit of its own: converted, not scaled
    }
    device_map = {"Bat": "battery_v", "TempC_DS18B20": "temp_c", "water_SOIL": "humidity_pct"}
    reading = to_reading(up(CS_TOPIC, chirpstack_up(object=decoded)), "d", device_map, CS_TIME_MS)
    got = {
        name: reading.values[Q_INDEX[name]]
        for name in ("battery_v", "temp_c", "humidity_pct", "distance_mm")
    }
    assert got == {"battery_v": 3.384, "temp_c": 24.1, "humidity_pct": 19.57, "distance_mm": 1205.0}
    assert map_fields({"battery_mv": "3600"}) == {"battery_v": 3.6}
    assert map_fields({"battery_mv": "3600 mV"}) == {"battery_v": "3600 mV"}  # its unit decides


def test_an_air_quality_station_s_codec_keys_map_by_default() -> None:
    # Issue #19: the keys common particle-sensor codecs use (pm2_5, pm10; CO as co).
    decoded = {"pm2_5": 182.5, "pm10": 240, "co": 4.2, "humidity": 88, "pm1_0": 120}
    assert map_fields(decoded) == {
        "pm25_ugm3": 182.5,
        "pm10_ugm3": 240,
        "co_ppm": 4.2,
        "humidity_pct": 88,
    }


def test_mapped_readings_are_validated_by_the_reading_decoder() -> None:
    def reading_of(obj: dict[str, Any], field_map: dict[str, Any] | None = None) -> Any:
        return to_reading(up(CS_TOPIC, chirpstack_up(object=obj)), "d", field_map, CS_TIME_MS)

    with pytest.raises(UplinkError) as caught:
        reading_of({"temperature": 5000})
    assert caught.value.reason == Reason.OUT_OF_RANGE and "temp_c=5000" in caught.value.detail
    with pytest.raises(UplinkError) as caught:
        reading_of({"level": "full"})
    assert caught.value.reason == Reason.BAD_TYPE and "fill_pct" in caught.value.detail
    with pytest.raises(UplinkError) as caught:
        reading_of({"lux": 3, "counter": 9})
    error = caught.value
    assert error.reason == Reason.NO_QUANTITY
    assert "keys: counter, lux" in error.detail and "field_map" in error.detail
    assert error.device_keys == ("0101010101010101",)
    assert reading_of({"lux": 3}, {"lux": "humidity_pct"}).values[Q_INDEX["humidity_pct"]] == 3


def test_directory_finds_lorawan_devices_by_network_server_id() -> None:
    directory = DeviceDirectory()
    directory.upsert(
        DeviceCreate(
            id="fire-lora-1",
            kind="fire",  # type: ignore[arg-type]
            lat=-2.53,
            lon=112.95,
            network_server="tts",  # type: ignore[arg-type]
            ns_device_id="0004A30B001C0530",
            field_map={"t_internal": "temp_c"},
        )
    )
    uplink = up(TTS_TOPIC, tts_repaired())
    info = directory.find_lorawan(uplink.network_server, uplink.device_keys)
    assert info is not None and info.id == "fire-lora-1"
    assert info.ns_device_id == "0004a30b001c0530" and info.field_map == {"t_internal": "temp_c"}
    assert directory.find_lorawan(CHIRPSTACK, uplink.device_keys) is None
    # Registered by TTS device id instead: found through the second key.
    directory.upsert(
        DeviceCreate(
            id="fire-lora-1",
            kind="fire",  # type: ignore[arg-type]
            lat=-2.53,
            lon=112.95,
            network_server="tts",  # type: ignore[arg-type]
            ns_device_id="dev1",
        )
    )
    info = directory.find_lorawan(TTS, uplink.device_keys)
    assert info is not None and info.id == "fire-lora-1" and info.index == 0
    assert directory.find_lorawan(TTS, ("0004a30b001c0530",)) is None  # the old key is gone


def test_a_codec_that_reports_ts_and_seq_wins_over_the_envelope() -> None:
    measured = "2022-07-18T09:30:00Z"
    uplink = up(CS_TOPIC, chirpstack_up(fCnt=3, object={"fill": 55, "ts": measured, "seq": 41}))
    reading = to_reading(uplink, "bin-lora-1", None, CS_TIME_MS)
    assert reading.ts_ms == parse_ts(measured) and reading.seq == 41
    assert uplink.dedup_key[2] == 3  # the dedup key stays the network server's
    with pytest.raises(UplinkError) as caught:
        to_reading(up(CS_TOPIC, chirpstack_up(object={"fill": 5, "ts": "soon"})), "b", None, 1)
    assert caught.value.reason == Reason.BAD_TIMESTAMP
