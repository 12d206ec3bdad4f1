"""The real stack behind the console's browser tests: `sigap up` with two fire stations,
fire detectors registered on demand, tokens for every role, and readings sent over MQTT."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest

from sigap import devstack
from tests.integration.conftest import (
    AUTH,
    SigapProcess,
    developer_client,
    http,
    start_sigap,
    stop_sigap,
)

# Both stations lie north of every detector, the near one a few hundred metres from the
# first, so the dispatch dialog must list damkar-baamang first, then damkar-mentawa-baru.
NEAR_STATION = "damkar-baamang"
FAR_STATION = "damkar-mentawa-baru"
STATIONS: list[dict[str, Any]] = [
    {
        "id": NEAR_STATION,
        "kind": "fire_station",
        "name": "Pos Damkar Baamang",
        "lat": -2.5340,
        "lon": 112.9530,
        "district": "Baamang",
    },
    {
        "id": FAR_STATION,
        "kind": "fire_station",
        "name": "Pos Damkar Mentawa Baru",
        "lat": -2.4900,
        "lon": 112.9530,
        "district": "Mentawa Baru Ketapang",
    },
]

# The console's roles, each with the name its token is issued under (the name the console
# shows, and the default `by` of the alert actions taken with it).
ROLE_NAMES = {
    "dispatcher": "Sri Wahyuni (dispatcher)",
    "crew": "Budi Santoso (crew)",
    "technician": "Tono Prasetyo (technician)",
}

# A fixed-temperature alarm and dense smoke on one detector: a confirmed fire at once.
FIRE = {"temp_c": 90.0, "smoke_obs_pct_m": 20.0}
FIRE_KINDS = ("fire.alarm", "fire.confirmed")

# Escalation would change a waiting alert behind the tests' backs (every 60 s by default).
ESCALATE_AFTER_S = "3600"


@dataclass
class ConsoleStack:
    """`sigap up` for the console tests, and how to drive it from outside the browser."""

    mosquitto: devstack.Service
    influxd: devstack.Service
    data_dir: Path
    proc: SigapProcess
    publisher: mqtt.Client
    tokens: dict[str, str] = field(default_factory=dict)  # role -> API token
    detectors: list[str] = field(default_factory=list)
    _seq: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """Where the console is served (the API's own origin)."""
        return self.proc.api

    @property
    def port(self) -> int:
        """The API port (kept across a restart)."""
        return int(self.proc.api.rsplit(":", 1)[1])

    def client(self, role: str) -> httpx.Client:
        """An API client with the bearer token of a role ("admin" for the test admin)."""
        headers = AUTH if role == "admin" else {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0)

    def new_detector(self) -> str:
        """Register one more fire detector (its own zone, 220 m from the previous one)."""
        k = len(self.detectors)
        device_id = f"fire-console-{k}-{uuid.uuid4().hex[:6]}"
        body = {
            "id": device_id,
            "kind": "fire",
            "name": f"Detektor konsol {k}",
            "lat": -2.5370 - 0.002 * k,
            "lon": 112.9530,
            "district": "Baamang",
            "zone": f"konsol-{k}",
        }
        response = http.post(f"{self.base_url}/api/v1/devices", json=body)
        assert response.status_code == 201, response.text
        self.detectors.append(device_id)
        return device_id

    def publish(self, device_id: str, **values: float) -> None:
        """Send one reading as the device (QoS 1, acknowledged by the broker on return)."""
        seq = self._seq.get(device_id, 0) + 1
        self._seq[device_id] = seq
        payload = {"ts": int(time.time() * 1000), "seq": seq, **values}
        topic = f"sigap/devices/{device_id}/up"
        self.publisher.publish(topic, orjson.dumps(payload), qos=1).wait_for_publish(5)

    def publish_fire(self, device_id: str) -> None:
        """Send a fire reading (heat and smoke) as the device."""
        self.publish(device_id, **FIRE)

    def new_fire(self) -> dict[str, Any]:
        """A new detector that reports a fire: its alert, once the API has it."""
        device = self.new_detector()
        self.publish_fire(device)
        return self.alert_for(device)

    def alert_for(self, device_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The device's newest alert, polled through the API until there is one."""
        deadline = time.monotonic() + timeout
        with self.client("dispatcher") as api:
            while True:
                found = api.get("/api/v1/alerts", params={"device_id": device_id}).json()
                if found:
                    alert: dict[str, Any] = found[0]
                    return alert
                if time.monotonic() > deadline:
                    pytest.fail(f"no alert for {device_id} on the API after {timeout} s")
                time.sleep(0.02)  # polling the API for an id; the browser is what is timed

    def stop(self) -> None:
        """Stop `sigap up` (SIGTERM)."""
        stop_sigap(self.proc)

    def start(self) -> None:
        """Start `sigap up` again: same port, data folder and InfluxDB database."""
        self.proc = start_sigap(
            self.mosquitto,
            self.influxd,
            self.data_dir,
            influx_db=self.proc.influx_db,
            SIGAP_API_PORT=str(self.port),
            SIGAP_DISPATCH_ESCALATE_AFTER_S=ESCALATE_AFTER_S,
        )


def start_console_stack(
    mosquitto: devstack.Service, influxd: devstack.Service, data_dir: Path
) -> ConsoleStack:
    """Start `sigap up`, register the stations and issue a token for each console role."""
    proc = start_sigap(
        mosquitto, influxd, data_dir, SIGAP_DISPATCH_ESCALATE_AFTER_S=ESCALATE_AFTER_S
    )
    publisher = developer_client(mosquitto.port)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    stack = ConsoleStack(mosquitto, influxd, data_dir, proc, publisher)
    try:
        for station in STATIONS:
            response = http.post(f"{proc.api}/api/v1/stations", json=station)
            assert response.status_code == 201, response.text
        for role, name in ROLE_NAMES.items():
            response = http.post(f"{proc.api}/api/v1/tokens", json={"name": name, "role": role})
            assert response.status_code == 201, response.text
            stack.tokens[role] = response.json()["token"]
    except BaseException:
        close_console_stack(stack)
        raise
    return stack


def close_console_stack(stack: ConsoleStack) -> None:
    """Stop `sigap up` and the publisher."""
    stack.stop()
    stack.publisher.loop_stop()
    stack.publisher.disconnect()
