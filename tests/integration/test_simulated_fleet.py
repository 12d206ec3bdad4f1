"""Simulated fleets against the real stack: every shipped scenario raises exactly the
alerts its file expects ([[expect]]), per device, and no others; expected rejections show
up too; and every reading a fault-free run published is stored once.

The scenarios run at the same time (each with its own id prefix), accelerated so that each
takes 12..30 s; a scenario's model reporting interval is kept and played at one reading
per wall second per device.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import pytest

from sigap import devstack
from simulators import SimConfig, SimSummary, run_simulation
from simulators.publisher import build_fleet
from simulators.scenario import Scenario, build_scenario
from simulators.scenario_file import load_scenario_spec, shipped_scenarios
from tests.integration.conftest import (
    DEVELOPER,
    TEST_ADMIN_TOKEN,
    SigapProcess,
    count_readings,
    http,
    start_sigap,
    stop_sigap,
)

pytestmark = pytest.mark.integration

# Enough devices for every scenario's events, few enough to keep the stack idle.
MAX_DEVICES = 40
WALL_INTERVAL_S = 1.0
# device.offline needs 3 missed intervals (3 s here): an alert raised within this margin
# after the last reading cannot come from the fleet stopping at the end of the run.
END_MARGIN_S = 1.0


@dataclass
class ScenarioRun:
    """One shipped scenario's run and what it should have produced."""

    name: str
    config: SimConfig
    scenario: Scenario
    summary: SimSummary
    started: float
    ended: float


@pytest.fixture(scope="module")
def stack(
    mosquitto: devstack.Service, influxd: devstack.Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SigapProcess]:
    """`sigap up` that looks for silent devices every second (the default is 10 s)."""
    proc = start_sigap(
        mosquitto,
        influxd,
        tmp_path_factory.mktemp("sigap-scenarios"),
        SIGAP_RULES_OFFLINE_CHECK_S="1",
    )
    yield proc
    stop_sigap(proc)


# The demo once more as each LoRaWAN network server would publish it, so that the TTS v3
# and ChirpStack v4 paths are exercised end to end (devices registered by DevEUI).
LORAWAN_RUNS = {"demo@tts": ("demo", "tts"), "demo@chirpstack": ("demo", "chirpstack")}


def _live(name: str) -> bool:
    # A haze builds over days and dust over weeks: those scenarios take an hour (or weeks)
    # live. tests/unit/test_haze_scenarios.py plays them through the rule engine in model
    # time instead, against the same expectations.
    return not any(e.do in ("haze", "rain", "drift") for e in load_scenario_spec(name).event)


LIVE_SCENARIOS = [name for name in shipped_scenarios() if _live(name)]
RUNS = {name: (name, "direct") for name in LIVE_SCENARIOS} | LORAWAN_RUNS


def _config(name: str, proc: SigapProcess, envelope: str = "direct") -> SimConfig:
    spec = load_scenario_spec(name)
    assert spec.run.until is not None, f"{name}: shipped scenarios say how long they run"
    model_interval = spec.run.interval_s * spec.run.speed
    speed = model_interval / WALL_INTERVAL_S
    return SimConfig.for_scenario(
        name,
        mqtt_port=proc.mqtt_port,
        mqtt_username=DEVELOPER[0],
        mqtt_password=DEVELOPER[1],
        api_url=proc.api,
        api_token=TEST_ADMIN_TOKEN,
        devices=min(spec.fleet.devices, MAX_DEVICES),
        interval_s=WALL_INTERVAL_S,
        speed=speed,
        duration_s=spec.run.until / speed,
        id_prefix="s" + uuid.uuid4().hex[:6],
        qos=1,
        envelope=envelope,
    )


def _run(key: str, proc: SigapProcess) -> ScenarioRun:
    name, envelope = RUNS[key]
    config = _config(name, proc, envelope)
    scenario = build_scenario(config.scenario, build_fleet(config), config.seed)
    started = time.time()
    summary = run_simulation(config, progress=False)
    ended = started + summary.duration_s + END_MARGIN_S
    return ScenarioRun(key, config, scenario, summary, started, ended)


@pytest.fixture(scope="module")
def runs(stack: SigapProcess) -> dict[str, ScenarioRun]:
    """Every shipped scenario (and the demo through both network servers), concurrently."""
    with ThreadPoolExecutor(max_workers=len(RUNS)) as pool:
        results = list(pool.map(lambda key: _run(key, stack), RUNS))
    return {r.name: r for r in results}


