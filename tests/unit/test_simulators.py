"""Simulated fleet: placement, physics, scenarios, payloads, schedule and registration.

No broker and no sleeps: models are driven with explicit model times.
"""

from __future__ import annotations

import math
import random
import socket
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from devices.schemas import DeviceCreate
from simulators import (
    BrokerUnavailableError,
    RegistrationError,
    SimConfig,
    build_scenario,
    generate_fleet,
    run_simulation,
)
from simulators.fleet import DISTRICTS, _building_sizes
from simulators.models import (
    BIN_FULL_PCT,
    HEAT_ALARM_C,
    SMOKE_ALARM_PCT_M,
    BinState,
    Noise,
    ambient_temp_c,
    bin_reading,
    detector_reading,
    fill_from_distance,
    local_hour,
    random_bin_params,
    smoke_obscuration_pct_m,
    step_bin,
)
from simulators.publisher import Schedule, _MqttLink
from simulators.readings import BIN_FIELDS, FIRE_FIELDS, CrossingWatch, ReadingSource
from simulators.registry import register_fleet

# 2026-01-01 00:00 WIB, so model time t is also the local time of day on the first day.
EPOCH0 = 1767200400.0
RANGES = {
    "temp_c": (-40.0, 1200.0),
    "smoke_obs_pct_m": (0.0, 100.0),
    "humidity_pct": (0.0, 100.0),
    "battery_v": (0.0, 15.0),
    "battery_pct": (0.0, 100.0),
    "rssi_dbm": (-140.0, 0.0),
}


def _local_m(a: Any, b: Any) -> float:
    """Ground distance in metres between two devices (equirectangular, fine at this scale)."""
    dlat = math.radians(b.lat - a.lat)
    dlon = math.radians(b.lon - a.lon) * math.cos(math.radians(a.lat))
    return 6_371_000.0 * math.hypot(dlat, dlon)


# --- fleet -------------------------------------------------------------------------------


def test_fleet_is_deterministic_for_a_seed() -> None:
    assert (
        generate_fleet(300, seed=7).registrations() == generate_fleet(300, seed=7).registrations()
    )
    assert (
        generate_fleet(300, seed=7).registrations() != generate_fleet(300, seed=8).registrations()
    )


def test_fleet_registrations_validate_and_ids_are_unique() -> None:
    fleet = generate_fleet(300, fire_share=0.6, seed=7)
    bodies = fleet.registrations()
    assert len({b["id"] for b in bodies}) == 300
    kinds = Counter(b["kind"] for b in bodies)
    assert kinds == {"fire": 180, "bin": 120}
    for body in bodies:
        device = DeviceCreate(**body)
        assert "gateway_id" not in body
        assert body["district"] in {d.name for d in DISTRICTS}
        # Kotawaringin Timur, around Sampit.
        assert -2.7 < device.lat < -2.1 and 112.8 < device.lon < 113.2
        if device.kind == "fire":
            assert device.zone is not None and device.depth_mm is None
            assert body["id"].startswith("sim-fire-")
        else:
            assert "zone" not in body
            assert device.depth_mm is not None and 900 <= device.depth_mm <= 1300
            assert body["id"].startswith("sim-bin-")
    assert bodies[0]["id"] == "sim-fire-0001" and bodies[-1]["id"] == "sim-bin-0120"


def test_buildings_hold_two_to_six_close_detectors() -> None:
    fleet = generate_fleet(1000, seed=3)
    zones = Counter(d.zone for d in fleet.devices if d.kind == "fire")
    assert all(2 <= n <= 6 for n in zones.values())
    for building in fleet.buildings:
        assert zones[building.zone] == len(building.detector_ids)
        members = [fleet.by_id[i] for i in building.detector_ids]
        assert {m.district for m in members} == {building.district}
        for a in members:
            for b in members:
                assert _local_m(a, b) <= 30.0


@pytest.mark.parametrize("total", [*range(2, 40), 12_000])
def test_building_sizes_cover_every_detector(total: int) -> None:
    sizes = _building_sizes(random.Random(total), total)
    assert sum(sizes) == total
    assert all(2 <= s <= 6 for s in sizes)


