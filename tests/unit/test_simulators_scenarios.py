"""Simulator scenarios, faults, envelopes, fleet files and replay (no broker, no sleeps)."""

from __future__ import annotations

import base64
import json
import math
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from devices.schemas import DeviceCreate
from simulators import SimConfig, build_scenario, generate_fleet
from simulators.envelopes import (
    MAX_GATEWAY_BATCH,
    chirpstack_uplink,
    dev_eui,
    gateway_messages,
    tts_uplink,
)
from simulators.faults import FaultInjector
from simulators.fleet_file import FleetFileError, load_fleet_file
from simulators.models import (
    FIRE_GROWTH_KW_S2,
    HEAT_ALARM_C,
    SMOKE_ALARM_PCT_M,
    bin_fire_rise_c,
    fire_temp_rise_c,
    smoke_obscuration_pct_m,
)
from simulators.publisher import Schedule, _Loop, build_fleet
from simulators.readings import ReadingSource
from simulators.replay import Trace, TraceError, load_trace, replay, replay_plan
from simulators.scenario import Scenario, resolve_scenario
from simulators.scenario_file import (
    ScenarioFileError,
    load_scenario_spec,
    parse_duration,
    parse_scenario,
    shipped_scenarios,
)
from tests.conftest import reference_data

EPOCH0 = 1767200400.0  # 2026-01-01 00:00 WIB


# --- physics -----------------------------------------------------------------------------


def _first_alarm_s(alpha: float, radius_m: float = 1.0) -> float:
    for t in range(0, 3600):
        rise = fire_temp_rise_c(float(t), radius_m, alpha)
        if rise + 30 >= HEAT_ALARM_C or smoke_obscuration_pct_m(rise) >= SMOKE_ALARM_PCT_M:
            return float(t)
    return math.inf


def test_faster_growth_classes_alarm_sooner() -> None:
    times = {name: _first_alarm_s(alpha) for name, alpha in FIRE_GROWTH_KW_S2.items()}
    assert times["ultrafast"] < times["fast"] < times["medium"] < times["slow"] < 600
    # The sensor lag: nothing before the ceiling jet reaches the detector.
    assert fire_temp_rise_c(14.0, 0.0, FIRE_GROWTH_KW_S2["ultrafast"]) == 0.0
    # Farther detectors see less heat, later.
    assert fire_temp_rise_c(200.0, 2.0) > fire_temp_rise_c(200.0, 10.0) > 0.0


def test_bin_fire_heats_the_sensor_past_the_bin_threshold_within_a_minute() -> None:
    assert bin_fire_rise_c(10.0) == 0.0
    assert bin_fire_rise_c(60.0) + 36.0 >= 60.0
    assert bin_fire_rise_c(3600.0) <= 600.0


def _payloads(scenario: Scenario, fleet: Any, device_id: str, times: list[float]) -> list[Any]:
    source = ReadingSource(fleet, scenario, seed=7, epoch0=EPOCH0)
    index = [d.id for d in fleet.devices].index(device_id)
    return [source.payload(index, t, 0) for t in times]


def test_bins_scenario_effects_on_readings() -> None:
    fleet = generate_fleet(60, 0.3, seed=7)
    scenario = build_scenario("bins-baamang", fleet, seed=7)
    times = [float(t) for t in range(0, 241, 10)]
    (tipped,) = scenario.labels["knocked"]
    tilts = [p["tilt_deg"] for p in _payloads(scenario, fleet, tipped, times)]
    assert max(tilts[:3]) < 30 and min(tilts[3:15]) >= 80 and max(tilts[15:]) < 30
    (burning,) = scenario.labels["bin-fire"]
    temps = [p["temp_c"] for p in _payloads(scenario, fleet, burning, times)]
    assert max(temps[:4]) < 40 and temps[-1] >= 60
    (flat,) = scenario.labels["flat"]
    battery = [p["battery_pct"] for p in _payloads(scenario, fleet, flat, times)]
    assert battery[-1] == 8.0 and battery == sorted(battery, reverse=True)
    for bin_id in scenario.labels["baamang"]:
        assert fleet.by_id[bin_id].district == "Baamang"
        last = _payloads(scenario, fleet, bin_id, times)[-1]
        depth = fleet.by_id[bin_id].depth_mm
        assert depth is not None and 100 * (1 - last["distance_mm"] / depth) >= 93


