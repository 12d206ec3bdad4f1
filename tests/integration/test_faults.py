"""Nothing lost under faults (issue #6), each against real mosquitto, influxd and `sigap up`.

InfluxDB stopped under load, mosquitto restarted under load, `sigap up` killed with
SIGKILL mid-stream, the disk full, the SQL database locked. The load is QoS 1 readings
with unique (device, seq); afterwards InfluxDB must hold exactly the readings the broker
acknowledged to the publisher, and the alert table exactly the alerts the readings call for.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import decode
from ingest.decode import DecodeError, Limits
from sigap import devstack
from tests.integration.conftest import (
    BROKER,
    SigapProcess,
    count_readings,
    developer_client,
    http,
    metric,
    start_sigap,
    stop_sigap,
)
from tests.integration.test_end_to_end import eventually, publish, readings, register
from tests.unit import test_fuzz_ingest as fuzz

pytestmark = pytest.mark.integration

# The issue asks for a 60 s InfluxDB outage; SIGAP_TEST_OUTAGE_S shortens it for a quick
# local run.
OUTAGE_S = float(os.environ.get("SIGAP_TEST_OUTAGE_S", "60"))


@dataclass
class Load:
    """QoS 1 readings at a steady rate from one paho client, in a thread.

    Each reading has a unique (device, seq) and ts. paho resends what the broker did not
    acknowledge when it reconnects (persistent session), so after `finish` every reading
    published is acknowledged, and InfluxDB must hold each exactly once.
    """

    port: int
    devices: list[str]
    rate: float  # readings per second
    hot: set[str] = field(default_factory=set)  # devices that report a fire from `hot_from`
    hot_from: int = 0  # from this seq on
    sent: int = 0
    acked: int = 0  # PUBACKs received (counted in paho's thread)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.client = developer_client(
            self.port, f"load-{uuid.uuid4().hex[:8]}", clean_session=False
        )
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)  # queue while the broker is away
        self.client.reconnect_delay_set(1, 2)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def _on_publish(self, *_: object) -> None:
        self.acked += 1

    def start(self) -> Load:
        """Publish in the background until `finish`."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        seq = last_ts = 0
        start = time.monotonic()
        while not self._stop.is_set():
            for device in self.devices:
                temp = 85.0 if device in self.hot and seq >= self.hot_from else 29.0
                # Strictly increasing event times: when this thread catches up after a
                # stall it publishes in bursts, and two readings of one device in the same
                # millisecond would be the same InfluxDB point (stored once, by design).
                last_ts = max(int(time.time() * 1000), last_ts + 1)
                payload = {"ts": last_ts, "seq": seq, "temp_c": temp}
                topic = f"sigap/devices/{device}/up"
                # Published while the broker is away, a message waits in paho's session
                # and is sent on reconnection (its rc says "not connected" meanwhile).
                self.client.publish(topic, orjson.dumps(payload), qos=1)
                self.sent += 1
            seq += 1
            # Pacing the generator, not synchronising with the system under test.
            pause = start + self.sent / self.rate - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)

    def wait_sent(self, at_least: int, timeout: float = 60) -> None:
        """Block until the generator has published this many readings."""
        eventually(lambda: self.sent >= at_least, timeout, f"{at_least} readings published")

    def finish(self, timeout: float = 120) -> int:
        """Stop, wait until the broker acknowledged every reading; returns how many."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        eventually(
            lambda: self.acked >= self.sent, timeout, f"the broker to acknowledge {self.sent}"
        )
        self.client.disconnect()
        self.client.loop_stop()
        return self.sent


def influx_count(proc: SigapProcess, influx_port: int | None = None) -> int:
    """How many readings InfluxDB holds for this sigap process (0 before the first)."""
    url = f"http://127.0.0.1:{influx_port}" if influx_port else proc.influx_url
    return count_readings(url, proc.influx_db)


def stored_all(proc: SigapProcess, published: int, influx_port: int | None = None) -> None:
    """Wait until InfluxDB holds exactly the published readings; say what it holds if not."""
    try:
        eventually(
            lambda: influx_count(proc, influx_port) == published,
            timeout=60,
            what=f"all {published} readings in InfluxDB",
        )
    except BaseException:
        stored = influx_count(proc, influx_port)
        print(f"InfluxDB holds {stored} of {published}; sigap log:\n{proc.log()[-4000:]}")
        raise


def devices(api: str, n: int) -> list[str]:
    """Register n fire detectors (reporting every 60 s, so none goes offline meanwhile)."""
    return [register(api, reporting_interval_s=60) for _ in range(n)]


def alerts_of(api: str, device: str) -> list[dict[str, Any]]:
    """Every alert of a device, open or not."""
    body: list[dict[str, Any]] = http.get(
        f"{api}/api/v1/alerts", params={"device_id": device}
    ).json()
    return body


@pytest.fixture
def own_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Service]:
    """An InfluxDB this test may stop and start again (same port and data)."""
    service = devstack.start_influxd(devstack.free_port(), tmp_path_factory.mktemp("influx"))
    yield service
    service.stop()


@pytest.fixture
def own_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devstack.Service]:
    """A broker this test may restart (same port and persistence)."""
    service = devstack.start_mosquitto(
        devstack.free_port(), tmp_path_factory.mktemp("mosq"), BROKER
    )
    yield service
    service.stop()


def test_influxdb_down_under_load_spools_and_then_stores_every_reading_once(
    mosquitto: devstack.Service,
    own_influxd: devstack.Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = Path(own_influxd.log_path).parent
    proc = start_sigap(
        mosquitto,
        own_influxd,
        tmp_path_factory.mktemp("sigap"),
        SIGAP_INFLUX_MAX_RETRY_DELAY_S="1",
    )
    influxd = own_influxd
    try:
        load = Load(mosquitto.port, devices(proc.api, 20), rate=200).start()
        load.wait_sent(400)
        influxd.stop()
        outage_end = time.monotonic() + OUTAGE_S
        eventually(
            lambda: metric(proc.api, "sigap_spool_readings") > 0,
            timeout=30,
            what="readings spooled to disk",
        )
        assert "spooling to disk" in proc.log()
        ready = http.get(f"{proc.api}/readyz").json()
        assert ready["checks"]["influxdb"], ready
        # While InfluxDB is down, readings keep being taken (acknowledged) from the broker:
        # they are durable in the spool.
        spooled_before = metric(proc.api, "sigap_spool_readings")
        while time.monotonic() < outage_end:
            time.sleep(min(1.0, max(0.0, outage_end - time.monotonic())))  # the outage itself
        assert metric(proc.api, "sigap_spool_readings") > spooled_before
        assert metric(proc.api, "sigap_ingest_unacked_messages") < 5000
        influxd = devstack.start_influxd(influxd.port, workdir)
        published = load.finish()
        eventually(
            lambda: influx_count(proc) == published,
            timeout=120,
            what=f"all {published} readings in InfluxDB",
        )
        # InfluxDB shows a chunk's points before its answer reaches Sigap, which only then
        # takes the chunk off the spool: wait for that, not just for the points.
        eventually(
            lambda: metric(proc.api, "sigap_spool_readings") == 0,
            timeout=30,
            what="the spool emptied",
        )
        assert "spool drained" in proc.log()
        assert not list((proc.data_dir / "spool").glob("*.lp"))
    finally:
        stop_sigap(proc)
        influxd.stop()


def test_mosquitto_restart_under_load_loses_no_qos1_reading(
    own_mosquitto: devstack.Service,
    influxd: devstack.Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = Path(own_mosquitto.log_path).parent
    broker = own_mosquitto
    proc = start_sigap(broker, influxd, tmp_path_factory.mktemp("sigap"))
    try:
        load = Load(broker.port, devices(proc.api, 20), rate=300).start()
        load.wait_sent(600)
        broker.stop()  # SIGTERM: mosquitto saves its persistence file on the way out
        broker = devstack.start_mosquitto(broker.port, workdir, BROKER)
        load.wait_sent(load.sent + 600)
        published = load.finish()
        stored_all(proc, published)
        assert "MQTT connection to" in proc.log()  # it did notice the restart
    finally:
        stop_sigap(proc)
        broker.stop()


def test_sigkill_mid_stream_loses_no_reading_and_no_alert_and_duplicates_none(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data_dir = tmp_path_factory.mktemp("sigap")
    proc = start_sigap(mosquitto, influxd, data_dir)
    client_id = f"sigap-kill-{uuid.uuid4().hex[:6]}"
    proc2: SigapProcess | None = None
    try:
        stop_sigap(proc)
        proc = start_sigap(mosquitto, influxd, data_dir, SIGAP_MQTT_CLIENT_ID=client_id)
        fleet = devices(proc.api, 10)
        hot = set(fleet[:3])
        load = Load(mosquitto.port, fleet, rate=300, hot=hot, hot_from=40).start()
        load.wait_sent(10 * 41)  # the hot devices have just started to report a fire
        proc.process.kill()  # SIGKILL: no flush, no goodbye
        proc.process.wait()
        load.wait_sent(load.sent + 600)  # the broker holds these for our session
        proc2 = start_sigap(
            mosquitto,
            influxd,
            data_dir,
            SIGAP_MQTT_CLIENT_ID=client_id,
            SIGAP_INFLUX_DB=proc.influx_db,
        )
        load.wait_sent(load.sent + 300)
        published = load.finish()
        stored_all(proc, published)  # the restarted process writes to the same database
        for device in fleet:
            alerts = alerts_of(proc2.api, device)
            if device in hot:
                # One fire per detector, one alert each (the three detectors side by side
                # confirm one another), whatever the kill interrupted.
                assert [a["kind"] for a in alerts] == ["fire.confirmed"], alerts
            else:
                assert alerts == [], alerts
    finally:
        stop_sigap(proc)
        if proc2 is not None:
            stop_sigap(proc2)


@pytest.mark.skipif(
    os.geteuid() != 0, reason="missing privilege: needs root to mount a small tmpfs as a full disk"
)
def test_disk_full_shows_in_readyz_and_recovers_without_a_restart(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        why = mounted.stderr.decode().strip()
        # A container without CAP_SYS_ADMIN refuses even root; anything else is a failure.
        if "permission denied" not in why.lower() and "superuser" not in why.lower():
            pytest.fail(f"cannot mount a tmpfs here: {why}")
        pytest.skip(f"missing privilege: cannot mount a tmpfs here: {why}")
    # InfluxDB is not there, so every reading goes to the spool on the small disk.
    nowhere = devstack.Service("influxd-later", influxd.process, devstack.free_port(), Path())
    proc = start_sigap(
        mosquitto,
        nowhere,
        disk / "data",
        SIGAP_INFLUX_MAX_RETRY_DELAY_S="0.5",
        SIGAP_INGEST_SPOOL_MAX_BYTES=str(64 * 1024 * 1024),
        wait_ready=False,
    )
    late: devstack.Service | None = None
    try:
        fleet = devices(proc.api, 5)
        load = Load(mosquitto.port, fleet, rate=100).start()
        load.wait_sent(100)
        filler = disk / "filler"
        # Unbuffered: a buffered file would try to write its remainder again on closing,
        # and fail there, when the disk filled in the middle of a write.
        with filler.open("wb", buffering=0) as out:  # fill the disk to the last block
            try:
                while True:
                    out.write(b"\0" * 65536)
            except OSError:
                pass
        status = eventually(
            lambda: (s := http.get(f"{proc.api}/readyz").json())["checks"]["spool"] != "ok" and s,
            timeout=30,
            what="/readyz to report the spool failing",
        )
        assert "No space left" in status["checks"]["spool"]
        assert "cannot spool readings" in proc.log()
        load.wait_sent(load.sent + 200)
        filler.unlink()  # room again: no restart needed
        eventually(
            lambda: http.get(f"{proc.api}/readyz").json()["checks"]["spool"] == "ok",
            timeout=30,
            what="the spool to work again",
        )
        late = devstack.start_influxd(nowhere.port, tmp_path_factory.mktemp("influx-late"))
        published = load.finish()
        eventually(
            lambda: influx_count(proc, nowhere.port) == published,
            timeout=60,
            what=f"all {published} readings in InfluxDB",
        )
    finally:
        stop_sigap(proc)
        if late is not None:
            late.stop()
        shutil.copy(proc.log_path, tmp_path / "sigap-up.log")  # the disk goes away
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_locked_sql_database_shows_in_readyz_and_alerts_follow_once_released(
    mosquitto: devstack.Service,
    influxd: devstack.Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    proc = start_sigap(mosquitto, influxd, tmp_path_factory.mktemp("sigap"))
    try:
        device = register(proc.api)
        lock = sqlite3.connect(proc.data_dir / "sigap.sqlite3", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the database
        try:
            load = Load(mosquitto.port, [device], rate=10, hot={device}).start()
            status = eventually(
                lambda: (s := http.get(f"{proc.api}/readyz")).status_code == 503 and s.json(),
                timeout=30,
                what="/readyz to report the locked database",
            )
            assert "locked" in status["checks"]["sql"], status
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        eventually(
            lambda: http.get(f"{proc.api}/readyz").status_code == 200,
            timeout=30,
            what="/readyz ready again",
        )
        published = load.finish()
        alerts = eventually(lambda: alerts_of(proc.api, device), timeout=10, what="the fire alert")
        assert [a["kind"] for a in alerts] == ["fire.alarm"]
        eventually(lambda: influx_count(proc) == published, what="every reading stored")
    finally:
        stop_sigap(proc)


# -- hostile input through the broker ----------------------------------------------------

_FUZZ_LIMITS = Limits()  # what `sigap up` uses by default


# The publisher is a connected client, fine to share between examples.
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(st.one_of(fuzz.JSON, fuzz.READING), min_size=1, max_size=12))
def test_fuzzed_payloads_through_the_broker_are_stored_or_rejected_with_their_reason(
    sigap: SigapProcess, publisher: mqtt.Client, values: list[Any]
) -> None:
    device = register(sigap.api)
    payloads = [p for value in values for p in fuzz._encodings(value)]
    now = int(time.time() * 1000)
    expected_rejects = 0
    for payload in payloads:
        try:
            decode.device_payload(device, payload, now, _FUZZ_LIMITS)
        except DecodeError:
            expected_rejects += 1
        publisher.publish(f"sigap/devices/{device}/up", payload, qos=1)
    # A good reading after the garbage: once it is stored, everything before it was handled
    # (one subscriber, QoS 1, in order).
    publish(publisher, f"sigap/devices/{device}/up", {"seq": 999_999, "temp_c": 30.0})
    eventually(
        lambda: any(r.get("seq") == 999_999 for r in readings(sigap.api, device)),
        what="the good reading after the garbage",
    )
    rejected = http.get(
        f"{sigap.api}/api/v1/ingest/rejected", params={"device_id": device, "limit": 1000}
    ).json()
    assert len(rejected) == expected_rejects
    assert all(r["reason"] and r["detail"] for r in rejected)
    assert http.get(f"{sigap.api}/healthz").status_code == 200


def test_metrics_show_rate_lag_batches_rejections_spool_and_alert_latency(
    sigap: SigapProcess, publisher: mqtt.Client
) -> None:
    device = register(sigap.api)
    before = metric(sigap.api, "sigap_alert_latency_seconds_count")
    publish(publisher, f"sigap/devices/{device}/up", {"seq": 1, "temp_c": 90.0})
    publish(publisher, f"sigap/devices/{device}/up", b"{broken")
    eventually(lambda: alerts_of(sigap.api, device), what="the fire alert")
    text = http.get(f"{sigap.api}/metrics").text
    for name in (
        "sigap_ingest_messages_total",  # ingest rate
        "sigap_ingest_lag_seconds_bucket",  # lag
        "sigap_ingest_unacked_messages",
        "sigap_ingest_queued_messages",
        "sigap_ingest_batch_readings_bucket",  # batch sizes
        'sigap_ingest_rejected_total{reason="not_json"}',  # rejected counts by reason
        "sigap_spool_bytes",  # spool size
        "sigap_influx_pending_readings",
    ):
        assert name in text, name
    assert metric(sigap.api, "sigap_alert_latency_seconds_count") > before