def test_fleet_edge_cases() -> None:
    assert {d.kind for d in generate_fleet(10, fire_share=0.0).devices} == {"bin"}
    only_fire = generate_fleet(7, fire_share=1.0)
    assert {d.kind for d in only_fire.devices} == {"fire"}
    assert generate_fleet(20_000, seed=1).devices[-1].id == "sim-bin-8000"
    assert generate_fleet(5, id_prefix="lab").devices[0].id.startswith("lab-fire-")


# --- ambient -----------------------------------------------------------------------------


def test_ambient_cycle_peaks_in_the_afternoon_and_bottoms_before_dawn() -> None:
    temps = {h: ambient_temp_c(EPOCH0 + h * 3600) for h in range(24)}
    assert min(temps, key=lambda h: temps[h]) == 5
    assert max(temps, key=lambda h: temps[h]) == 14
    assert temps[5] == pytest.approx(24.0) and temps[14] == pytest.approx(36.0)
    assert local_hour(EPOCH0 + 3600 * 13.5) == pytest.approx(13.5)


def test_a_day_without_fire_stays_far_from_alarms() -> None:
    fleet = generate_fleet(60, seed=11)
    noise = Noise("ambient-test")
    temps: list[float] = []
    for device in fleet.of_kind("fire"):
        assert device.detector is not None
        for t in range(0, 86_400, 60):
            reading = detector_reading(device.detector, float(t), EPOCH0, 0.0, noise)
            temps.append(reading["temp_c"])
            assert reading["smoke_obs_pct_m"] < 1.0
            assert 0.0 <= reading["smoke_obs_pct_m"] <= 0.5
            assert 50.0 <= reading["humidity_pct"] <= 100.0
    assert max(temps) < 45.0
    assert min(temps) >= 24.0 - 1.2 and max(temps) <= 36.0 + 1.2
    # The cycle is actually there (not a flat line).
    assert min(temps) < 25.0 and max(temps) > 35.0


# --- fire scenario -----------------------------------------------------------------------


def _trace_fire_detectors(
    fleet: Any, scenario: Any, until_s: int = 400, step_s: int = 5
) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    source = ReadingSource(fleet, scenario, seed=7, epoch0=EPOCH0)
    traces: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for t in range(0, until_s + 1, step_s):
        for index, device in enumerate(fleet.devices):
            if device.kind == "fire":
                traces.setdefault(device.id, []).append(
                    (float(t), source.payload(index, float(t), 0))
                )
    return traces


def _first(trace: list[tuple[float, dict[str, Any]]], field: str, level: float) -> float | None:
    return next((t for t, p in trace if p[field] >= level), None)


@pytest.mark.parametrize("seed", [7, 1, 42])
def test_demo_fire_alarms_the_nearest_detector_within_two_minutes(seed: int) -> None:
    fleet = generate_fleet(300, seed=seed)
    scenario = build_scenario("demo", fleet, seed=seed)
    assert len(scenario.fires) == 1
    fire = scenario.fires[0]
    assert fire.t0 == 30.0
    assert build_scenario("demo", fleet, seed=seed).fires[0].zone == fire.zone  # deterministic
    traces = _trace_fire_detectors(fleet, scenario)

    nearest = traces[fire.nearest_id]
    heat_at = _first(nearest, "temp_c", HEAT_ALARM_C)
    smoke_at = _first(nearest, "smoke_obs_pct_m", SMOKE_ALARM_PCT_M)
    assert heat_at is not None and smoke_at is not None
    assert 30.0 + 50.0 <= heat_at <= 30.0 + 125.0
    assert 30.0 < smoke_at <= 30.0 + 150.0
    # Smoke reaches a detector before heat does, as in real fires.
    assert smoke_at <= heat_at
    assert max(p["temp_c"] for _, p in nearest) <= 600.0

    building = {d for d, _ in fire.distances_m}
    for dev_id, trace in traces.items():
        if dev_id in building:
            continue
        assert max(p["temp_c"] for _, p in trace) < 45.0, dev_id
        assert max(p["smoke_obs_pct_m"] for _, p in trace) < 1.0, dev_id
    # The other detectors of the building follow, the nearest one first.
    for dev_id in building - {fire.nearest_id}:
        later = _first(traces[dev_id], "smoke_obs_pct_m", SMOKE_ALARM_PCT_M)
        assert later is None or later >= smoke_at


