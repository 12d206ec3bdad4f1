"""Sustained `sigap simulate` -> `sigap up` -> InfluxDB throughput, with loss counted.

Starts mosquitto and influxd (repo configs, free ports, temp dirs) and `sigap up`, runs a
simulated fleet for a while, then waits until InfluxDB holds every acknowledged reading.
Usage: .venv/bin/python -m bench.stack_throughput --devices 20000 --interval 2 --duration 60
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from sigap import devstack
from simulators import SimConfig, run_simulation

# The admin bearer token of the `sigap up` this benchmark starts (it registers the fleet).
BENCH_TOKEN = secrets.token_urlsafe(24)


def _count(influx: str, db: str) -> int:
    response = httpx.get(
        f"{influx}/query", params={"db": db, "q": 'SELECT count("seq") FROM "readings"'}, timeout=60
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--qos", type=int, default=1)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sigap-bench-"))
    mqtt_port, influx_port, api_port = (devstack.free_port() for _ in range(3))
    accounts = devstack.dev_accounts(work / "accounts.json")
    broker = devstack.start_mosquitto(mqtt_port, work, accounts)
    influxd = devstack.start_influxd(influx_port, work)
    influx = f"http://127.0.0.1:{influx_port}"
    env = os.environ | {
        "SIGAP_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
        "SIGAP_INFLUX_URL": influx,
        "SIGAP_DATA_DIR": str(work / "sigap"),
        "SIGAP_API_PORT": str(api_port),
        "SIGAP_LOG_LEVEL": "WARNING",
        "SIGAP_ADMIN_TOKEN": BENCH_TOKEN,
        "SIGAP_MQTT_USERNAME": accounts.service_username,
        "SIGAP_MQTT_PASSWORD": accounts.service_password,
    }
    api = f"http://127.0.0.1:{api_port}"
    with (work / "sigap-up.log").open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "sigap", "up"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{api}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or up.poll() is not None:
                raise SystemExit(f"sigap up did not start; see {work / 'sigap-up.log'}")
            time.sleep(0.2)
        config = SimConfig(
            mqtt_port=mqtt_port,
            mqtt_username=accounts.developer_username,
            mqtt_password=accounts.developer_password,
            api_url=api,
            api_token=BENCH_TOKEN,
            devices=args.devices,
            interval_s=args.interval,
            duration_s=args.duration,
            scenario="quiet",
            qos=args.qos,
        )
        summary = run_simulation(config, progress=False)
        started = time.monotonic()
        stored = _count(influx, "sigap")
        while stored < summary.published and time.monotonic() - started < 300:
            time.sleep(1.0)
            stored = _count(influx, "sigap")
        drain_s = time.monotonic() - started
        rss_kb = int(Path(f"/proc/{up.pid}/status").read_text().split("VmRSS:")[1].split()[0])
    finally:
        up.terminate()
        up.wait(60)
        influxd.stop()
        broker.stop()
    result = {
        "bench": "stack_throughput",
        "devices": args.devices,
        "interval_s": args.interval,
        "duration_s": round(summary.duration_s, 1),
        "qos": args.qos,
        "published": summary.published,
        "failed": summary.failed,
        "skipped_by_simulator": getattr(summary, "skipped", 0),
        "stored": stored,
        "lost": summary.published - stored,
        "published_per_s": round(summary.rate),
        "drain_after_stop_s": round(drain_s, 1),
        "sigap_up_rss_mb": round(rss_kb / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
