"""The simulator's own publish ceiling: readings/s it can push into a real mosquitto.

Starts mosquitto (repo config, free port, temp dir) with nobody subscribed, so the broker
only acknowledges; then runs the simulator as fast as it can (`max_rate`) for each case:
QoS 0 and 1, one reading per message (direct) and gateway batches. Stack benchmarks need
this ceiling well above the rate they ask for, so that the simulator is never what limits
them.
Usage: .venv/bin/python -m bench.simulator_ceiling --devices 10000 --duration 5
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from sigap import devstack
from simulators import SimConfig, run_simulation


def _case(
    port: int, account: tuple[str, str], args: argparse.Namespace, qos: int, envelope: str
) -> dict[str, Any]:
    config = SimConfig(
        mqtt_port=port,
        mqtt_username=account[0],
        mqtt_password=account[1],
        api_url=None,
        devices=args.devices,
        duration_s=args.duration,
        scenario="quiet",
        qos=qos,
        envelope=envelope,  # type: ignore[arg-type]
        gateways=args.gateways if envelope == "gateway" else 0,
        max_rate=True,
        id_prefix=f"bench{qos}{envelope[0]}",
    )
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (closed with the process)
    summary = run_simulation(config, progress=False, console=quiet)
    return {
        "qos": qos,
        "envelope": envelope,
        "readings": summary.published,
        "messages": summary.messages,
        "failed": summary.failed,
        "duration_s": round(summary.duration_s, 2),
        "readings_per_s": round(summary.rate),
        "messages_per_s": round(summary.messages / summary.duration_s) if summary.duration_s else 0,
    }


def main() -> None:
    """Run every case and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--gateways", type=int, default=20, help="for the gateway cases")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="sigap-simbench-"))
    accounts = devstack.dev_accounts(work / "accounts.json")
    assert accounts.developer is not None
    broker = devstack.start_mosquitto(devstack.free_port(), work, accounts)
    cases: list[dict[str, Any]] = []
    try:
        for envelope in ("direct", "gateway"):
            for qos in (0, 1):
                result = _case(broker.port, accounts.developer, args, qos, envelope)
                print(json.dumps(result), flush=True)
                cases.append(result)
    finally:
        broker.stop()
    print(
        json.dumps(
            {
                "bench": "simulator_ceiling",
                "devices": args.devices,
                "duration_s": args.duration,
                "gateways": args.gateways,
                "cpu_count": os.cpu_count(),
                "cases": cases,
            }
        )
    )


if __name__ == "__main__":
    main()
