"""Simulated haze (issue #19): the regional field, what detectors and air stations see of it,
infiltration, dust drift, time compression and the haze scenario files.

No broker, no clock, no sleeps: the field and the readings are driven with explicit model
times.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import Counter
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest

from contract.optics import (
    CLEAR_VISIBILITY_M,
    extinction_from_obscuration,
    extinction_from_pm25,
    extinction_per_m,
    obscuration_pct_m,
    visibility_m,
)
from contract.readings import RANGES
from contract.thresholds import RuleParams
from devices.schemas import DeviceCreate
from simulators import SimConfig, generate_fleet
from simulators.faults import FaultInjector
from simulators.fleet import DISTRICTS, Fleet
from simulators.fleet_file import load_fleet_file
from simulators.haze import (
    CLEAR_EXTINCTION,
    LEAKY_FROM,
    HazeField,
    daily_factor,
    draw_infiltration,
    ispu_category,
)
from simulators.models import PM10_PER_PM25, SMOKE_ALARM_PCT_M
from simulators.publisher import Schedule, _Loop, _MqttLink, build_fleet, counted_kinds
from simulators.readings import AIR_FIELDS, FIRE_FIELDS, ReadingSource, iter_readings
from simulators.registry import register_fleet
from simulators.scenario import (
    Scenario,
    ScenarioResolveError,
    resolve_scenario,
    scenario_with_fleet,
)
from simulators.scenario_file import (
    ScenarioFileError,
    ScenarioSpec,
    load_scenario_spec,
    parse_scenario,
)

EPOCH0 = 1767200400.0  # 2026-01-01 00:00 WIB
PRE_ALARM_PCT_M = RuleParams().smoke_prealarm_pct_m  # Sigap's smoke pre-alarm


def _shipped(name: str, seed: int = 7) -> tuple[ScenarioSpec, Fleet, Scenario]:
    """A shipped scenario with its fleet, as `sigap simulate --scenario NAME` builds them."""
    return scenario_with_fleet(name, seed)


def _haze(scenario: Scenario) -> HazeField:
    assert scenario.haze is not None
    return scenario.haze


def _index(fleet: Fleet) -> dict[str, int]:
    return {d.id: i for i, d in enumerate(fleet.devices)}


def _clock_hours(scenario: Scenario, t: float) -> float:
    """Haze-clock hours since the first episode began (day 0 starts at its start hour)."""
    episode = _haze(scenario).episodes[0]
    return episode.start_hour + episode.clock_s(t) / 3600.0


# --- the field ---------------------------------------------------------------------------


def test_daily_cycle_is_worst_in_the_morning_and_clearest_mid_afternoon() -> None:
    hours = [h / 4 for h in range(96)]
    factors = {h: daily_factor(h) for h in hours}
    assert max(factors, key=lambda h: factors[h]) == 7.0
    assert min(factors, key=lambda h: factors[h]) == 15.0
    assert factors[7.0] == pytest.approx(1.0) and factors[15.0] == pytest.approx(0.25)
    assert all(factors[h] >= 0.85 for h in hours if 6.0 <= h <= 9.0)
    assert all(factors[h] <= 0.5 for h in hours if 13.0 <= h <= 17.0)


def test_haze_2015_builds_peaks_in_the_mornings_and_clears_with_rain() -> None:
    _, _, scenario = _shipped("haze-2015")
    haze = _haze(scenario)
    (episode,) = haze.episodes
    (rain,) = episode.rains
    # A week in an hour: one simulated day every 3600 / 7 = 514 s of model time.
    assert episode.model_time(7 * 86400) == pytest.approx(3600.0)
    assert episode.local_hour(3600.0 / 7 * 2.5) == pytest.approx(12.0)
    for district in haze.districts:
        assert visibility_m(haze.outdoor_extinction(district, 0.0)) == CLEAR_VISIBILITY_M

        def at(day: int, hour: float, d: str = district) -> float:
            return haze.extinction(d, episode.model_time((day * 24 + hour) * 3600))

        # Builds over three days: each day's morning worse than the one before.
        mornings = [at(day, 7.0) for day in range(4)]
        assert mornings == sorted(mornings) and mornings[0] < 0.2 * mornings[3]
        # Once built up, every morning is worse than that day's afternoon, by 2.5x or more.
        for day in (3, 4, 5):
            morning = max(at(day, h) for h in (6.0, 7.0, 8.0, 9.0))
            afternoon = max(at(day, h) for h in (14.0, 15.0, 16.0))
            assert morning > 2.5 * afternoon, (district, day)
            assert visibility_m(CLEAR_EXTINCTION + morning) < 200.0
        # Rain (reaching each district with its shift) washes it out within an hour of the
        # haze clock, for good.
        shift = episode.districts[district].shift_s
        washed = rain.t + (3600.0 + shift) / episode.compression + 1.0
        assert haze.extinction(district, rain.t - 1.0) > 0.0
        assert all(haze.extinction(district, t) == 0.0 for t in range(int(washed), 3601, 10))
        assert haze.visibility_m(district, 3600.0) == CLEAR_VISIBILITY_M


def test_districts_differ_in_intensity_but_move_together() -> None:
    _, _, scenario = _shipped("haze-2015")
    haze = _haze(scenario)
    names = sorted(haze.districts)
    assert names == sorted(d.name for d in DISTRICTS)
    # The built-up days, before the rain: haze-clock days 3..6.
    times = [float(t) for t in range(1600, 3100, 15)]
    series = {n: [math.log(haze.extinction(n, t)) for t in times] for n in names}
    peaks = {n: max(haze.extinction(n, t) for t in times) for n in names}
    assert max(peaks.values()) > 1.2 * min(peaks.values())  # not the same everywhere
    for a in names:
        for b in names:
            assert statistics.correlation(series[a], series[b]) > 0.9, (a, b)
    # Each district's worst moment is a morning (06:00..09:00 of the haze clock).
    for n in names:
        _, worst = max((haze.extinction(n, t), t) for t in times)
        assert 5.5 <= _clock_hours(scenario, worst) % 24 <= 9.5, n


def test_haze_2015_peak_is_50_m_and_past_the_pre_alarm_indoors() -> None:
    _, _, scenario = _shipped("haze-2015")
    haze = _haze(scenario)
    worst = min(haze.visibility_m(d, float(t)) for d in haze.districts for t in range(0, 3600, 5))
    assert 49.0 <= worst <= 52.0
    # Koschmieder: 50 m is 7.5 %/m outdoors, so a building letting it all in passes 5 %/m.
    assert obscuration_pct_m(extinction_per_m(worst) - CLEAR_EXTINCTION) == pytest.approx(
        7.5, abs=0.2
    )


def test_air_station_and_open_building_describe_the_same_visibility() -> None:
    fleet = generate_fleet(300, 0.8, seed=7, air_stations=5)
    district = "Baamang"
    (station,) = [d for d in fleet.of_kind("air") if d.district == district]
    building = next(b for b in fleet.buildings if b.district == district)
    text = f"""