def _alert_kinds(proc: SigapProcess, run: ScenarioRun) -> dict[str, set[str]]:
    """Alert kinds per device of this run, raised while it ran."""
    alerts = http.get(f"{proc.api}/api/v1/alerts", params={"limit": 10_000}).json()
    kinds: dict[str, set[str]] = {}
    for alert in alerts:
        if not alert["device_id"].startswith(run.config.id_prefix + "-"):
            continue
        if datetime.fromisoformat(alert["raised_at"]).timestamp() > run.ended:
            continue  # the fleet stopping at the end goes offline: not the scenario's doing
        kinds.setdefault(alert["device_id"], set()).add(alert["kind"])
    return kinds


def _rejections(proc: SigapProcess, run: ScenarioRun) -> dict[str, set[str]]:
    rejected = http.get(f"{proc.api}/api/v1/ingest/rejected", params={"limit": 10_000}).json()
    reasons: dict[str, set[str]] = {}
    for item in rejected:
        device = item["device_id"] or ""
        if device.startswith(run.config.id_prefix + "-"):
            reasons.setdefault(device, set()).add(item["reason"])
    return reasons


@pytest.mark.parametrize("name", list(RUNS))
def test_shipped_scenario_raises_exactly_the_expected_alerts(
    name: str, stack: SigapProcess, runs: dict[str, ScenarioRun]
) -> None:
    run = runs[name]
    assert run.summary.failed == 0, run.summary
    assert run.summary.registered == run.summary.devices
    expected = {k: set(v) for k, v in run.scenario.expected.items()}
    # Alerts follow the readings within a batch window: poll until they match, or time out.
    deadline = time.monotonic() + 20
    actual = _alert_kinds(stack, run)
    while actual != expected and time.monotonic() < deadline:
        time.sleep(0.2)  # polling the API for a condition, with a deadline
        actual = _alert_kinds(stack, run)
    missing = {d: k - actual.get(d, set()) for d, k in expected.items() if k - actual.get(d, set())}
    extra = {d: k - expected.get(d, set()) for d, k in actual.items() if k - expected.get(d, set())}
    assert not missing and not extra, f"{name}: missing {missing}, unexpected {extra}"


@pytest.mark.parametrize("name", LIVE_SCENARIOS)
def test_shipped_scenario_rejections(
    name: str, stack: SigapProcess, runs: dict[str, ScenarioRun]
) -> None:
    run = runs[name]
    wanted = run.scenario.expected_rejections
    deadline = time.monotonic() + 10
    got = _rejections(stack, run)
    while any(not r <= got.get(d, set()) for d, r in wanted.items()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling the API for a condition, with a deadline
        got = _rejections(stack, run)
    for device, reasons in wanted.items():
        assert reasons <= got.get(device, set()), (device, got.get(device))
    # Devices without faults are never rejected.
    faulty = {
        d
        for w in run.scenario.windows
        if w.what in ("malformed", "clock_skew")
        for d in w.device_ids
    }
    assert set(got) <= faulty, got


def influx_count(proc: SigapProcess, prefix: str) -> int:
    """Readings stored in InfluxDB for devices whose id starts with the prefix."""
    return count_readings(proc.influx_url, proc.influx_db, f'"device_id" =~ /^{prefix}-/')


@pytest.mark.parametrize("name", ["demo", "quiet", *LORAWAN_RUNS])
def test_fault_free_runs_are_stored_without_loss(
    name: str, stack: SigapProcess, runs: dict[str, ScenarioRun]
) -> None:
    run = runs[name]
    prefix = run.config.id_prefix
    published = run.summary.published
    assert published > 300, run.summary
    deadline = time.monotonic() + 30
    while influx_count(stack, prefix) < published and time.monotonic() < deadline:
        time.sleep(0.2)  # polling InfluxDB for a condition, with a deadline
    assert influx_count(stack, prefix) == published  # no loss, no duplicates


def test_demo_fire_is_one_incident(stack: SigapProcess, runs: dict[str, ScenarioRun]) -> None:
    run = runs["demo"]
    (fire,) = run.scenario.fires
    alerts = http.get(
        f"{stack.api}/api/v1/alerts", params={"limit": 10_000, "kind": "fire.confirmed"}
    ).json()
    burning = {d for d, _ in fire.distances_m}
    confirmed = [a for a in alerts if a["device_id"] in burning]
    assert len(confirmed) == len(burning)
    assert len({a["incident_id"] for a in confirmed}) == 1