# --- scenario files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", shipped_scenarios())
def test_shipped_scenarios_parse_resolve_and_expect_something_coherent(name: str) -> None:
    spec = load_scenario_spec(name)
    assert spec.name == name and spec.run.until is not None
    fleet = generate_fleet(
        spec.fleet.devices,
        spec.fleet.fire_share,
        7,
        "sim",
        spec.fleet.gateways,
        spec.fleet.air_stations,
    )
    scenario = resolve_scenario(spec, fleet, 7)
    assert resolve_scenario(spec, fleet, 7).labels == scenario.labels  # deterministic
    assert set(scenario.expected) <= set(fleet.by_id)
    for event in spec.event:
        assert event.at <= spec.run.until


def test_shipped_scenarios_include_the_ones_tests_and_demo_use() -> None:
    assert {
        "demo",
        "quiet",
        "faults",
        "bins-baamang",
        "stuck-sensor",
        "haze-2015",
        "haze-with-fire",
        "dusty-detector",
    } <= set(shipped_scenarios())


def test_scenario_names_resolve_with_the_fleet_prefix() -> None:
    fleet = generate_fleet(30, 0.5, seed=7, id_prefix="lab", gateways=3)
    text = """
name = "x"
[[event]]
at = "2m"
do = "gateway_offline"
gateway = "gw-3"
for = "5m"
label = "gw"
[[event]]
at = "30s"
do = "fire"
building = "bldg-002"
growth = "fast"
"""
    scenario = resolve_scenario(parse_scenario(text), fleet, 7)
    (window,) = scenario.windows
    assert (window.t0, window.t1) == (120.0, 420.0)
    assert set(window.device_ids) == {d.id for d in fleet.devices if d.gateway_id == "lab-gw-3"}
    assert scenario.fires[0].zone == "lab-bldg-002"
    assert scenario.fires[0].alpha_kw_s2 == FIRE_GROWTH_KW_S2["fast"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0), ("1.5h", 5400.0), (45, 45.0)],
)
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


BAD_FILES = [
    # (text, line, words the message must contain)
    (
        'name = "x"\n[[event]]\nat = "30s"\ndo = "fire"\nbuilding = "auto"\ngrowth = "blazing"\n',
        6,
        ["event 1 (fire)", "growth", "slow"],
    ),
    ('name = "x"\n[[event]]\nat = "soon"\ndo = "silent"\n', 3, ["event 1 (silent)", "at", "30s"]),
    ('name = "x"\n[[event]]\nat = "1m"\ndo = "explode"\n', 2, ["event 1", "do"]),
    ('name = "x"\n[[event]]\nat = "1m"\ndo = "silent"\ncolour = "red"\n', 5, ["colour"]),
    ('name = "x"\n[fleet]\ndevices = 0\n', 3, ["fleet: devices", "greater than or equal to 1"]),
    ('name = "x"\n[[expect]]\nlabel = "nope"\nalerts = ["bin.full"]\n', None, ["nope"]),
    ('name = "x"\n[[expect]]\ndevices = ["a"]\nalerts = ["bin.overflow"]\n', 4, ["alerts"]),
    ('name = "x"\n[[event]\nat = 1\n', 2, ["not valid TOML"]),
    ('[[event]]\nat = "1m"\ndo = "fire"\ndevices = ["a", "b"]\n', None, ["name"]),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD_FILES)
def test_bad_scenario_files_name_the_line_and_field(
    text: str, line: int | None, words: list[str]
) -> None:
    with pytest.raises(ScenarioFileError) as info:
        parse_scenario(text, "bad.toml")
    message = str(info.value)
    if line is not None:
        assert info.value.line == line, message
        assert message.startswith(f"bad.toml:{line}: "), message
    for word in words:
        assert word in message, message