def test_fire_keeps_growing_to_a_ceiling() -> None:
    fleet = generate_fleet(300, seed=7)
    scenario = build_scenario("demo", fleet, seed=7)
    fire = scenario.fires[0]
    assert scenario.fire_rise_c(fire.nearest_id, 29.0) == 0.0
    rises = [scenario.fire_rise_c(fire.nearest_id, t) for t in range(30, 3600, 30)]
    assert rises == sorted(rises)
    assert 300.0 < rises[-1] <= 600.0
    # A second detector confirms within a few minutes (smoke).
    second = fire.distances_m[1][0]
    assert smoke_obscuration_pct_m(scenario.fire_rise_c(second, 30.0 + 240.0)) >= 10.0


def test_quiet_scenario_has_no_events() -> None:
    fleet = generate_fleet(100, seed=7)
    scenario = build_scenario("quiet", fleet)
    assert scenario.is_quiet and not scenario.timeline(fleet)
    assert all(scenario.fire_rise_c(d.id, 100.0) == 0.0 for d in fleet.devices)
    assert all(scenario.crews_for(d.id) for d in fleet.devices)
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("earthquake", fleet)


def test_demo_timeline_names_the_building_and_its_detectors() -> None:
    fleet = generate_fleet(300, seed=7)
    scenario = build_scenario("demo", fleet, seed=7)
    fire = scenario.fires[0]
    (t_fire, fire_line), (t_bins, bins_line) = scenario.timeline(fleet)
    assert t_fire == t_bins == 30.0
    assert fire_line.startswith(f"t=30s fire started in building {fire.zone} ({fire.district}): ")
    assert all(dev_id in fire_line for dev_id, _ in fire.distances_m)
    assert "5 bins started filling fast" in bins_line


# --- bins --------------------------------------------------------------------------------


def test_fast_fill_bins_pass_full_within_ninety_seconds_and_stay_full() -> None:
    fleet = generate_fleet(300, seed=7)
    scenario = build_scenario("demo", fleet, seed=7)
    (rush,) = scenario.fast_fills
    assert len(rush.bin_ids) == 5 and rush.t0 == 30.0
    source = ReadingSource(fleet, scenario, seed=7, epoch0=EPOCH0)
    index = {d.id: i for i, d in enumerate(fleet.devices)}
    full_at: dict[str, float] = {}
    for t in range(0, 7200 + 1, 10):
        for bin_id in rush.bin_ids:
            device = fleet.by_id[bin_id]
            assert device.depth_mm is not None
            payload = source.payload(index[bin_id], float(t), 0)
            fill = fill_from_distance(payload["distance_mm"], device.depth_mm)
            if bin_id in full_at:
                assert fill >= BIN_FULL_PCT, (bin_id, t)  # nobody empties them
            elif fill >= BIN_FULL_PCT:
                full_at[bin_id] = float(t)
    assert set(full_at) == set(rush.bin_ids)
    # Nobody was full before the rush (bins start at most 70 % full); all are by t=90 s.
    assert min(full_at.values()) > 30.0 and max(full_at.values()) <= 90.0


def test_normal_bins_fill_daily_and_get_emptied() -> None:
    noise = Noise("bins")
    params = random_bin_params(random.Random(5), 1100.0)
    state = BinState(t=0.0, fill_pct=10.0, crews=False)
    day_start = state.fill_pct
    gains: list[float] = []
    for day in range(1, 6):
        for t in range((day - 1) * 86_400 + 600, day * 86_400 + 1, 600):
            state = step_bin(state, params, float(t), EPOCH0, noise)
        gains.append(state.fill_pct - day_start)
        day_start = state.fill_pct
        if state.fill_pct > 60:
            state = BinState(state.t, 10.0, crews=False)
            day_start = 10.0
    daily = params.daily_fill_pct
    assert 20.0 <= daily <= 60.0
    assert all(0.5 * daily <= g <= 1.5 * daily for g in gains)

    # With crews, levels stay within 0..100 and bins are emptied again and again.
    state = BinState(t=0.0, fill_pct=50.0)
    empties = 0
    for t in range(600, 30 * 86_400, 600):
        before = state.fill_pct
        state = step_bin(state, params, float(t), EPOCH0, noise)
        assert 0.0 <= state.fill_pct <= 100.0
        if state.fill_pct < before - 20:
            empties += 1
            assert 3.0 <= state.fill_pct <= 8.0
    assert empties >= 5


