"""LoRaWAN end to end: The Things Stack v3 and ChirpStack v4 uplinks through mosquitto into
`sigap up`, stored once however many gateways heard them, rejected with a reason otherwise."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from tests.conftest import reference_data
from tests.integration.conftest import SigapProcess, http
from tests.integration.test_end_to_end import eventually, publish, readings, register

pytestmark = pytest.mark.integration


def _rfc3339(seconds_ago: float = 0.0) -> str:
    at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tts_envelope(device_id: str, eui: str, f_cnt: int, decoded: dict[str, Any]) -> bytes:
    """A TTS v3 uplink shaped as the docs' example (tests/data/lorawan/)."""
    at = _rfc3339()
    return orjson.dumps(
        {
            "end_device_ids": {
                "device_id": device_id,
                "application_ids": {"application_id": "sampit"},
                "dev_eui": eui.upper(),
            },
            "received_at": at,
            "uplink_message": {
                "f_cnt": f_cnt,
                "frm_payload": "gkHe",
                "decoded_payload": decoded,
                "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-a"}, "rssi": -71, "snr": 7}],
                "received_at": at,
            },
        }
    )


def chirpstack_envelope(
    eui: str, f_cnt: int, gateway: str, rssi: int, seconds_ago: float = 0.0
) -> bytes:
    """A ChirpStack v4 `up` event as its MQTT integration publishes it (JSON marshaler)."""
    return orjson.dumps(
        {
            "deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{eui}:{f_cnt}")),
            "time": _rfc3339(seconds_ago),
            "deviceInfo": {"deviceName": "bin", "devEui": eui, "applicationId": "app"},
            "fCnt": f_cnt,
            "fPort": 2,
            "data": "qg==",
            "object": {"level": 93.5, "battery": 3.6},
            "rxInfo": [{"gatewayId": gateway, "rssi": rssi, "snr": 5.5}],
        }
    )


def rejected(api: str, **params: str) -> list[dict[str, Any]]:
    """Rejected messages, newest first."""
    body: list[dict[str, Any]] = http.get(f"{api}/api/v1/ingest/rejected", params=params).json()
    return body


def test_tts_and_chirpstack_uplinks_are_mapped_stored_once_and_alerted(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    tts_eui = uuid.uuid4().hex[:16]
    tts_id = f"tts-{tts_eui[:6]}"
    detector = register(sigap.api, network_server="tts", ns_device_id=tts_eui)
    cs_eui = uuid.uuid4().hex[:16]
    bin_id = register(
        sigap.api,
        kind="bin",
        network_server="chirpstack",
        ns_device_id=cs_eui,
        field_map={"level": "fill_pct"},
    )

    publish(
        publisher,
        f"v3/sampit@kotim/devices/{tts_id}/up",
        tts_envelope(tts_id, tts_eui, 7, {"temperature": 31.5, "battery": 3.1}),
    )
    # The same ChirpStack uplink, heard by two gateways (ChirpStack deduplicates, but
    # a network server bridged twice or a redelivery brings it again): stored once.
    topic = f"application/app/device/{cs_eui}/event/up"
    # Frame 42 two seconds ago (twice), frame 43 one second ago: distinct event times.
    publish(publisher, topic, chirpstack_envelope(cs_eui, 42, "0016c001f153a14c", -80, 2))
    publish(publisher, topic, chirpstack_envelope(cs_eui, 42, "0016c001f153a14d", -75, 2))
    publish(publisher, topic, chirpstack_envelope(cs_eui, 43, "0016c001f153a14c", -80, 1))

    stored = eventually(lambda: readings(sigap.api, detector), what="the TTS reading")
    assert stored[0]["temp_c"] == 31.5 and stored[0]["battery_v"] == 3.1
    assert stored[0]["rssi_dbm"] == -71
    bins = eventually(
        lambda: len(r := readings(sigap.api, bin_id)) == 2 and r, what="two ChirpStack readings"
    )
    assert [r["fill_pct"] for r in bins] == [93.5, 93.5]
    # Two fill readings above 90 % make it full (docs/rules.md).
    alerts = eventually(
        lambda: http.get(f"{sigap.api}/api/v1/alerts", params={"device_id": bin_id}).json(),
        what="bin.full from LoRaWAN readings",
    )
    assert [a["kind"] for a in alerts] == ["bin.full"]
    metrics = http.get(f"{sigap.api}/metrics").text
    assert "sigap_ingest_lorawan_duplicates_total" in metrics


def test_lorawan_uplinks_that_cannot_be_used_are_rejected_with_their_reason(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    example = reference_data("lorawan", "tts-v3-uplink-docs-example.json").read_bytes()
    invalid = reference_data(
        "lorawan", "tts-v3-uplink-with-decoded-payload.as-published-invalid-json.txt"
    ).read_bytes()
    publish(publisher, "v3/app1@tenant1/devices/dev1/up", example)
    publish(publisher, "v3/app1@tenant1/devices/dev1/up", invalid)
    unknown = uuid.uuid4().hex[:16]
    publish(
        publisher,
        f"application/app/device/{unknown}/event/up",
        chirpstack_envelope(unknown, 1, "0016c001f153a14c", -90),
    )
    no_object = orjson.loads(chirpstack_envelope(unknown, 2, "0016c001f153a14c", -90))
    del no_object["object"]
    publish(publisher, f"application/app/device/{unknown}/event/up", orjson.dumps(no_object))

    wanted = {"no_decoded_payload", "not_json", "unknown_device"}

    def reasons() -> set[str]:
        found = {r["reason"] for r in rejected(sigap.api, limit="200") if "/up" in r["topic"]}
        return found if wanted <= found else set()

    eventually(reasons, what=f"rejections {sorted(wanted)}")
    for row in rejected(sigap.api, reason="no_decoded_payload"):
        assert row["detail"], row
    assert http.get(f"{sigap.api}/healthz").status_code == 200
