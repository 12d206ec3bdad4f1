"""InfluxDB's own write ceiling: readings/s that influxd stores with nothing else in the way.

Starts influxd (the repo's influxdb.conf, free port, temp dir), encodes the gateway phase's
readings of bench/ingest_ceiling.py (the same 2,000 devices behind 40 gateways, the same
quantities) with Sigap's own `LineEncoder`, and POSTs the bodies to /write from several
writer processes as fast as influxd answers. Each case (body size x writers) writes fresh
event times, so every reading is a new point. It reports readings/s and influxd's CPU per
reading.

This is the upper bound of any end-to-end ingest rate on the same machine: Sigap's gateway
target in issue #9 (200k readings/s) can hold only where this is well above it.
Usage: .venv/bin/python -m bench.influx_ceiling            # ~1 min
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

from bench.ingest_ceiling import _cpu_s, _is_bin, make_fleet
from bench.soak import proc_stats
from contract.readings import KIND_CODES, Q_INDEX, QUANTITIES
from ingest.batch import ReadingBatch
from ingest.influx import LineEncoder
from sigap import devstack

DATABASE = "sigap_bench"
STEP_MS = 1_000


def gateway_batch(devices: list[str], rounds: int, base_ms: int, seed: int) -> ReadingBatch:
    """`rounds` readings of every device, round after round, with the ingest bench's values."""
    rng = np.random.default_rng(seed)
    n = len(devices) * rounds
    index = np.tile(np.arange(len(devices)), rounds)
    round_ = np.repeat(np.arange(rounds), len(devices))
    is_bin = np.array([_is_bin(i % 50) for i in range(len(devices))])[index]
    values = np.full((len(QUANTITIES), n), np.nan)
    temp = 28.0 + 3.0 * ((round_ + index) % 40) / 40 + rng.random(n) * 0.2
    values[Q_INDEX["temp_c"]] = np.round(temp, 2)
    values[Q_INDEX["battery_pct"]] = 90 - index % 10
    values[Q_INDEX["rssi_dbm"]] = -70 - index % 30
    values[Q_INDEX["distance_mm"]] = np.where(is_bin, 700 + (index * 7 + round_) % 200, np.nan)
    values[Q_INDEX["tilt_deg"]] = np.where(is_bin, np.round(rng.random(n) * 4, 1), np.nan)
    smoke = np.round(rng.random(n) * 0.8, 2)
    values[Q_INDEX["smoke_obs_pct_m"]] = np.where(is_bin, np.nan, smoke)
    values[Q_INDEX["humidity_pct"]] = np.where(is_bin, np.nan, 70 + index % 20)
    kind = np.where(is_bin, KIND_CODES["bin"], KIND_CODES["fire"]).astype(np.uint8)
    return ReadingBatch(
        device=index.astype(np.int32),
        kind=kind,
        ts_ms=(base_ms + round_ * STEP_MS).astype(np.int64),
        seq=round_.astype(np.int64),
        values=values,
        device_ids=devices,
    )


def bodies(batch: ReadingBatch, per_body: int) -> list[bytes]:
    """Line-protocol bodies of `per_body` readings each, in order, by Sigap's encoder."""
    encoder = LineEncoder("readings")
    out = []
    for lo in range(0, len(batch), per_body):
        part = slice(lo, lo + per_body)
        out.append(
            encoder.encode(
                ReadingBatch(
                    batch.device[part],
                    batch.kind[part],
                    batch.ts_ms[part],
                    batch.seq[part],
                    batch.values[:, part],
                    batch.device_ids,
                )
            )
        )
    return out


def _writer(port: int, parts: list[bytes], start: Any, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    start.wait()
    errors = 0
    for body in parts:
        conn.request("POST", f"/write?db={DATABASE}&precision=ms", body)
        response = conn.getresponse()
        response.read()
        errors += response.status != 204
    out.put((time.perf_counter(), errors))


def _query(port: int, influxql: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/query?" + urlencode({"db": DATABASE, "q": influxql}))
    return json.loads(conn.getresponse().read())


def case(port: int, pid: int, batch: ReadingBatch, per_body: int, writers: int) -> dict[str, Any]:
    """Write `batch` in bodies of `per_body` readings from `writers` processes; rate and CPU."""
    parts = bodies(batch, per_body)
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    # Each writer takes every writers-th body: devices' points stay in time order per writer.
    procs = [
        ctx.Process(target=_writer, args=(port, parts[w::writers], start, out))
        for w in range(writers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # let the writers connect; not a synchronisation the result relies on
    cpu0, t0 = _cpu_s(pid), time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    t1 = max(t for t, _ in results)
    cpu = _cpu_s(pid) - cpu0
    lo, hi = int(batch.ts_ms[0]), int(batch.ts_ms[-1])
    rows = _query(port, f"SELECT count(seq) FROM readings WHERE time >= {lo}ms AND time <= {hi}ms")
    series = rows["results"][0].get("series") or [{"values": [[0, 0]]}]
    return {
        "per_body": per_body,
        "writers": writers,
        "readings": len(batch),
        "stored": int(series[0]["values"][0][1]),
        "errors": sum(e for _, e in results),
        "readings_per_s": round(len(batch) / (t1 - t0)),
        "influxd_cpu_us_per_reading": round(cpu / len(batch) * 1e6, 1),
        "body_bytes": round(sum(map(len, parts)) / len(parts)),
    }


def main() -> None:
    """Run the cases and print one JSON object last."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=150, help="readings per device per case")
    parser.add_argument("--bodies", type=int, nargs="+", default=[1_000, 5_000, 20_000])
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--devices",
        type=int,
        default=0,
        help="series: 0 = the ingest bench's 2,000 gateway devices; N = N devices "
        "(e.g. 1000000 for the soak's fleet; the warm-up then creates N series)",
    )
    args = parser.parse_args()

    if args.devices:
        devices = [f"bd{i:07d}" for i in range(args.devices)]
    else:
        fleet = make_fleet(0, 40, 50, 0)
        devices = [d for members in fleet.members for d in members]
    base = 1_700_000_000_000
    results = []
    with tempfile.TemporaryDirectory(prefix="sigap-influx-ceiling-") as tmp:
        influxd = devstack.start_influxd(devstack.free_port(), Path(tmp))
        try:
            _query(influxd.port, f"CREATE DATABASE {DATABASE}")
            # Warm-up: series created, so that every case writes into existing series.
            warm = gateway_batch(devices, max(1, 10_000 // len(devices)), base, seed=0)
            print(json.dumps({"warm_up": case(influxd.port, influxd.process.pid, warm, 10_000, 2)}))
            for k, (per_body, writers) in enumerate(
                (b, w) for b in args.bodies for w in args.writers
            ):
                t = base + (k + 1) * 10 * args.rounds * STEP_MS
                batch = gateway_batch(devices, args.rounds, t, seed=k + 1)
                result = case(influxd.port, influxd.process.pid, batch, per_body, writers)
                stats = proc_stats(influxd.process.pid)
                result["influxd_rss_mb"] = round(stats[0]) if stats else None
                print(json.dumps(result), flush=True)
                results.append(result)
        finally:
            influxd.stop()
    best = max(results, key=lambda r: r["readings_per_s"])
    print(
        json.dumps(
            {
                "bench": "influx_ceiling",
                "cores": os.cpu_count(),
                "devices": len(devices),
                "load_1min": os.getloadavg()[0],
                "cases": results,
                "best_readings_per_s": best["readings_per_s"],
                "best": {"per_body": best["per_body"], "writers": best["writers"]},
            }
        )
    )


if __name__ == "__main__":
    main()