def test_bins_fill_faster_by_day_than_by_night() -> None:
    noise = Noise("day-night")
    params = random_bin_params(random.Random(9), 1000.0)
    night = step_bin(BinState(0.0, 10.0, crews=False), params, 4 * 3600.0, EPOCH0, noise)
    day = step_bin(BinState(10 * 3600.0, 10.0, crews=False), params, 14 * 3600.0, EPOCH0, noise)
    assert day.fill_pct - 10.0 > 2 * (night.fill_pct - 10.0)


def test_bin_distance_is_clipped_to_the_bin() -> None:
    noise = Noise("clip")
    params = random_bin_params(random.Random(1), 900.0)
    for fill in (0.0, 100.0):
        for _ in range(200):
            reading = bin_reading(BinState(0.0, fill), params, EPOCH0, noise)
            assert 0 <= reading["distance_mm"] <= 900


# --- payloads ----------------------------------------------------------------------------


def test_payloads_have_only_known_fields_within_physical_ranges() -> None:
    fleet = generate_fleet(300, seed=7)
    scenario = build_scenario("demo", fleet, seed=7)
    source = ReadingSource(fleet, scenario, seed=7, epoch0=EPOCH0)
    for step, t in enumerate([0.0, 30.0, 60.0, 120.0, 600.0, 3600.0, 40_000.0]):
        for index, device in enumerate(fleet.devices):
            payload = source.payload(index, t, 1_767_200_400_000 + int(t * 1000))
            assert payload["seq"] == step
            assert isinstance(payload["ts"], int)
            allowed = FIRE_FIELDS if device.kind == "fire" else BIN_FIELDS
            assert set(payload) == allowed
            for field, value in payload.items():
                assert isinstance(value, int | float) and math.isfinite(value)
                if field in RANGES:
                    low, high = RANGES[field]
                    assert low <= value <= high, (device.id, field, value)
            if device.kind == "bin":
                assert device.depth_mm is not None
                assert 0 <= payload["distance_mm"] <= device.depth_mm
            assert orjson.loads(orjson.dumps(payload)) == payload


def test_crossing_watch_reports_each_crossing_once() -> None:
    fleet = generate_fleet(20, seed=7)
    watch = CrossingWatch(fleet)
    fire = next(i for i, d in enumerate(fleet.devices) if d.kind == "fire")
    hot = {"temp_c": 61.0, "smoke_obs_pct_m": 12.0}
    notes = watch.check(fire, hot, 95.0)
    assert len(notes) == 2 and notes[0].startswith("t=95s ") and "61.0 C >= 57 C" in notes[0]
    assert watch.check(fire, hot, 100.0) == []
    assert watch.check(fire, {"temp_c": 30.0, "smoke_obs_pct_m": 0.1}, 200.0) == []
    assert len(watch.check(fire, hot, 300.0)) == 2  # re-armed after a clear fall back


# --- schedule ----------------------------------------------------------------------------


def test_schedule_spreads_devices_evenly_and_reports_each_once_per_interval() -> None:
    schedule = Schedule(1000, 10.0, seed=7)
    per_second: Counter[int] = Counter()
    times: dict[int, list[float]] = {}
    for tenth in range(1, 501):  # 50 s in 0.1 s steps
        now = tenth / 10
        for index in schedule.pop_due(now, now, limit=10_000):
            times.setdefault(index, []).append(now)
            per_second[int(now - 1e-9)] += 1
    assert set(times) == set(range(1000))
    assert all(first <= 10.0 for first, *_ in times.values())
    # Every interval (2 % jitter, 0.1 s steps), without drifting.
    for reports in times.values():
        assert 4 <= len(reports) <= 6
        assert all(9.5 <= b - a <= 10.5 for a, b in pairwise(reports))
    # Smooth load: about devices / interval readings every second.
    assert all(80 <= per_second[s] <= 120 for s in range(1, 49))
    assert schedule.skipped == 0


