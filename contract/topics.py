"""MQTT topic shapes: where devices, gateways and network servers publish, where alerts go."""

from __future__ import annotations

DEVICE_UP = "sigap/devices/+/up"  # one reading from a directly connected device
DEVICE_STATUS = "sigap/devices/+/status"  # online / offline (retained; last will)
GATEWAY_UP = "sigap/gateways/+/up"  # a gateway's batch {"readings": [...]}
GATEWAY_STATUS = "sigap/gateways/+/status"
ALERTS = "sigap/alerts/#"  # alert changes out, sigap/alerts/{category}/{device_id}
TTS_UP = "v3/+/devices/+/up"  # The Things Stack v3: v3/{app}@{tenant}/devices/{dev}/up
CHIRPSTACK_UP = "application/+/device/+/event/up"  # ChirpStack v4
LORAWAN_UP: tuple[str, ...] = (TTS_UP, CHIRPSTACK_UP)


def device_up(device_id: str) -> str:
    """The topic a device publishes its readings to."""
    return f"sigap/devices/{device_id}/up"


def device_status(device_id: str) -> str:
    """The topic a device publishes online/offline to."""
    return f"sigap/devices/{device_id}/status"


def gateway_up(gateway_id: str) -> str:
    """The topic a gateway publishes its batches to."""
    return f"sigap/gateways/{gateway_id}/up"


def gateway_status(gateway_id: str) -> str:
    """The topic a gateway publishes online/offline to."""
    return f"sigap/gateways/{gateway_id}/status"


def alert_topic(category: str, device_id: str) -> str:
    """The topic an alert change of this device is published on."""
    return f"sigap/alerts/{category}/{device_id}"
