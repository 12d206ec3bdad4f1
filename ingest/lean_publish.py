"""paho's incoming PUBLISH packets read the short way, for single-reading messages.

For each PUBLISH paho decodes the packet with `struct` formats built per call, makes an
MQTTMessage (whose MQTTMessageInfo holds a `threading.Condition`, for publishes it never
makes here), formats a debug log line, looks the topic up in its matcher of per-topic
callbacks and takes two locks, before ingest sees topic and payload. That was about a
quarter of the CPU of a single-reading message (bench/ingest_ceiling.py, py-spy), and
the bare subscriber Sigap is measured against pays it too. `read_publishes_lean` replaces
paho's PUBLISH handler on one client with one that reads the topic, message id and payload
and hands them on as an `Incoming` tuple.

Only the plain case is taken: MQTT 3.1.1, QoS 0 or 1, a well-formed packet with a UTF-8
topic. Anything else (QoS 2, MQTT 5 properties, a malformed packet, a topic that is not
UTF-8) goes to paho's own handler, which deals with it as before. QoS 1 is acknowledged as
paho would: by the application when manual acks are on (ingest's case), else at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

log = logging.getLogger(__name__)


class Incoming(NamedTuple):
    """A received PUBLISH: what ingest reads of it (paho's MQTTMessage has the same names)."""

    topic: str
    payload: bytes
    mid: int
    qos: int


def read_publishes_lean(client: mqtt.Client, deliver: Callable[[Incoming], object]) -> bool:
    """Have this paho client hand plain PUBLISH packets to `deliver`; False (and a warning)
    when this paho version does not have the handler this replaces."""
    original: Callable[[], MQTTErrorCode] | None = getattr(client, "_handle_publish", None)
    if original is None or not hasattr(client, "_in_packet"):
        log.warning("paho-mqtt has no _handle_publish: PUBLISH packets are read paho's way")
        return False
    if client.protocol == mqtt.MQTTv5:
        return False  # properties follow the message id: paho reads them
    state: Any = client  # paho's private packet state, read as its own handler reads it
    success = MQTTErrorCode.MQTT_ERR_SUCCESS

    def handle_publish() -> MQTTErrorCode:
        qos = (state._in_packet["command"] & 0x06) >> 1
        packet: bytes = state._in_packet["packet"]
        end = 2 + int.from_bytes(packet[:2], "big")
        if qos > 1 or end == 2 or end + (2 if qos else 0) > len(packet):
            return original()  # QoS 2, an empty topic or a short packet: paho's way
        try:
            topic = packet[2:end].decode()
        except UnicodeDecodeError:
            return original()
        mid = 0
        if qos:
            mid = int.from_bytes(packet[end : end + 2], "big")
            end += 2
        deliver(Incoming(topic, bytes(packet[end:]), mid, qos))
        if qos and not state._manual_ack:
            result: MQTTErrorCode = state._send_puback(mid)
            return result
        return success

    state._handle_publish = handle_publish
    return True
