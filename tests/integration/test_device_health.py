"""Device health through the running service: a silent device goes offline (checked by the
scheduler) and its next reading brings it back."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest

from sigap import devstack
from tests.integration.conftest import http, start_sigap, stop_sigap
from tests.integration.test_end_to_end import eventually, publish, register

pytestmark = pytest.mark.integration


def test_silent_device_goes_offline_and_comes_back(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    publisher: mqtt.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    proc = start_sigap(
        mosquitto, influxd, tmp_path_factory.mktemp("health"), SIGAP_RULES_OFFLINE_CHECK_S="0.2"
    )
    try:
        device = register(proc.api, reporting_interval_s=0.5)  # offline after 1.5 s
        topic = f"sigap/devices/{device}/up"
        publish(publisher, topic, {"temp_c": 30.0, "battery_v": 3.1})

        def alerts() -> list[dict[str, object]]:
            found: list[dict[str, object]] = http.get(
                f"{proc.api}/api/v1/alerts", params={"device_id": device}
            ).json()
            return found

        offline = eventually(
            lambda: [a for a in alerts() if a["kind"] == "device.offline"],
            what="device.offline after three missed intervals",
        )[0]
        assert offline["status"] == "open" and offline["severity"] == "major"
        assert "no reading for" in str(offline["reason"])
        battery = [a for a in alerts() if a["kind"] == "device.battery_low"]
        assert battery and "battery_v 3.10 < 3.3" in str(battery[0]["reason"])

        publish(publisher, topic, {"ts": int(time.time() * 1000), "temp_c": 30.5})
        back = eventually(
            lambda: [a for a in alerts() if a["id"] == offline["id"] and a["status"] == "resolved"],
            what="device.offline resolved",
        )
        assert back[0]["cleared_at"] is not None
    finally:
        stop_sigap(proc)
