"""Rule engine throughput: the vectorised RuleEngine against the per-reading ReferenceEngine.

Builds a fleet (60 % fire detectors in zones of 4, 40 % bins) and realistic readings with
numpy (tropical ambient 24..36 C with noise, a few fires growing as t-squared, bins
filling and being emptied, knocked-over bins, low batteries, a few implausible values,
devices that go silent, QoS 1 redeliveries), then times RuleEngine over every reading and
ReferenceEngine over a prefix, and checks that both give the same events on that prefix
and on every reading of a subset of the devices.

Usage: .venv/bin/python -m bench.rules.run [--devices 100000] [--readings 1000000]
       [--batch 5000] [--loop-readings 100000] [--haze on|off]

With --haze on (the default) devices lie in six districts and the haze timer
(check_haze, docs/rules.md "Haze") runs every 60 s of stream time, as `sigap up` runs it;
with --haze off it never runs (every region stays clear).
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.rules.reference import ReferenceEngine
from contract.readings import KIND_CODES, Q_INDEX, QUANTITIES
from ingest.batch import ReadingBatch
from rules.engine import RuleEngine
from rules.events import AlertEvent
from rules.haze import HazeConfig
from rules.params import KIND_DEFAULTS, DeviceSpec

T0 = 1_795_000_000_000  # stream start (ms)
SAMPIT = (-2.53, 112.95)
M_PER_DEG = 111_195.0
FIRE_INTERVAL_S = 60.0
BIN_INTERVAL_S = 120.0
CHECK_OFFLINE_EVERY_MS = 30_000  # the scheduler's offline sweep, in stream time
CHECK_HAZE_EVERY_MS = 60_000  # the haze timer (SIGAP_RULES_HAZE_CHECK_S), in stream time
DISTRICTS = ("Baamang", "Mentawa Baru Ketapang", "Seranau", "Ketapang", "Kota Besi", "Cempaga")

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def log(message: str) -> None:
    """Progress to stderr."""
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Workload:
    """A fleet and its readings in arrival order, cut into batches."""

    specs: list[DeviceSpec]
    device_ids: list[str]
    device: npt.NDArray[np.int32]
    kind: npt.NDArray[np.uint8]
    ts: I64
    arrival: I64
    values: F64

    def batches(
        self, rows: npt.NDArray[np.intp] | slice, size: int
    ) -> list[tuple[ReadingBatch, int]]:
        """(batch, now) pairs over the given rows (in arrival order), `size` rows each."""
        device, kind, ts = self.device[rows], self.kind[rows], self.ts[rows]
        arrival, values = self.arrival[rows], self.values[:, rows]
        out = []
        for lo in range(0, len(device), size):
            hi = min(lo + size, len(device))
            batch = ReadingBatch(
                device=device[lo:hi],
                kind=kind[lo:hi],
                ts_ms=ts[lo:hi],
                seq=np.full(hi - lo, -1, np.int64),
                values=np.ascontiguousarray(values[:, lo:hi]),
                device_ids=self.device_ids,
            )
            out.append((batch, int(arrival[hi - 1])))
        return out


def build_fleet(n: int, rng: np.random.Generator) -> tuple[list[DeviceSpec], npt.NDArray[np.bool_]]:
    """60 % fire detectors in zones of 4 (within ~10 m), 40 % bins, around Sampit."""
    is_fire = rng.random(n) < 0.6
    fire_rows = np.flatnonzero(is_fire)
    zone_of = np.full(n, -1, np.int64)
    zone_of[fire_rows] = np.arange(len(fire_rows)) // 4
    zones = int(zone_of.max()) + 1 if len(fire_rows) else 0
    spread = 6000 / M_PER_DEG  # buildings and bins within ~6 km of the centre
    zone_lat = SAMPIT[0] + rng.normal(0, spread, zones)
    zone_lon = SAMPIT[1] + rng.normal(0, spread, zones)
    lat = SAMPIT[0] + rng.normal(0, spread, n)
    lon = SAMPIT[1] + rng.normal(0, spread, n)
    lat[fire_rows] = zone_lat[zone_of[fire_rows]] + rng.normal(0, 6 / M_PER_DEG, len(fire_rows))
    lon[fire_rows] = zone_lon[zone_of[fire_rows]] + rng.normal(0, 6 / M_PER_DEG, len(fire_rows))
    depth = rng.choice([900.0, 1100.0, 1300.0], n)
    # Six districts, by longitude: the haze regions.
    edges = np.quantile(lon, np.linspace(0, 1, len(DISTRICTS) + 1)[1:-1])
    district = np.searchsorted(edges, lon)
    fire_params, bin_params = KIND_DEFAULTS["fire"], KIND_DEFAULTS["bin"]
    specs = []
    for i, (f, la, lo, z, d, k) in enumerate(
        zip(
            is_fire.tolist(),
            lat.tolist(),
            lon.tolist(),
            zone_of.tolist(),
            depth.tolist(),
            district.tolist(),
            strict=True,
        )
    ):
        place = DISTRICTS[k]
        if f:
            specs.append(
                DeviceSpec(
                    i,
                    f"fd-{i:07d}",
                    "fire",
                    fire_params,
                    f"b{z}",
                    la,
                    lo,
                    None,
                    FIRE_INTERVAL_S,
                    place,
                )
            )
        else:
            specs.append(
                DeviceSpec(
                    i, f"bn-{i:07d}", "bin", bin_params, None, la, lo, d, BIN_INTERVAL_S, place
                )
            )
    return specs, is_fire


def build_readings(
    specs: Sequence[DeviceSpec],
    is_fire: npt.NDArray[np.bool_],
    total: int,
    rng: np.random.Generator,
) -> Workload:
    """Readings of the whole fleet, in arrival order, about `total` of them."""
    n = len(specs)
    interval_s = np.where(is_fire, FIRE_INTERVAL_S, BIN_INTERVAL_S)
    per_second = float(np.sum(1 / interval_s))
    horizon_s = total / per_second * 1.02  # a little more, then cut at `total`
    phase_s = rng.random(n) * interval_s
    silent_from = np.full(n, np.inf)  # 0.5 % of the devices stop reporting
    gone = rng.random(n) < 0.005
    silent_from[gone] = rng.random(int(gone.sum())) * horizon_s
    counts = np.maximum(
        0, np.floor((np.minimum(horizon_s, silent_from) - phase_s) / interval_s) + 1
    )
    counts = counts.astype(np.int64)
    device = np.repeat(np.arange(n, dtype=np.int32), counts)
    k = np.arange(len(device)) - np.repeat(np.cumsum(counts) - counts, counts)
    t_s = phase_s[device] + k * interval_s[device] + rng.normal(0, 0.5, len(device))
    t_s = np.maximum(t_s, 0.0)
    ts = T0 + np.round(t_s * 1000).astype(np.int64)
    # Network and broker delay; 0.3 % of the readings are redelivered (QoS 1) a bit later.
    arrival = ts + rng.exponential(400, len(ts)).astype(np.int64)
    again = np.flatnonzero(rng.random(len(ts)) < 0.003)
    device = np.concatenate([device, device[again]])
    ts = np.concatenate([ts, ts[again]])
    arrival = np.concatenate([arrival, arrival[again] + rng.integers(1_000, 30_000, len(again))])
    order = np.argsort(arrival, kind="stable")[:total]
    device, ts, arrival = device[order], ts[order], arrival[order]
    t = (ts - T0) / 1000.0
    m = len(device)
    fire_row = is_fire[device]
    bin_row = ~fire_row
    values = np.full((len(QUANTITIES), m), np.nan)

    # Tropical ambient: 30 +- 6 C over the day (the stream starts at 10:00), per-device offset.
    hour0 = 10.0
    ambient = 30 + 6 * np.sin(2 * np.pi * ((hour0 + t / 3600) / 24 - 0.375))
    offset = rng.normal(0, 1.0, n)
    temp = ambient + offset[device] + rng.normal(0, 0.3, m)
    smoke = np.abs(rng.normal(0.3, 0.15, m))

    # Fires: 1 building in 500 burns, from a time in [-2 min, horizon/2); t-squared growth of
    # the ceiling temperature (about 30 C in 3 min near the seat), smoke rising with it.
    zone_ids = np.array([int(s.zone[1:]) if s.zone else -1 for s in specs], np.int64)
    zones = int(zone_ids.max()) + 1 if (zone_ids >= 0).any() else 0
    burning = rng.random(max(zones, 1)) < 1 / 500
    if zones and not burning.any():
        burning[0] = True
    start_s = rng.uniform(-120, horizon_s / 2, max(zones, 1))
    near_seat = rng.uniform(0.3, 1.0, n)
    zr = zone_ids[device]
    fire_on = fire_row & (zr >= 0)
    fire_on[fire_on] &= burning[zr[fire_on]]
    dt = np.where(fire_on, t - start_s[np.maximum(zr, 0)], 0.0)
    dt = np.maximum(dt, 0.0)
    temp += np.minimum(3.3 * near_seat[device] * (dt / 60) ** 2, 400.0)
    smoke += np.minimum(4.0 * near_seat[device] * dt / 60, 40.0)

    # Bins: fill from a random level at 0.5..8 %/h; 1 % are emptied once; noise on the
    # ultrasonic distance. 0.2 % are knocked over for a while; 0.05 % burn.
    depth = np.array([s.depth_mm or 1000.0 for s in specs])
    fill0 = rng.uniform(0, 88, n)
    rate = rng.uniform(0.5, 8.0, n)
    emptied_at = np.where(rng.random(n) < 0.01, rng.uniform(0, horizon_s, n), np.inf)
    after = t >= emptied_at[device]
    refill = rng.uniform(0, 5, n)[device] + rate[device] * (t - emptied_at[device]) / 3600
    fill = np.where(after, refill, fill0[device] + rate[device] * t / 3600)
    fill = np.clip(fill + rng.normal(0, 0.5, m), 0, 100)
    distance = depth[device] * (1 - fill / 100)
    fill_pct = 100 * (1 - distance / depth[device])  # what ingest computes
    knocked = rng.random(n) < 0.002
    knock_from = rng.uniform(0, horizon_s, n)
    tilted = knocked[device] & (t >= knock_from[device]) & (t < knock_from[device] + 600)
    tilt = np.where(tilted, rng.normal(75, 8, m), np.abs(rng.normal(0, 2, m)))
    bin_fire = (rng.random(n) < 0.0005)[device]
    temp = np.where(bin_row & bin_fire, temp + np.maximum(0, t - horizon_s / 3) / 10, temp)

    # Batteries: fire detectors report volts, bins percent; about 2 % are low.
    volts = np.where(rng.random(n) < 0.02, rng.uniform(3.0, 3.35, n), rng.uniform(3.5, 4.2, n))
    pct = np.where(rng.random(n) < 0.02, rng.uniform(5, 16, n), rng.uniform(25, 100, n))
    # One reading in 10,000 carries an implausible temperature (a broken thermistor).
    temp = np.where(rng.random(m) < 1e-4, -40.0, temp)

    values[Q_INDEX["temp_c"]] = np.round(temp, 2)
    values[Q_INDEX["rssi_dbm"]] = np.round(rng.normal(-85, 8, m))
    values[Q_INDEX["smoke_obs_pct_m"]] = np.where(fire_row, np.round(smoke, 2), np.nan)
    values[Q_INDEX["humidity_pct"]] = np.where(fire_row, np.round(rng.uniform(65, 95, m)), np.nan)
    values[Q_INDEX["battery_v"]] = np.where(fire_row, np.round(volts[device], 2), np.nan)
    values[Q_INDEX["fill_pct"]] = np.where(bin_row, fill_pct, np.nan)
    values[Q_INDEX["distance_mm"]] = np.where(bin_row, np.round(distance), np.nan)
    values[Q_INDEX["tilt_deg"]] = np.where(bin_row, np.round(tilt, 1), np.nan)
    values[Q_INDEX["battery_pct"]] = np.where(bin_row, np.round(pct[device]), np.nan)
    # Recompute fill from the rounded distance, as ingest would.
    values[Q_INDEX["fill_pct"]] = np.where(
        bin_row, 100 * (1 - values[Q_INDEX["distance_mm"]] / depth[device]), np.nan
    )

    kind = np.where(fire_row, KIND_CODES["fire"], KIND_CODES["bin"]).astype(np.uint8)
    ids = [s.id for s in specs]
    return Workload(list(specs), ids, device, kind, ts, arrival, values)


Comparable = list[tuple[tuple[str, str, str, str, int], frozenset[str]]]


def comparable(events: Sequence[AlertEvent]) -> Comparable:
    """Sorted keys, with the partner set of fire.confirmed events."""
    return sorted(
        (e.key(), frozenset(e.partners) if e.kind == "fire.confirmed" else frozenset())
        for e in events
    )


def drive(
    engine: Any, batches: Sequence[tuple[ReadingBatch, int]], progress: str = ""
) -> tuple[list[AlertEvent], float]:
    """Feed batches (plus an offline sweep every 30 s and a haze check every 60 s of stream
    time); events and seconds."""
    evaluate: Callable[[ReadingBatch, int], list[AlertEvent]] = engine.evaluate
    check_offline: Callable[[int], list[AlertEvent]] = engine.check_offline
    check_haze: Callable[[int], list[AlertEvent]] = engine.check_haze
    events: list[AlertEvent] = []
    next_sweep = T0 + CHECK_OFFLINE_EVERY_MS
    next_haze = T0 + CHECK_HAZE_EVERY_MS
    step = max(1, len(batches) // 10)
    start = time.perf_counter()
    for i, (batch, now) in enumerate(batches):
        if now >= next_sweep:
            events += check_offline(now)
            next_sweep = now - now % CHECK_OFFLINE_EVERY_MS + CHECK_OFFLINE_EVERY_MS
        if now >= next_haze:
            events += check_haze(now)
            next_haze = now - now % CHECK_HAZE_EVERY_MS + CHECK_HAZE_EVERY_MS
        events += evaluate(batch, now)
        if progress and i % step == step - 1:
            log(
                f"  {progress}: {i + 1}/{len(batches)} batches, {time.perf_counter() - start:.1f} s"
            )
    return events, time.perf_counter() - start


def compare(name: str, want: Sequence[AlertEvent], got: Sequence[AlertEvent]) -> dict[str, Any]:
    """Whether two engines' events agree, with a few differences if not."""
    a, b = comparable(want), comparable(got)
    same = a == b
    result: dict[str, Any] = {"events": len(a), "identical": same}
    if not same:
        ca, cb = Counter(a), Counter(b)
        result["only_reference"] = [str(x) for x in list((ca - cb).elements())[:5]]
        result["only_engine"] = [str(x) for x in list((cb - ca).elements())[:5]]
    log(f"  {name}: {len(a)} events, identical={same}")
    return result


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--loop-readings", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs of each engine (fresh each); best counts"
    )
    parser.add_argument(
        "--haze", choices=["on", "off"], default="on", help="run the haze timer (check_haze)"
    )
    args = parser.parse_args()
    haze = HazeConfig(enabled=args.haze == "on")
    rng = np.random.default_rng(args.seed)

    log(f"fleet: {args.devices} devices")
    t = time.perf_counter()
    specs, is_fire = build_fleet(args.devices, rng)
    work = build_readings(specs, is_fire, args.readings, rng)
    n = len(work.device)
    all_batches = work.batches(slice(None), args.batch)
    log(f"  {n} readings, {len(all_batches)} batches, generated in {time.perf_counter() - t:.1f} s")
    span_s = (int(work.ts.max()) - int(work.ts.min())) / 1000

    load = os.getloadavg()[0]
    rss_before = rss_mb()
    engine_runs: list[float] = []
    for run in range(args.repeat):
        log(f"RuleEngine over every reading (run {run + 1}/{args.repeat})")
        t = time.perf_counter()
        engine = RuleEngine(specs, haze_config=haze)
        setup_s = time.perf_counter() - t
        engine_events, seconds = drive(engine, all_batches, "RuleEngine")
        engine_runs.append(seconds)
        state_nbytes = getattr(engine, "state_nbytes", lambda: None)()
        log(f"  {n / seconds:,.0f} readings/s ({seconds:.2f} s), {len(engine_events)} events")
        del engine
    engine_s = min(engine_runs)
    rss_engine = peak_rss_mb()
    kinds = Counter(f"{e.kind}:{e.action.value}" for e in engine_events)

    loop_n = min(args.loop_readings, n)
    prefix = work.batches(slice(0, loop_n), args.batch)
    loop_runs: list[float] = []
    for run in range(args.repeat):
        log(f"ReferenceEngine over the first {loop_n} readings (run {run + 1}/{args.repeat})")
        reference = ReferenceEngine(specs, haze_config=haze)
        ref_events, seconds = drive(reference, prefix, "ReferenceEngine")
        loop_runs.append(seconds)
        log(f"  {loop_n / seconds:,.0f} readings/s ({seconds:.2f} s)")
        del reference
    ref_s = min(loop_runs)
    prefix_engine_events, _ = drive(RuleEngine(specs, haze_config=haze), prefix)
    prefix_check = compare("prefix", ref_events, prefix_engine_events)

    # Every reading of the first devices (about --loop-readings readings): several rounds per
    # device, fires growing and being confirmed, bins changing level.
    subset_devices = max(1, int(args.devices * loop_n / n))
    rows = np.flatnonzero(work.device < subset_devices)
    log(f"both engines over every reading of devices 0..{subset_devices - 1} ({len(rows)} rows)")
    subset = work.batches(rows, args.batch)
    want, _ = drive(ReferenceEngine(specs, haze_config=haze), subset)
    got, _ = drive(RuleEngine(specs, haze_config=haze), subset)
    subset_check = compare("subset", want, got)

    engine_rate = n / engine_s
    loop_rate = loop_n / ref_s
    result = {
        "bench": "rules",
        "devices": args.devices,
        "readings": n,
        "batch": args.batch,
        "haze": args.haze,
        "stream_span_s": span_s,
        "engine_setup_s": round(setup_s, 2),
        "load_average_1m_at_start": round(load, 2),
        "engine_s": round(engine_s, 3),
        "engine_runs_s": [round(x, 3) for x in engine_runs],
        "engine_readings_per_s": round(engine_rate),
        "engine_events": len(engine_events),
        "engine_event_kinds": dict(sorted(kinds.items())),
        "loop_readings": loop_n,
        "loop_s": round(ref_s, 3),
        "loop_runs_s": [round(x, 3) for x in loop_runs],
        "loop_readings_per_s": round(loop_rate),
        "speedup": round(engine_rate / loop_rate, 1),
        "state_bytes_per_device": (
            None if state_nbytes is None else round(state_nbytes / args.devices, 1)
        ),
        "rss_mb_before_engine": round(rss_before),
        "peak_rss_mb_after_engine": round(rss_engine),
        "peak_rss_mb": round(peak_rss_mb()),
        "prefix_check": prefix_check,
        "subset_check": subset_check,
        "targets": {
            "readings_per_s_ge_3M": engine_rate >= 3e6,
            "speedup_ge_10x": engine_rate / loop_rate >= 10,
            "state_le_256_bytes_per_device": (
                None if state_nbytes is None else state_nbytes / args.devices <= 256
            ),
        },
    }
    if not math.isfinite(engine_rate):
        raise SystemExit("no readings")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
