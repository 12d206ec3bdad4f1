"""InfluxDB down: alerts still flow, /readyz says so, and readings are written once it is back."""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest

from sigap import devstack
from tests.integration.conftest import http, start_sigap, stop_sigap
from tests.integration.test_end_to_end import eventually, publish, readings, register

pytestmark = pytest.mark.integration


def test_readings_wait_for_influxdb_and_alerts_do_not(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    publisher: mqtt.Client,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # An InfluxDB that is not running yet: sigap up points at a port nobody listens on.
    later = devstack.Service(
        "influxd-later", influxd.process, devstack.free_port(), influxd.log_path
    )
    proc = start_sigap(
        mosquitto,
        later,
        tmp_path_factory.mktemp("outage"),
        SIGAP_INFLUX_MAX_RETRY_DELAY_S="0.5",
        wait_ready=False,
    )
    late_influx: devstack.Service | None = None
    try:
        status = http.get(f"{proc.api}/readyz").json()
        assert status["status"] == "not ready"
        assert "unreachable" in status["checks"]["influxdb"]

        device = register(proc.api)
        ts = int(time.time() * 1000)
        publish(publisher, f"sigap/devices/{device}/up", {"ts": ts, "seq": 1, "temp_c": 88.0})
        # The alert does not wait for InfluxDB.
        alerts = eventually(
            lambda: http.get(f"{proc.api}/api/v1/alerts", params={"device_id": device}).json(),
            what="the fire alert while InfluxDB is down",
        )
        assert alerts[0]["kind"] == "fire.pre_alarm"
        metrics = http.get(f"{proc.api}/metrics").text
        assert "sigap_influx_pending_readings 1.0" in metrics

        late_influx = devstack.start_influxd(later.port, tmp_path_factory.mktemp("influx-late"))
        stored = eventually(
            lambda: readings(proc.api, device),
            timeout=30,
            what="the waiting reading written once InfluxDB is up",
        )
        assert [r["seq"] for r in stored] == [1]
        eventually(
            lambda: http.get(f"{proc.api}/readyz").status_code == 200, what="/readyz ready again"
        )
    finally:
        stop_sigap(proc)
        if late_influx is not None:
            late_influx.stop()