def test_scenario_naming_missing_things_is_a_clear_error() -> None:
    fleet = generate_fleet(20, seed=7)
    gateway = parse_scenario(
        'name = "x"\n[[event]]\nat = 0\ndo = "gateway_offline"\ngateway = "gw-9"\n'
    )
    with pytest.raises(ValueError, match=r"no gateway 'gw-9'.*set \[fleet\] gateways"):
        resolve_scenario(gateway, fleet)
    device = parse_scenario('name = "x"\n[[event]]\nat = 0\ndo = "silent"\ndevices = ["ghost"]\n')
    with pytest.raises(ValueError, match="no device 'ghost'"):
        resolve_scenario(device, fleet)


def test_config_for_scenario_takes_the_files_defaults() -> None:
    config = SimConfig.for_scenario("faults", api_url=None)
    assert (config.devices, config.gateways, config.interval_s) == (30, 3, 10.0)
    assert config.api_url is None  # None keeps its meaning: do not register
    assert SimConfig.for_scenario("quiet", devices=None).devices == 300
    stuck = SimConfig.for_scenario("stuck-sensor", api_url=None)
    assert stuck.event_time == "model" and stuck.duration_s == pytest.approx(7 * 3600 / 900)
    assert SimConfig.for_scenario("demo", devices=40).devices == 40
    with pytest.raises(ValueError, match="unknown scenario"):
        SimConfig(scenario="flood")
    with pytest.raises(ValueError, match="needs duration_s"):
        SimConfig(event_time="model")


# --- faults ------------------------------------------------------------------------------


def _fault_scenario(fault: str, **extra: Any) -> tuple[Scenario, str]:
    fleet = generate_fleet(10, seed=7)
    options = "".join(f"{k} = {json.dumps(v)}\n" for k, v in extra.items())
    text = (
        f'name = "f"\n[[event]]\nat = "10s"\nfor = "100s"\ndo = "fault"\nfault = "{fault}"\n'
        f'devices = ["fire-0001"]\n{options}'
    )
    return resolve_scenario(parse_scenario(text), fleet), "sim-fire-0001"


def _dict(item: Any) -> dict[str, Any]:
    assert isinstance(item, dict)
    return item


def _reading(seq: int) -> dict[str, Any]:
    return {"ts": 1_000_000 + seq * 1000, "seq": seq, "temp_c": 30.0 + seq, "smoke_obs_pct_m": 0.1}


def test_faults_apply_only_inside_their_window() -> None:
    scenario, dev = _fault_scenario("duplicate")
    faults = FaultInjector(scenario)
    assert faults.apply(dev, _reading(0), 5.0) == [_reading(0)]
    assert faults.apply(dev, _reading(1), 10.0) == [_reading(1), _reading(1)]
    assert faults.apply(dev, _reading(2), 110.0) == [_reading(2)]
    assert faults.apply("sim-fire-0002", _reading(3), 50.0) == [_reading(3)]
    assert faults.counts == {"duplicate": 1}


def test_out_of_order_sends_the_held_reading_after_the_next() -> None:
    scenario, dev = _fault_scenario("out_of_order")
    faults = FaultInjector(scenario)
    sent = [faults.apply(dev, _reading(i), 20.0 + i) for i in range(4)]
    assert sent == [[], [_reading(1), _reading(0)], [], [_reading(3), _reading(2)]]
    # A reading held when the window ends still goes out.
    faults.apply(dev, _reading(4), 99.0)
    assert faults.apply(dev, _reading(5), 200.0) == [_reading(5), _reading(4)]


