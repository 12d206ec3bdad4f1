"""paho's PUBLISH packets read the short way: the same topic, payload, id and QoS as paho's
own handler gives, and paho's handler for everything but the plain case."""

from __future__ import annotations

import contextlib
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from ingest.lean_publish import Incoming, read_publishes_lean


def _packet(topic: bytes, payload: bytes, qos: int = 0, mid: int = 0) -> tuple[int, bytes]:
    """A PUBLISH's first byte and the rest after the remaining length, as paho keeps them."""
    body = len(topic).to_bytes(2, "big") + topic + (mid.to_bytes(2, "big") if qos else b"")
    return 0x30 | qos << 1, body + payload


class _Client:
    """A paho client (never connected) with a PUBLISH in its input, and what came out."""

    def __init__(
        self,
        lean: bool,
        manual_ack: bool = True,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    ) -> None:
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.paho.manual_ack_set(manual_ack)
        self.delivered: list[Incoming] = []
        self.paho_messages: list[mqtt.MQTTMessage] = []
        self.sent: list[tuple[str, int]] = []
        self.paho.on_message = lambda _c, _u, message: self.paho_messages.append(message)
        state: Any = self.paho
        state._send_puback = lambda mid: self._send("puback", mid)
        state._send_pubrec = lambda mid: self._send("pubrec", mid)
        self.lean = read_publishes_lean(self.paho, self.delivered.append) if lean else False

    def _send(self, packet: str, mid: int) -> MQTTErrorCode:
        self.sent.append((packet, mid))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def receive(self, command: int, packet: bytes) -> MQTTErrorCode:
        state: Any = self.paho
        state._in_packet = {"command": command, "packet": packet}
        result: MQTTErrorCode = state._handle_publish()
        return result


def _as_paho_gives(message: mqtt.MQTTMessage) -> Incoming:
    return Incoming(message.topic, bytes(message.payload), message.mid, message.qos)


@settings(max_examples=300, deadline=None)
@given(
    topic=st.text(min_size=1, max_size=80).map(str.encode),
    payload=st.binary(max_size=300),
    qos=st.sampled_from([0, 1]),
    mid=st.integers(1, 65535),
    manual_ack=st.booleans(),
)
def test_plain_publishes_come_out_as_paho_s_own_handler_gives_them(
    topic: bytes, payload: bytes, qos: int, mid: int, manual_ack: bool
) -> None:
    lean, paho = (
        _Client(lean=True, manual_ack=manual_ack),
        _Client(lean=False, manual_ack=manual_ack),
    )
    assert lean.lean
    command, packet = _packet(topic, payload, qos, mid)
    assert lean.receive(command, packet) == paho.receive(command, packet)
    assert lean.delivered == [_as_paho_gives(m) for m in paho.paho_messages]
    assert lean.paho_messages == []  # no MQTTMessage was made
    assert lean.sent == paho.sent  # a PUBACK only where paho sends one itself (no manual acks)
    assert lean.sent == ([] if manual_ack or not qos else [("puback", mid)])


def test_anything_but_the_plain_case_is_left_to_paho() -> None:
    for command, packet in (
        _packet(b"sigap/devices/d1/up", b"{}", qos=2, mid=7),  # QoS 2: PUBREC, paho's state
        _packet(b"sigap/\xff/up", b"{}"),  # not UTF-8: paho keeps it for the callback to see
        _packet(b"", b"{}"),  # an empty topic: a protocol error in MQTT 3.1.1
        (0x32, b"\x00\x03abc\x00"),  # QoS 1 with half a message id
    ):
        client = _Client(lean=True)
        # paho raises its MalformedPacket for the empty topic, as it always did.
        with contextlib.suppress(Exception):
            client.receive(command, packet)
        assert client.delivered == [], packet
    qos2 = _Client(lean=True)
    qos2.receive(*_packet(b"t", b"x", qos=2, mid=7))
    assert qos2.sent == [("pubrec", 7)]


def test_mqtt5_clients_keep_paho_s_handler() -> None:
    assert not _Client(lean=True, protocol=MQTTProtocolVersion.MQTTv5).lean