name = "k"
[fleet]
infiltration = {{ "{building.zone}" = 1.0 }}
[[event]]
at = 0
do = "haze"
build = "1h"
compression = 60
start_hour = 5
"""
    scenario = resolve_scenario(parse_scenario(text), fleet, 7)
    haze = _haze(scenario)
    source = ReadingSource(fleet, scenario, 7, EPOCH0)
    index = _index(fleet)
    detector = fleet.by_id[building.detector_ids[0]]
    assert detector.detector is not None
    # 06:00..08:00 on the haze clock: 60..180 s of model time at x60.
    times = [float(t) for t in range(60, 180, 2)]
    from_pm25, from_smoke, truth = [], [], []
    for t in times:
        air = source.payload(index[station.id], t, 0)
        smoke = source.payload(index[detector.id], t, 0)["smoke_obs_pct_m"]
        from_pm25.append(extinction_from_pm25(air["pm25_ugm3"]) - CLEAR_EXTINCTION)
        # Less the chamber's own clean-air reading (base plus a humid morning's scatter).
        clean = detector.detector.smoke_base_pct_m + 0.1
        from_smoke.append(extinction_from_obscuration(smoke - clean))
        truth.append(haze.extinction(district, t))
    for seen in (from_pm25, from_smoke):
        ratio = statistics.fmean(seen) / statistics.fmean(truth)
        assert 0.95 <= ratio <= 1.05, ratio
    visibility_air = visibility_m(statistics.fmean(from_pm25) + CLEAR_EXTINCTION)
    visibility_detector = visibility_m(statistics.fmean(from_smoke) + CLEAR_EXTINCTION)
    assert visibility_air == pytest.approx(visibility_detector, rel=0.06)
    assert visibility_air < 150.0


# --- what the devices report --------------------------------------------------------------


def test_air_stations_report_pm_and_co_that_follow_the_haze() -> None:
    spec, fleet, scenario = _shipped("haze-2015")
    stations = fleet.of_kind("air")
    assert len(stations) == 5 and {s.district for s in stations} == {d.name for d in DISTRICTS}
    # Added last, from a stream of their own: the rest of the fleet is what it was.
    assert fleet.devices[: spec.fleet.devices] == generate_fleet(420, 0.8, 7).devices
    source = ReadingSource(fleet, scenario, 7, EPOCH0)
    index = _index(fleet)
    pm25s, cos = [], []
    for t in range(0, 3600, 30):
        for station in stations:
            payload = source.payload(index[station.id], float(t), 0)
            assert set(payload) == AIR_FIELDS
            for name, value in payload.items():
                if name in RANGES:
                    low, high = RANGES[name]
                    assert low <= value <= high, (name, value)
            if payload["pm25_ugm3"] > 100:
                ratio = payload["pm10_ugm3"] / payload["pm25_ugm3"]
                assert PM10_PER_PM25[0] * 0.85 <= ratio <= PM10_PER_PM25[1] * 1.15
            pm25s.append(payload["pm25_ugm3"])
            cos.append(payload["co_ppm"])
    assert min(pm25s) < 35.0 and max(pm25s) > 7000.0  # clear air (~24) to 50 m (~9,800)
    assert statistics.correlation(pm25s, cos) > 0.95


def test_every_district_is_berbahaya_on_its_worst_simulated_day() -> None:
    _, fleet, scenario = _shipped("haze-2015")
    haze = _haze(scenario)
    (episode,) = haze.episodes
    source = ReadingSource(fleet, scenario, 7, EPOCH0)
    index = _index(fleet)
    for district, want in scenario.expected_districts.items():
        (station,) = [s for s in fleet.of_kind("air") if s.district == district]
        daily = []
        for day in range(7):
            start, end = episode.model_time(day * 86400.0), episode.model_time((day + 1) * 86400.0)
            values = [
                source.payload(index[station.id], t, 0)["pm25_ugm3"]
                for t in (start + k * (end - start) / 48 for k in range(48))
            ]
            daily.append(statistics.fmean(values))
        assert want.category == ispu_category(max(daily)) == "berbahaya", (district, daily)
        assert daily[0] < daily[3] / 5  # the first day is still building up
    assert [ispu_category(x) for x in (10, 40, 100, 200, 300)] == [
        "baik",
        "sedang",
        "tidak_sehat",
        "sangat_tidak_sehat",
        "berbahaya",
    ]


def test_no_detector_reaches_the_alarm_in_haze_2015_but_leaky_buildings_pass_pre_alarm() -> None:
    _, fleet, scenario = _shipped("haze-2015")
    haze = _haze(scenario)
    source = ReadingSource(fleet, scenario, 7, EPOCH0)
    above_pre, top = set(), 0.0
    for t in range(0, 3600, 10):
        for index, device in enumerate(fleet.devices):
            if device.kind != "fire" or haze.infiltration[device.id] < 0.6:
                continue
            smoke = source.payload(index, float(t), 0)["smoke_obs_pct_m"]
            top = max(top, smoke)
            if smoke >= PRE_ALARM_PCT_M:
                above_pre.add(device.id)
    assert top < SMOKE_ALARM_PCT_M
    assert len(above_pre) >= 30  # haze past the pre-alarm in many buildings: the hard case
    assert all(haze.infiltration[d] >= 0.6 for d in above_pre)


def test_infiltration_share_and_range() -> None:
    keys = [f"b{i}" for i in range(1000)]
    factors = draw_infiltration(keys, seed=7, leaky_share=0.2)
    assert sum(v >= LEAKY_FROM for v in factors.values()) == 200
    assert all(0.1 <= v <= 1.0 for v in factors.values())
    assert min(factors.values()) < 0.15 and max(factors.values()) > 0.95
    assert factors == draw_infiltration(reversed(keys), seed=7, leaky_share=0.2)
    assert draw_infiltration(keys, seed=8) != factors
    assert draw_infiltration(keys, 7, 0.5, {"b3": 0.1})["b3"] == 0.1
    with pytest.raises(ValueError, match=r"within 0\.1\.\.1\.0"):
        draw_infiltration(keys, 7, 0.2, {"b3": 1.5})

    _, fleet, scenario = _shipped("haze-2015")
    haze = _haze(scenario)
    per_building = {b.zone: {haze.infiltration[d] for d in b.detector_ids} for b in fleet.buildings}
    assert all(len(v) == 1 for v in per_building.values())  # one factor per building
    leaky = sum(next(iter(v)) >= LEAKY_FROM for v in per_building.values())
    assert leaky == round(0.2 * len(fleet.buildings))


def test_haze_with_fire_burns_a_leaky_building_at_the_morning_peak() -> None:
    _, fleet, scenario = _shipped("haze-with-fire")
    haze = _haze(scenario)
    (fire,) = scenario.fires
    burning = {d for d, _ in fire.distances_m}
    assert len(fleet.of_kind("fire")) == 160 and len(burning) >= 3
    assert {haze.infiltration[d] for d in burning} == {0.9}
    assert fire.district in haze.districts and "Cempaga" not in haze.districts
    assert 6.0 <= _clock_hours(scenario, fire.t0) <= 9.0
    assert haze.visibility_m(fire.district, fire.t0) < 100.0
    assert set(scenario.expected_districts) == haze.districts
    assert scenario.expected == {d: frozenset({"fire.confirmed"}) for d in burning}
    others = [d for d in fleet.devices if d.id not in burning]
    assert all(scenario.forbids(d.id, "fire.pre_alarm") for d in others)
    assert not any(scenario.forbids(d, "fire.confirmed") for d in burning)

    # The burning building already reads past the pre-alarm from the haze; the fire reaches
    # the alarm at its nearest detector no later than in clear air.
    def first_alarm(s: Scenario) -> float:
        source = ReadingSource(fleet, s, 7, EPOCH0)
        i = _index(fleet)[fire.nearest_id]
        for t in range(int(fire.t0) - 60, int(fire.t0) + 300, 5):
            smoke = source.payload(i, float(t), 0)["smoke_obs_pct_m"]
            if t < fire.t0:
                assert (smoke >= 3.0) == (s.haze is not None)
            elif smoke >= SMOKE_ALARM_PCT_M:
                return float(t)
        return math.inf

    clear = scenario.clear_air()
    assert clear.haze is None and clear.fires == scenario.fires and not clear.expected_districts
    assert first_alarm(scenario) <= first_alarm(clear) <= fire.t0 + 60.0


# --- drift --------------------------------------------------------------------------------


def test_dusty_detector_drifts_linearly_to_below_the_pre_alarm() -> None:
    spec, fleet, scenario = _shipped("dusty-detector")
    assert spec.run.until == 14 * 86400
    (drift,) = scenario.drifts
    (dusty,) = drift.device_ids
    assert scenario.expected == {dusty: frozenset({"device.fault"})}
    assert all(scenario.forbids(d.id, "fire.alarm") for d in fleet.devices)
    # 0.3 %/m a day from t=12h, on event time (compression 1).
    assert scenario.drift_pct_m(dusty, 12 * 3600.0) == 0.0
    days = [scenario.drift_pct_m(dusty, 12 * 3600.0 + k * 86400.0) for k in range(14)]
    assert days == pytest.approx([0.3 * k for k in range(14)])
    assert scenario.drift_pct_m(dusty, spec.run.until) == pytest.approx(0.3 * 13.5)
    # In the readings: a straight line up (slope within 5 %), never to the pre-alarm.
    times, smoke, others = [], [], []
    every = spec.run.interval_s * spec.run.speed  # 10 minutes of event time
    assert every == 600.0
    for t, device, payload in iter_readings(fleet, scenario, 7, EPOCH0, spec.run.until, every):
        if device.id == dusty:
            times.append(t)
            smoke.append(payload["smoke_obs_pct_m"])
        else:
            others.append(payload["smoke_obs_pct_m"])
    late = [(t, s) for t, s in zip(times, smoke, strict=True) if t > 86400]
    slope, _ = statistics.linear_regression([t for t, _ in late], [s for _, s in late])
    assert slope * 86400 == pytest.approx(0.3, rel=0.05)
    # About 0.3 %/m a day for two weeks: past the pre-alarm as a raw reading, which only the
    # learnt base keeps from alarming.
    assert PRE_ALARM_PCT_M < 4.0 < smoke[-1] and max(smoke) < 5.0
    assert max(others) <= 0.5
    # Compressed, the same drift runs that many times faster in event time.
    fast = replace(drift, compression=7.0)
    assert fast.pct_m(drift.t0 + 86400.0) == pytest.approx(7 * drift.pct_m(drift.t0 + 86400.0))


# --- determinism, files, wiring -------------------------------------------------------------


def test_same_seed_same_readings() -> None:
    spec = load_scenario_spec("haze-2015")

    def run(seed: int) -> list[tuple[float, str, dict[str, Any]]]:
        fleet = generate_fleet(200, 0.8, seed, air_stations=5)
        scenario = resolve_scenario(spec, fleet, seed)
        return [(t, d.id, p) for t, d, p in iter_readings(fleet, scenario, seed, EPOCH0, 300.0)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert len(first) == 205 * 30
    assert [t for t, _, _ in first] == sorted(t for t, _, _ in first)
    assert {p["ts"] for _, _, p in first} <= {round((EPOCH0 + t) * 1000) for t, _, _ in first}


@pytest.mark.parametrize("name", ["haze-2015", "haze-with-fire", "dusty-detector"])
def test_haze_scenario_files_say_what_they_test(name: str) -> None:
    spec, fleet, scenario = _shipped(name)
    assert spec.description and spec.run.until is not None
    assert not scenario.is_quiet and scenario.plan() and scenario.timeline(fleet)
    config = SimConfig.for_scenario(name, api_url=None)
    assert config.air_stations == spec.fleet.air_stations
    # Model seconds between readings: haze every 10 s in real time (the engine's haze timer
    # runs on the wall clock); dust every 10 minutes, event time preserved at x600.
    assert (config.interval_s * config.speed, config.event_time) in (
        (10.0, "wall"),
        (600.0, "model"),
    )
    if name == "haze-2015":
        haze = _haze(scenario)
        assert len(fleet.of_kind("fire")) >= 300 and len(haze.districts) == 5
        assert haze.episodes[0].compression == 168
        assert set(scenario.expected_districts) == haze.districts
        assert all(
            e.alerts == {"haze.regional"} and e.category == "berbahaya" and e.cleared
            for e in scenario.expected_districts.values()
        )
        assert not scenario.expected
        assert all(scenario.forbids(d.id, "fire.pre_alarm") for d in fleet.devices)
        assert not scenario.forbids(fleet.devices[0].id, "haze.regional")


def test_shipped_scenario_events_come_before_the_end_and_old_ones_have_no_haze() -> None:
    for name in ("demo", "quiet", "faults", "bins-baamang", "stuck-sensor"):
        _, fleet, scenario = _shipped(name)
        assert scenario.haze is None and not scenario.drifts and not scenario.expected_districts
        assert not fleet.of_kind("air")
        assert counted_kinds(fleet) == ("fire", "bin")


BAD = [
    ('name = "x"\n[[expect]]\nforbid = ["smoke.*"]\n', 2, "matches no alert kind"),
    ('name = "x"\n[[expect]]\nlabel = "a"\ncategory = "berbahaya"\n', None, "name districts"),
    ('name = "x"\n[[expect]]\ndistricts = ["*"]\ncategory = "awful"\n', 4, "category"),
    ('name = "x"\n[[expect]]\ndistricts = ["*"]\nforbid = ["fire.*"]\n', None, "per device"),
    ('name = "x"\n[[event]]\nat = 0\ndo = "haze"\npeak_visibility_m = 2\n', 5, "peak_vis"),
    ('name = "x"\n[[event]]\nat = 0\ndo = "drift"\nrate_pct_m_per_day = -1\n', 5, "rate_pct"),
    ('name = "x"\n[fleet]\ninfiltration = { a = 3.0 }\n', 3, "infiltration"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_bad_haze_files_name_the_line_and_field(text: str, line: int | None, words: str) -> None:
    with pytest.raises(ScenarioFileError) as info:
        parse_scenario(text, "bad.toml")
    assert words in str(info.value)
    if line is not None:
        assert info.value.line == line, str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[event]]\nat = 0\ndo = "haze"\ndistricts = ["Atlantis"]\n', "no district 'Atlantis'"),
        ('[[expect]]\ndistricts = ["*"]\nalerts = ["haze.regional"]\n', "needs a haze"),
        ('[fleet]\ninfiltration = { nowhere = 0.5 }\n[[event]]\nat = 0\ndo = "haze"\n', "nowhere"),
    ],
)
def test_haze_files_naming_missing_things_fail_clearly(text: str, words: str) -> None:
    fleet = generate_fleet(40, seed=7)
    with pytest.raises(ScenarioResolveError, match=words):
        resolve_scenario(parse_scenario('name = "x"\n' + text), fleet, 7)


def test_rain_in_one_district_and_a_haze_named_by_district() -> None:
    fleet = generate_fleet(100, seed=7, air_stations=5)
    text = """