def test_clock_skew_stuck_burst_and_silence() -> None:
    scenario, dev = _fault_scenario("clock_skew", skew_s=-3600)
    skewed = _dict(FaultInjector(scenario).apply(dev, _reading(0), 20.0)[0])
    assert skewed["ts"] == 1_000_000 - 3_600_000
    scenario, dev = _fault_scenario("stuck")
    faults = FaultInjector(scenario)
    stuck = [_dict(faults.apply(dev, _reading(i), 20.0 + i)[0])["temp_c"] for i in range(5)]
    assert stuck == [30.0] * 5
    scenario, dev = _fault_scenario("burst", size=4)
    burst = FaultInjector(scenario).apply(dev, _reading(0), 20.0)
    assert [b["ts"] for b in burst if isinstance(b, dict)] == [1_000_000 + 10 * k for k in range(4)]
    fleet = generate_fleet(10, seed=7)
    silent = resolve_scenario(
        parse_scenario(
            'name = "s"\n[[event]]\nat = 0\nfor = 10\ndo = "silent"\ndevices = ["bin-0001"]\n'
        ),
        fleet,
    )
    faults = FaultInjector(silent)
    assert faults.apply("sim-bin-0001", _reading(0), 5.0) == []
    assert faults.apply("sim-bin-0001", _reading(1), 10.0) == [_reading(1)]


def test_malformed_cycles_through_every_rejection_every_other_reading() -> None:
    scenario, dev = _fault_scenario("malformed")
    faults = FaultInjector(scenario)
    out = [faults.apply(dev, _reading(i), 20.0 + i)[0] for i in range(8)]
    good, bad = out[1::2], out[0::2]
    assert good == [_reading(i) for i in range(1, 8, 2)]
    assert isinstance(bad[0], bytes)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(bad[0])
    assert isinstance(bad[1], dict) and bad[1]["temp_c"] == "panas"
    assert isinstance(bad[2], dict) and bad[2]["smoke_obs_pct_m"] == 250.0
    assert isinstance(bad[3], dict) and set(bad[3]) == {"ts", "seq"}


# --- envelopes ---------------------------------------------------------------------------


def _device() -> Any:
    return generate_fleet(10, seed=7, gateways=2).devices[0]


def test_tts_uplink_has_the_things_stack_shape() -> None:
    device = _device()
    reading = {"ts": 1_767_250_800_123, "seq": 3, "temp_c": 29.5, "rssi_dbm": -97}
    topic, data = tts_uplink(device, reading, 42, 1_767_250_800_500)
    assert topic == f"v3/sigap-sim@sigap/devices/{device.id}/up"
    message = orjson.loads(data)
    ids = message["end_device_ids"]
    assert ids["device_id"] == device.id and ids["application_ids"]["application_id"] == "sigap-sim"
    assert len(ids["dev_eui"]) == 16 and ids["dev_eui"] == dev_eui(device.id).upper()
    up = message["uplink_message"]
    assert up["f_cnt"] == 42 and up["decoded_payload"] == reading
    assert orjson.loads(base64.b64decode(up["frm_payload"])) == reading
    (rx,) = up["rx_metadata"]
    assert rx["gateway_ids"]["gateway_id"] == device.gateway_id and rx["rssi"] == -97
    assert isinstance(rx["snr"], float)
    assert message["received_at"] == up["received_at"] == "2026-01-01T07:00:00.500Z"
    # The same top-level and uplink fields as The Things Stack's own documented example.
    example = orjson.loads(
        reference_data("lorawan", "tts-v3-uplink-docs-example.json").read_bytes()
    )
    assert set(example) - {"correlation_ids"} <= set(message)
    assert set(example["uplink_message"]) - {"session_key_id"} <= set(up)
    assert set(example["end_device_ids"]) - {"join_eui"} <= set(ids)


def test_chirpstack_uplink_has_the_v4_event_shape() -> None:
    device = _device()
    reading = {"ts": 1_767_250_800_123, "seq": 3, "distance_mm": 612, "rssi_dbm": -101}
    topic, data = chirpstack_uplink(device, reading, 7, 1_767_250_800_500)
    message = orjson.loads(data)
    info = message["deviceInfo"]
    assert topic == f"application/{info['applicationId']}/device/{info['devEui']}/event/up"
    assert info["devEui"] == dev_eui(device.id) and info["deviceName"] == device.id
    for key in (
        "tenantId",
        "tenantName",
        "applicationName",
        "deviceProfileId",
        "deviceProfileName",
        "tags",
    ):
        assert key in info
    assert message["fCnt"] == 7 and message["fPort"] == 10 and message["confirmed"] is False
    assert message["object"] == reading
    assert orjson.loads(base64.b64decode(message["data"])) == reading
    (rx,) = message["rxInfo"]
    assert {"gatewayId", "uplinkId", "rssi", "snr"} <= set(rx) and rx["rssi"] == -101
    assert message["txInfo"]["frequency"] > 0 and "lora" in message["txInfo"]["modulation"]
    assert {"deduplicationId", "time", "devAddr", "adr", "dr"} <= set(message)
    # Same reading, same message: deterministic ids.
    assert chirpstack_uplink(device, reading, 7, 1_767_250_800_500)[1] == data


