"""Rule engine under a smoke haze: many detectors across the city alarming at once.

Peat and forest fires in Central Kalimantan bring haze that can push smoke detectors over
their thresholds all over Sampit at the same time. Every alarm-level reading then runs
cross-device confirmation, whose cost depends on how many possible partners each detector
has. This bench builds the fleet of bench/rules/run.py, picks `--hazy` fire detectors, and
for `--minutes` minutes sends each of them one reading a minute in batches of `--batch`:
first with clear air (the baseline, in the same run), then with alarm-level and pre-alarm
smoke. It reports the time per batch of both, and their ratio.

Usage: .venv/bin/python -m bench.rules.haze [--devices 100000] [--hazy 3000] [--minutes 6]
       [--batch 5000]
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from bench.rules.run import build_fleet, log
from contract.readings import Q_INDEX, QUANTITIES
from ingest.batch import ReadingBatch
from rules.engine import RuleEngine

T0 = 1_795_000_000_000


def _minutes(
    engine: RuleEngine,
    hazy: np.ndarray,
    ids: list[str],
    args: argparse.Namespace,
    smoky: bool,
    start_ms: int,
    rng: np.random.Generator,
) -> tuple[list[float], int]:
    """Each detector's reading once a minute; the seconds each batch took, and the events."""
    took, events = [], 0
    for minute in range(args.minutes):
        order = rng.permutation(hazy)
        for lo in range(0, len(order), args.batch):
            device = order[lo : lo + args.batch].astype(np.int32)
            n = len(device)
            values = np.full((len(QUANTITIES), n), np.nan)
            values[Q_INDEX["temp_c"]] = 29.0 + 3.0 * rng.random(n)
            # Clear air about 0.3 %/m; haze between the pre-alarm (5) and past the alarm (10).
            smoke = rng.uniform(7.0, 14.0, n) if smoky else rng.uniform(0.1, 0.5, n)
            values[Q_INDEX["smoke_obs_pct_m"]] = smoke
            ts = start_ms + minute * 60_000 + np.sort(rng.integers(0, 60_000, n))
            batch = ReadingBatch(
                device=device,
                kind=np.ones(n, np.uint8),
                ts_ms=ts.astype(np.int64),
                seq=np.full(n, -1, np.int64),
                values=values,
                device_ids=ids,
            )
            began = time.perf_counter()
            events += len(engine.evaluate(batch, int(ts[-1])))
            took.append(time.perf_counter() - began)
    return took, events


def main() -> None:
    """Run the bench and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--hazy", type=int, default=3_000)
    parser.add_argument("--minutes", type=int, default=6)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    specs, is_fire = build_fleet(args.devices, rng)
    hazy = rng.choice(np.flatnonzero(is_fire), min(args.hazy, int(is_fire.sum())), replace=False)
    ids = [spec.id for spec in specs]
    engine = RuleEngine(specs)
    log(f"{len(hazy)} of {int(is_fire.sum())} fire detectors, {args.minutes} min each phase")
    clear, _ = _minutes(engine, hazy, ids, args, False, T0, rng)
    smoky, events = _minutes(engine, hazy, ids, args, True, T0 + args.minutes * 60_000, rng)
    clear_ms = statistics.median(clear) * 1000
    haze_ms = statistics.median(smoky) * 1000
    result = {
        "bench": "rules-haze",
        "devices": args.devices,
        "hazy_detectors": len(hazy),
        "minutes": args.minutes,
        "batch": args.batch,
        "clear_batch_ms_median": round(clear_ms, 2),
        "haze_batch_ms_median": round(haze_ms, 2),
        "haze_batch_ms_first": round(smoky[0] * 1000, 2),
        "haze_batch_ms_max": round(max(smoky) * 1000, 2),
        "haze_over_clear": round(haze_ms / clear_ms, 2),
        "haze_events": events,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