name = "x"
[[event]]
at = 0
do = "haze"
districts = ["baamang", "Seranau"]
build = 0
shift = 0
label = "h"
[[event]]
at = "10m"
do = "rain"
districts = ["Seranau"]
over = "10m"
"""
    scenario = resolve_scenario(parse_scenario(text), fleet, 7)
    haze = _haze(scenario)
    assert haze.districts == {"Baamang", "Seranau"}
    assert haze.extinction("Cempaga", 100.0) == 0.0
    assert haze.extinction("Seranau", 1300.0) == 0.0 < haze.extinction("Baamang", 1300.0)
    assert set(scenario.labels["h"]) == {
        d.id for d in fleet.devices if d.kind != "bin" and d.district in haze.districts
    }
    assert "rain (Seranau)" in "\n".join(scenario.plan())


def test_air_stations_register_as_air_and_load_from_fleet_files(tmp_path: Any) -> None:
    fleet = generate_fleet(20, seed=7, air_stations=2)
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        DeviceCreate(**body)
        bodies.append(body)
        return httpx.Response(201, json={})

    register_fleet(fleet.registrations(), "http://api.test", transport=httpx.MockTransport(handler))
    air = [b for b in bodies if b["kind"] == "air"]
    assert [b["id"] for b in sorted(air, key=lambda b: b["id"])] == ["sim-air-0001", "sim-air-0002"]
    assert all("zone" not in b and "depth_mm" not in b for b in air)

    path = tmp_path / "fleet.csv"
    path.write_text("id,kind,lat,lon,district\nst1,air,-2.5,112.95,Baamang\n")
    loaded = load_fleet_file(path)
    assert loaded.by_id["st1"].kind == "air" and loaded.by_id["st1"].air is not None


class _FakeLink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, Any]] = []

    def publish(self, topic: str, payload: bytes, kind: Any) -> None:
        self.sent.append((topic, payload, kind))


@pytest.mark.parametrize("envelope", ["direct", "gateway"])
def test_the_loop_publishes_air_readings_and_counts_them(envelope: str) -> None:
    config = SimConfig(
        api_url=None,
        devices=20,
        air_stations=3,
        gateways=2,
        scenario="haze-2015",
        envelope=envelope,  # type: ignore[arg-type]
    )
    fleet = build_fleet(config)
    scenario = resolve_scenario(load_scenario_spec("haze-2015"), fleet, 7)
    link = _FakeLink()
    loop = _Loop(
        config,
        fleet,
        scenario,
        Schedule(len(fleet.devices), 10.0),
        link,  # type: ignore[arg-type]
        FaultInjector(scenario),
        threading.Event(),
        0.0,
    )
    loop.send(list(range(len(fleet.devices))), 1500.0)
    if envelope == "direct":
        kinds = Counter(k for _, _, k in link.sent)
        assert kinds == {0: 12, 1: 8, 2: 3}
        air = [orjson.loads(p) for t, p, _ in link.sent if "-air-" in t]
        assert all(set(p) == AIR_FIELDS and p["pm25_ugm3"] > 100 for p in air)
        fire = [orjson.loads(p) for t, p, _ in link.sent if "-fire-" in t]
        assert all(set(p) == FIRE_FIELDS for p in fire)
    else:
        totals = [sum(k[i] for _, _, k in link.sent) for i in range(3)]
        assert totals == [12, 8, 3]
    counting = _MqttLink(config, counted_kinds(fleet))
    assert counting.kinds == ("fire", "bin", "air") and counting.acked == [0, 0, 0]