def test_schedule_skips_slots_when_far_behind() -> None:
    schedule = Schedule(10, 1.0, seed=7)
    due = schedule.pop_due(5.0, 5.0, limit=1000)
    assert sorted(due) == list(range(10))  # each device once, not five times
    assert schedule.skipped > 0
    assert schedule.next_due() > 4.0


# --- MQTT accounting (no broker) ---------------------------------------------------------


@dataclass
class _Info:
    mid: int
    rc: MQTTErrorCode


class _FakeClient:
    """Stands in for paho: hands out mids; `ack_early` acknowledges inside publish()."""

    def __init__(self, link: _MqttLink, ack_early: bool = False) -> None:
        self.link = link
        self.ack_early = ack_early
        self.mid = 0

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> _Info:
        self.mid += 1
        if self.ack_early:
            self.link._on_publish(self, None, self.mid, ReasonCode(PacketTypes.PUBACK), None)  # type: ignore[arg-type]
        return _Info(self.mid, MQTTErrorCode.MQTT_ERR_SUCCESS)


@pytest.mark.parametrize("ack_early", [False, True])
def test_link_counts_acknowledgements_per_kind(ack_early: bool) -> None:
    link = _MqttLink(SimConfig(api_url=None))
    fake = _FakeClient(link, ack_early)
    link.client = fake  # type: ignore[assignment]
    for kind in (0, 0, 1):
        link.publish("sigap/devices/x/up", b"{}", kind)
    if not ack_early:
        assert link.outstanding == 3
        for mid in (1, 2):
            link._on_publish(fake, None, mid, ReasonCode(PacketTypes.PUBACK), None)  # type: ignore[arg-type]
        refused = ReasonCode(PacketTypes.PUBACK, "Not authorized")
        link._on_publish(fake, None, 3, refused, None)  # type: ignore[arg-type]
        assert link.acked == [2, 0] and link.rejected == 1
    else:
        assert link.acked == [2, 1]
    assert link.outstanding == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_broker_is_a_clear_error() -> None:
    config = SimConfig(mqtt_port=_closed_port(), api_url=None, devices=10, duration_s=1)
    with pytest.raises(BrokerUnavailableError, match=r"127\.0\.0\.1:\d+ is not available"):
        run_simulation(config, progress=False)


def test_config_rejects_nonsense() -> None:
    for bad in (
        {"devices": 0},
        {"fire_share": 1.5},
        {"interval_s": 0},
        {"scenario": "flood"},
        {"qos": 3},
        {"speed": 0},
        {"id_prefix": "bad/prefix"},
    ):
        with pytest.raises(ValueError):
            SimConfig(**bad)


# --- registration ------------------------------------------------------------------------


def test_register_fleet_counts_created_and_existing() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = orjson.loads(request.content)
        DeviceCreate(**body)
        return httpx.Response(409 if body["id"].endswith("1") else 201, json={})

    fleet = generate_fleet(30, seed=7)
    result = register_fleet(
        fleet.registrations(),
        "http://api.test/",
        token="s3cret",
        transport=httpx.MockTransport(handler),
    )
    assert result.registered == 30
    assert result.existing == sum(1 for d in fleet.devices if d.id.endswith("1"))
    assert {str(r.url) for r in seen} == {"http://api.test/api/v1/devices"}
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in seen)


def test_register_fleet_raises_with_the_response_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, text="depth_mm: field required")

    with pytest.raises(RegistrationError, match="HTTP 422: depth_mm: field required") as info:
        register_fleet(
            generate_fleet(3).registrations(),
            "http://api.test",
            transport=httpx.MockTransport(handler),
        )
    assert info.value.status == 422


def test_register_fleet_waits_for_a_starting_api() -> None:
    calls = Counter[str]()

    def handler(request: httpx.Request) -> httpx.Response:
        calls["all"] += 1
        if calls["all"] <= 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(201)

    result = register_fleet(
        generate_fleet(5).registrations(),
        "http://api.test",
        retry_delay_s=0.0,
        transport=httpx.MockTransport(handler),
    )
    assert result.created == 5


def test_register_fleet_gives_up_on_a_dead_api() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RegistrationError, match="gave up"):
        register_fleet(
            generate_fleet(2).registrations(),
            "http://api.test",
            wait_s=0.0,
            retry_delay_s=0.0,
            transport=httpx.MockTransport(handler),
        )