def test_gateway_batches_are_split_at_the_limit() -> None:
    items = [{"device_id": f"d{i}", "temp_c": 30.0} for i in range(MAX_GATEWAY_BATCH + 5)]
    batches = gateway_messages("gw-1", items)
    assert [n for _, _, n in batches] == [MAX_GATEWAY_BATCH, 5]
    assert all(topic == "sigap/gateways/gw-1/up" for topic, _, _ in batches)
    assert orjson.loads(batches[1][1])["readings"] == items[MAX_GATEWAY_BATCH:]


class _FakeLink:
    """Collects what the loop publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, Any]] = []

    def publish(self, topic: str, payload: bytes, kind: Any) -> None:
        self.sent.append((topic, payload, kind))


@pytest.mark.parametrize("envelope", ["direct", "gateway", "tts", "chirpstack"])
def test_loop_publishes_each_envelope(envelope: str) -> None:
    config = SimConfig(api_url=None, devices=20, gateways=2, scenario="quiet", envelope=envelope)  # type: ignore[arg-type]
    fleet = build_fleet(config)
    scenario = build_scenario("quiet", fleet)
    link = _FakeLink()
    loop = _Loop(
        config,
        fleet,
        scenario,
        Schedule(20, 10.0),
        link,  # type: ignore[arg-type]
        FaultInjector(scenario),
        threading.Event(),
        0.0,
    )
    loop.send(list(range(20)), 5.0)
    topics = [t for t, _, _ in link.sent]
    if envelope == "gateway":
        assert sorted(topics) == ["sigap/gateways/sim-gw-1/up", "sigap/gateways/sim-gw-2/up"]
        readings = [r for _, data, _ in link.sent for r in orjson.loads(data)["readings"]]
        assert sorted(r["device_id"] for r in readings) == sorted(d.id for d in fleet.devices)
        assert sum(sum(k) for _, _, k in link.sent) == 20
        for r in readings:
            assert fleet.by_id[r["device_id"]].gateway_id in {"sim-gw-1", "sim-gw-2"}
    else:
        assert len(topics) == 20
        prefix = {"direct": "sigap/devices/", "tts": "v3/", "chirpstack": "application/"}
        assert all(t.startswith(prefix[envelope]) for t in topics)


# --- fleet files -------------------------------------------------------------------------


def test_fleet_file_csv_ignores_unknown_columns(tmp_path: Path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(
        "id,kind,name,lat,lon,district,zone,depth_mm,gateway_id,reporting_interval_s,installer\n"
        "f1,fire,Dapur,-2.5400,112.9500,Baamang,pasar,,gw-a,30,Budi\n"
        "f2,fire,Gudang,-2.54005,112.95008,Baamang,pasar,,gw-a,,Budi\n"
        "b1,bin,TPS,-2.5300,112.9400,Seranau,,1100,,,Sari\n"
    )
    fleet = load_fleet_file(path)
    assert [d.id for d in fleet.devices] == ["f1", "f2", "b1"]
    assert fleet.gateways == ("gw-a",)
    (building,) = fleet.buildings
    assert building.zone == "pasar" and set(building.detector_ids) == {"f1", "f2"}
    f1, f2 = fleet.by_id["f1"], fleet.by_id["f2"]
    assert 8 < math.dist((f1.x_m, f1.y_m), (f2.x_m, f2.y_m)) < 12
    assert f1.interval_s == 30.0 and f2.interval_s is None
    for device in fleet.devices:
        DeviceCreate(**device.registration())
    scenario = resolve_scenario(
        parse_scenario('name = "x"\n[[event]]\nat = 0\ndo = "fire"\ndevices = ["f1"]\n'), fleet
    )
    assert scenario.fires[0].nearest_id == "f1"


def test_fleet_file_json_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "fleet.json"
    good.write_text(
        json.dumps(
            {
                "devices": [
                    {
                        "id": "b1",
                        "kind": "bin",
                        "lat": -2.5,
                        "lon": 112.9,
                        "depth_mm": 900,
                        "extra": 1,
                    },
                ]
            }
        )
    )
    assert load_fleet_file(good).by_id["b1"].depth_mm == 900.0
    bad = tmp_path / "bad.csv"
    bad.write_text("id,kind,lat,lon,depth_mm\nb1,bin,-2.5,112.9,\n")
    with pytest.raises(FleetFileError, match=r"bad\.csv, row 2, field 'depth_mm'"):
        load_fleet_file(bad)
    bad.write_text("id,kind,lat,lon\nx1,lamp,-2.5,112.9\n")
    with pytest.raises(FleetFileError, match="field 'kind'"):
        load_fleet_file(bad)


def test_per_device_intervals_drive_the_schedule() -> None:
    schedule = Schedule(2, 10.0, seed=1, intervals=[1.0, 10.0])
    counts = [0, 0]
    for tenth in range(1, 301):
        for index in schedule.pop_due(tenth / 10, tenth / 10, limit=100):
            counts[index] += 1
    assert 29 <= counts[0] <= 31 and 3 <= counts[1] <= 4


# --- replay ------------------------------------------------------------------------------


def test_replay_plan_preserves_event_time_when_accelerated() -> None:
    trace = Trace((0.0, 1.0, 2.0, 10.0), tuple({"temp_c": 30.0 + i} for i in range(4)))
    items = list(replay_plan(trace, start=100.0, epoch_now=1_000_000.0, speed=10.0))
    assert [i.send_at for i in items] == pytest.approx([100.0, 100.1, 100.2, 101.0])
    assert [i.ts_ms - items[0].ts_ms for i in items] == [0, 1000, 2000, 10_000]
    # The last reading is stamped when it is sent: never ahead of the wall clock.
    assert items[-1].ts_ms == (1_000_000 + 1.0) * 1000
    assert [i.payload["seq"] for i in items] == [0, 1, 2, 3]


def test_replay_with_an_injected_clock() -> None:
    trace = Trace(
        tuple(float(t) for t in range(0, 60, 5)), tuple({"temp_c": 30.0} for _ in range(12))
    )
    now = [0.0]
    sent: list[tuple[float, dict[str, Any]]] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    count = replay(
        trace,
        lambda data: sent.append((now[0], orjson.loads(data))),
        speed=5.0,
        clock=lambda: now[0],
        wall=lambda: 2_000_000.0,
        sleep=sleep,
    )
    assert count == 12
    assert [t for t, _ in sent] == pytest.approx([k * 1.0 for k in range(12)])
    assert [p["ts"] for _, p in sent] == [sent[0][1]["ts"] + 5000 * k for k in range(12)]


def test_real_fire_trace_loads_and_downsamples() -> None:
    path = reference_data("fire-traces", "ul-fsri-2018", "01_Data_Overstuffed_Closed_Center_1.csv")
    column = "Quadrant A Temperature 25 mm Below Ceiling"
    trace = load_trace(path, {"temp_c": column})
    assert trace.times_s[0] < 0 < trace.times_s[-1]  # a baseline before ignition
    assert max(v["temp_c"] for v in trace.values) > HEAT_ALARM_C
    ten = trace.every(10.0)
    assert len(ten.times_s) == pytest.approx(len(trace.times_s) / 10, abs=2)
    with pytest.raises(TraceError, match="no column"):
        load_trace(path, {"temp_c": "Thermocouple 99"})
    with pytest.raises(TraceError, match="not reading quantities"):
        load_trace(path, {"heat": column})
