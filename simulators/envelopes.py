"""How readings travel: direct device topics, gateway batches, The Things Stack v3, ChirpStack v4.

Each envelope turns (device, reading) pairs into (topic, payload bytes) messages; no I/O.
The LoRaWAN envelopes mimic what the network servers publish on their MQTT integrations,
so that Sigap's LoRaWAN decoding is exercised end to end: the reading goes in the
decoded-payload field (`uplink_message.decoded_payload` / `object`) and, as bytes, in
`frm_payload` / `data` (the reading's compact JSON, base64; a real device would send a
binary codec, but Sigap reads the decoded form).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from contract import topics
from simulators.fleet import SimDevice

EnvelopeName = Literal["direct", "gateway", "tts", "chirpstack"]
ENVELOPES: tuple[EnvelopeName, ...] = ("direct", "gateway", "tts", "chirpstack")
# A gateway batch holds at most this many readings (ingest's limit is 1000 per message).
MAX_GATEWAY_BATCH = 200
LORAWAN_FPORT = 10
# EU868 / AS923 are both used in Indonesia (AS923-2 by regulation): 923.2 MHz uplinks.
LORAWAN_FREQUENCY_HZ = 923_200_000


@dataclass(frozen=True, slots=True)
class LorawanApp:
    """Names the network server knows the application by."""

    application_id: str = "sigap-sim"
    tenant_id: str = "sigap"
    tenant_name: str = "Sigap"
    # ChirpStack identifies applications and device profiles by UUID; fixed, so tests can
    # subscribe to the topic.
    chirpstack_application_id: str = "6d5d5a4e-6b1f-4b4a-9c1e-5a9f3c2d7e01"
    device_profile_id: str = "9a1b5c3e-2f4d-4e6a-8b7c-1d2e3f4a5b6c"
    device_profile_name: str = "sigap-sensor"


def dev_eui(device_id: str) -> str:
    """A stable 64-bit DevEUI (16 hex digits) for a simulated device."""
    return hashlib.sha256(f"sigap-deveui:{device_id}".encode()).hexdigest()[:16]


def dev_addr(device_id: str) -> str:
    """A stable 32-bit DevAddr (8 hex digits)."""
    return hashlib.sha256(f"sigap-devaddr:{device_id}".encode()).hexdigest()[:8]


def rfc3339(ts_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC with a Z, as both network servers write times."""
    return (
        datetime.fromtimestamp(ts_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _radio(reading: dict[str, Any]) -> tuple[float, float]:
    rssi = float(reading.get("rssi_dbm", -90))
    # SNR falls with RSSI near the sensitivity limit (SF7..SF12 demodulate down to -20 dB).
    snr = round(max(-20.0, min(10.0, (rssi + 110.0) / 3.0)), 1)
    return rssi, snr


def tts_uplink(
    device: SimDevice,
    reading: dict[str, Any],
    f_cnt: int,
    received_ms: int,
    app: LorawanApp = LorawanApp(),
) -> tuple[str, bytes]:
    """(topic, JSON) of a The Things Stack v3 uplink message for one reading."""
    data = orjson.dumps(reading)
    rssi, snr = _radio(reading)
    at = rfc3339(received_ms)
    gateway = device.gateway_id or "sigap-sim-gw"
    message = {
        "end_device_ids": {
            "device_id": device.id,
            "application_ids": {"application_id": app.application_id},
            "dev_eui": dev_eui(device.id).upper(),
            "dev_addr": dev_addr(device.id).upper(),
        },
        "correlation_ids": [f"as:up:{uuid.UUID(int=f_cnt ^ int(dev_eui(device.id), 16)).hex}"],
        "received_at": at,
        "uplink_message": {
            "f_port": LORAWAN_FPORT,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(data).decode(),
            "decoded_payload": dict(reading),
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": gateway},
                    "time": at,
                    "rssi": rssi,
                    "channel_rssi": rssi,
                    "snr": snr,
                }
            ],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                "frequency": str(LORAWAN_FREQUENCY_HZ),
            },
            "received_at": at,
        },
    }
    topic = f"v3/{app.application_id}@{app.tenant_id}/devices/{device.id}/up"
    return topic, orjson.dumps(message)


def chirpstack_uplink(
    device: SimDevice,
    reading: dict[str, Any],
    f_cnt: int,
    received_ms: int,
    app: LorawanApp = LorawanApp(),
) -> tuple[str, bytes]:
    """(topic, JSON) of a ChirpStack v4 `up` event for one reading."""
    data = orjson.dumps(reading)
    rssi, snr = _radio(reading)
    eui = dev_eui(device.id)
    gateway_eui = hashlib.sha256(f"sigap-gweui:{device.gateway_id}".encode()).hexdigest()[:16]
    # Deterministic ids (uuid5) so the same reading always makes the same message.
    dedup = uuid.uuid5(uuid.NAMESPACE_URL, f"sigap:{device.id}:{f_cnt}")
    message = {
        "deduplicationId": str(dedup),
        "time": rfc3339(received_ms),
        "deviceInfo": {
            "tenantId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sigap-tenant:{app.tenant_id}")),
            "tenantName": app.tenant_name,
            "applicationId": app.chirpstack_application_id,
            "applicationName": app.application_id,
            "deviceProfileId": app.device_profile_id,
            "deviceProfileName": app.device_profile_name,
            "deviceName": device.id,
            "devEui": eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {"sigap_kind": device.kind, "district": device.district},
        },
        "devAddr": dev_addr(device.id),
        "adr": True,
        "dr": 3,
        "fCnt": f_cnt,
        "fPort": LORAWAN_FPORT,
        "confirmed": False,
        "data": base64.b64encode(data).decode(),
        "object": dict(reading),
        "rxInfo": [
            {
                "gatewayId": gateway_eui,
                "uplinkId": f_cnt % 65536,
                "rssi": int(rssi),
                "snr": snr,
                "channel": 1,
                "context": base64.b64encode(dedup.bytes[:4]).decode(),
                "metadata": {"region_config_id": "as923_2", "region_common_name": "AS923_2"},
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": LORAWAN_FREQUENCY_HZ,
            "modulation": {
                "lora": {"bandwidth": 125000, "spreadingFactor": 9, "codeRate": "CR_4_5"}
            },
        },
    }
    topic = f"application/{app.chirpstack_application_id}/device/{eui}/event/up"
    return topic, orjson.dumps(message)


def lorawan_registration(body: dict[str, Any], network_server: str) -> dict[str, Any]:
    """A device's registry body as a LoRaWAN device of that network server.

    Registered by DevEUI (the key both servers put in their uplinks); no gateway id, since
    the network server, not a Sigap gateway, relays its readings.
    """
    registered = {k: v for k, v in body.items() if k != "gateway_id"}
    return registered | {"network_server": network_server, "ns_device_id": dev_eui(body["id"])}


def direct_message(device: SimDevice, reading: dict[str, Any]) -> tuple[str, bytes]:
    """(topic, JSON) for a directly connected device."""
    return device.topic, orjson.dumps(reading)


def gateway_messages(
    gateway_id: str, items: Sequence[dict[str, Any]], max_batch: int = MAX_GATEWAY_BATCH
) -> list[tuple[str, bytes, int]]:
    """(topic, JSON, readings) batches `{"readings": [...]}` for one gateway's readings."""
    topic = topics.gateway_up(gateway_id)
    return [
        (
            topic,
            orjson.dumps({"readings": list(items[i : i + max_batch])}),
            len(items[i : i + max_batch]),
        )
        for i in range(0, len(items), max_batch)
    ]
