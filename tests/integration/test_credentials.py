"""A technician provisions a device through the API; mosquitto enforces its login."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.integration.conftest import TEST_ADMIN_TOKEN, SigapProcess, http
from tests.integration.test_end_to_end import eventually, publish, readings, register


class Device:
    """A field device with its own MQTT login (MQTT 5, to see the broker's reason codes)."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.connected = threading.Event()
        self.refused: ReasonCode | None = None
        self.disconnected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{username}-{uuid.uuid4().hex[:4]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.port = port

    def _on_connect(self, _c: object, _u: object, _f: object, code: ReasonCode, _p: object) -> None:
        if code.is_failure:
            self.refused = code
        self.connected.set()

    def connect(self) -> bool:
        """Connect and wait for the broker's answer; True when accepted."""
        self.connected.clear()
        self.refused = None
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"
        return self.refused is None

    def publish(self, topic: str, payload: dict[str, object]) -> ReasonCode | int:
        """Publish at QoS 1; the PUBACK's reason code (0x87: not authorized)."""
        done = threading.Event()
        codes: list[ReasonCode | int] = []

        def on_publish(_c: object, _u: object, _mid: int, code: ReasonCode, _p: object) -> None:
            codes.append(code)
            done.set()

        self.client.on_publish = on_publish
        self.client.publish(topic, orjson.dumps(payload), qos=1)
        assert done.wait(10), "no PUBACK"
        return codes[0]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def technician(api: str) -> dict[str, str]:
    """A technician's bearer token, issued by the admin."""
    response = http.post(f"{api}/api/v1/tokens", json={"name": "tech-budi", "role": "technician"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_provisioned_device_reports_only_as_itself_and_retiring_it_locks_it_out(
    sigap: SigapProcess,
) -> None:
    tech = technician(sigap.api)
    device, other = register(sigap.api), register(sigap.api)
    issued = http.post(f"{sigap.api}/api/v1/devices/{device}/credentials", headers=tech)
    assert issued.status_code == 201, issued.text
    login = issued.json()
    assert login["username"] == device
    assert login["publish_topics"] == [
        f"sigap/devices/{device}/up",
        f"sigap/devices/{device}/status",
    ]

    field = Device(sigap.mqtt_port, login["username"], login["password"])
    try:
        assert field.connect()
        forged = field.publish(f"sigap/devices/{other}/up", {"seq": 1, "temp_c": 90.0})
        assert isinstance(forged, ReasonCode) and forged.value == 0x87  # not authorized
        own = field.publish(f"sigap/devices/{device}/up", {"seq": 2, "temp_c": 29.5})
        assert isinstance(own, ReasonCode) and not own.is_failure
        stored = eventually(lambda: readings(sigap.api, device), what="the device's reading")
        assert [r["seq"] for r in stored] == [2]
        assert readings(sigap.api, other) == []  # the forged one never arrived

        retired = http.delete(f"{sigap.api}/api/v1/devices/{device}", headers=tech)
        assert retired.status_code == 200 and retired.json()["status"] == "retired"
        assert field.disconnected.wait(10), "the broker kept the retired device's session"
    finally:
        field.close()
    again = Device(sigap.mqtt_port, login["username"], login["password"])
    try:
        assert not again.connect()
        assert again.refused is not None and again.refused.value in (0x86, 0x87)
    finally:
        again.close()
    reissue = http.post(f"{sigap.api}/api/v1/devices/{device}/credentials", headers=tech)
    assert reissue.status_code == 409 and "retired" in reissue.json()["detail"]


def test_reissued_credentials_replace_the_old_password(sigap: SigapProcess) -> None:
    tech = technician(sigap.api)
    device = register(sigap.api)
    first = http.post(f"{sigap.api}/api/v1/devices/{device}/credentials", headers=tech).json()
    second = http.post(f"{sigap.api}/api/v1/devices/{device}/credentials", headers=tech).json()
    assert first["password"] != second["password"]
    old = Device(sigap.mqtt_port, device, first["password"])
    new = Device(sigap.mqtt_port, device, second["password"])
    try:
        assert not old.connect()
        assert new.connect()
    finally:
        old.close()
        new.close()
    revoked = http.delete(f"{sigap.api}/api/v1/devices/{device}/credentials", headers=tech)
    assert revoked.status_code == 204
    assert (
        http.delete(f"{sigap.api}/api/v1/devices/{device}/credentials", headers=tech).status_code
        == 404
    )


def test_devices_watch_shows_the_first_reading_and_rejections_on_site(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    device = register(sigap.api)
    watch = subprocess.Popen(
        [
            *(sys.executable, "-m", "sigap", "devices", "watch", device),
            *("--api", sigap.api, "--token", TEST_ADMIN_TOKEN, "--every", "0.2", "--count", "1"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ | {"COLUMNS": "200"},
    )
    try:
        assert watch.stdout is not None
        header = watch.stdout.readline().decode()
        assert device in header and "waiting for readings" in header, header
        publish(publisher, f"sigap/devices/{device}/up", b"{not json")
        publish(publisher, f"sigap/devices/{device}/up", {"seq": 7, "temp_c": 31.5})
        output, _ = watch.communicate(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
    text = output.decode()
    assert watch.returncode == 0, text
    assert "seq=7" in text and "temp_c=31.5" in text
