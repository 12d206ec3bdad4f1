"""A simulated fleet against the real stack: every published reading is stored, and the
demo scenario raises the alerts it is meant to, and no others."""

from __future__ import annotations

import uuid

import httpx
import pytest

from simulators import SimConfig, build_scenario, generate_fleet, run_simulation
from tests.integration.conftest import SigapProcess
from tests.integration.test_end_to_end import eventually

pytestmark = pytest.mark.integration


def influx_count(proc: SigapProcess, prefix: str) -> int:
    """Readings stored in InfluxDB for devices whose id starts with the prefix."""
    response = httpx.get(
        f"{proc.influx_url}/query",
        params={
            "db": proc.influx_db,
            "q": f'SELECT count("seq") FROM "readings" WHERE "device_id" =~ /^{prefix}-/',
        },
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def test_demo_fleet_is_stored_without_loss_and_alerts_as_scripted(sigap: SigapProcess) -> None:
    prefix = "s" + uuid.uuid4().hex[:6]
    devices, seed = 40, 7
    config = SimConfig(
        mqtt_port=sigap.mqtt_port,
        api_url=sigap.api,
        devices=devices,
        interval_s=1.0,
        duration_s=25.0,
        scenario="demo",
        seed=seed,
        id_prefix=prefix,
        speed=6.0,
        qos=1,
    )
    summary = run_simulation(config, progress=False)
    assert summary.registered == devices
    assert summary.failed == 0 and summary.published > 500, summary

    eventually(
        lambda: influx_count(sigap, prefix) >= summary.published,
        timeout=30,
        what=f"{summary.published} readings in InfluxDB",
    )
    assert influx_count(sigap, prefix) == summary.published  # no loss, no duplicates

    rejected = httpx.get(f"{sigap.api}/api/v1/ingest/rejected", params={"limit": 10_000}).json()
    assert [r for r in rejected if (r["device_id"] or "").startswith(prefix)] == []

    scenario = build_scenario("demo", generate_fleet(devices, 0.6, seed, prefix), seed)
    (fire,) = scenario.fires
    burning = {device_id for device_id, _ in fire.distances_m}
    (fast,) = scenario.fast_fills
    alerts = [
        a
        for a in httpx.get(f"{sigap.api}/api/v1/alerts", params={"limit": 10_000}).json()
        if a["device_id"].startswith(prefix)
    ]
    fire_alerts = {a["device_id"]: a for a in alerts if a["slot"] == "fire"}
    full_bins = {a["device_id"] for a in alerts if a["kind"] == "bin.full"}
    assert fire.nearest_id in fire_alerts
    assert set(fire_alerts) <= burning, "a detector outside the burning building alarmed"
    # Two detectors of one building alarming: a confirmed fire, grouped in one incident.
    confirmed = [a for a in fire_alerts.values() if a["kind"] == "fire.confirmed"]
    assert len(confirmed) >= 2, fire_alerts
    assert len({a["incident_id"] for a in confirmed}) == 1
    assert full_bins and full_bins <= set(fast.bin_ids), "a bin outside the scenario filled up"
    unexpected = {a["kind"] for a in alerts} - {
        "fire.pre_alarm",
        "fire.alarm",
        "fire.confirmed",
        "bin.nearly_full",
        "bin.full",
    }
    assert not unexpected
