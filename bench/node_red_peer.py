"""Sigap against the peer a user would pick instead for plain ingestion: Node-RED, one run.

Starts mosquitto (with dynamic security) and influxd from the repo's configs on free ports,
pre-encodes every MQTT packet as bench/ingest_ceiling.py does, then runs one system after
the other (never both at once), each writing to a fresh database on the same influxd:

1. `sigap up` end to end (validation, rules, durable acks -> InfluxDB database `sigap`),
   single readings at QoS 0, then 50-reading gateway batches at QoS 0: ingest_ceiling's
   own `sigap_phase`, counted by Sigap's `sigap_influx_written_readings_total`;
2. Node-RED 4 with node-red-contrib-influxdb (installed by this bench with npm into
   var/bench-cache/node-red, reused when present; not a project dependency), headless,
   flow `mqtt in` (QoS 0, the topics Sigap reads) -> `json` -> `function` (one InfluxDB
   point per reading: tag device_id, the numeric quantities as fields, the event time) ->
   `join` (1,000 points, 1 s timeout) -> `influxdb batch` (1.x, precision ms, database
   `nodered`), the same packets from the same publishers, counted with InfluxQL
   `count("seq")` polled twice a second.

Node-RED does less per reading than Sigap: no validation, no device registry, no rules or
alerts, no durable acks (QoS 0 in; a failed write is logged and dropped). Rates are the
10..90 % slope of each system's count; CPU is the system's own process (`sigap up`, `node`)
over its phase, per reading stored; mosquitto's and influxd's CPU are reported beside it.
Usage: .venv/bin/python -m bench.node_red_peer [--messages N]   (~45 s at the defaults)
       [--first node-red] [--keep]
Progress goes to stderr; the last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.ingest_ceiling import (
    BENCH_TOKEN,
    DEVICE_TOPIC,
    GATEWAY_TOPIC,
    MEASUREMENT,
    PHASE_SPAN_MS,
    Account,
    Load,
    Stack,
    _cpu_s,
    _disconnect,
    connect,
    gateway_load,
    make_fleet,
    publish_packet,
    sigap_phase,
    single_load,
    start_sigap,
)
from sigap import devstack

CACHE = devstack.REPO / "var" / "bench-cache" / "node-red"
PACKAGES = ("node-red@4", "node-red-contrib-influxdb")
NODE_RED_DB = "nodered"
JOIN_COUNT = 1000
JOIN_TIMEOUT_S = 1

# The function node: one point per reading, for node-red-contrib-influxdb's batch node.
# A device message is one reading; a gateway message {"readings": [...]} holds many, each
# with its device_id. Fields are the numeric values but the event time (`ts`, ms).
POINTS_JS = """\
const body = msg.payload;
const rows = Array.isArray(body.readings) ? body.readings : [body];
const device = msg.topic.split("/")[2];
const out = [];
for (const r of rows) {
    const fields = {};
    for (const key in r) {
        const value = r[key];
        if (key !== "ts" && typeof value === "number") fields[key] = value;
    }
    out.push({payload: {measurement: MEASUREMENT, tags: {device_id: r.device_id || device},
                        fields: fields, timestamp: r.ts}});
}
return [out];
""".replace("MEASUREMENT", json.dumps(MEASUREMENT))

SETTINGS_JS = """\
module.exports = {
    flowFile: "flows.json",
    credentialSecret: false,
    uiHost: "127.0.0.1",
    disableEditor: true,
    httpNodeRoot: false,
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    runtimeState: { enabled: false },
    editorTheme: { projects: { enabled: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    logging: { console: { level: "info", metrics: false, audit: false } },
};
"""


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- Node-RED ----------------------------------------------------------------------------


def install_node_red(cache: Path) -> dict[str, str]:
    """node-red@4 and node-red-contrib-influxdb under cache/node_modules (npm, once);
    returns their versions."""
    modules = cache / "node_modules"
    wanted = [modules / "node-red" / "red.js", modules / "node-red-contrib-influxdb"]
    if not all(path.exists() for path in wanted):
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm not found: Node.js 20 and npm are needed for the peer")
        _log(f"installing {' '.join(PACKAGES)} into {cache} ...")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(cache), *PACKAGES],
            check=True,
            stdout=sys.stderr,
        )
    versions = {
        name: json.loads((modules / name / "package.json").read_text())["version"]
        for name in ("node-red", "node-red-contrib-influxdb")
    }
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return versions | {"node": node.stdout.strip()}


def flow(mqtt_port: int, influx_port: int) -> list[dict[str, Any]]:
    """The peer flow: mqtt in (x2) -> json -> function -> join -> influxdb batch."""
    tab = "peer-tab"

    def mqtt_in(node_id: str, topic: str) -> dict[str, Any]:
        return {
            "id": node_id,
            "type": "mqtt in",
            "z": tab,
            "name": "",
            "topic": topic,
            "qos": "0",
            "datatype": "utf8",
            "broker": "peer-broker",
            "nl": False,
            "rap": True,
            "rh": 0,
            "inputs": 0,
            "wires": [["peer-json"]],
        }

    return [
        {"id": tab, "type": "tab", "label": "sigap peer", "disabled": False},
        {
            "id": "peer-broker",
            "type": "mqtt-broker",
            "name": "bench broker",
            "broker": "127.0.0.1",
            "port": str(mqtt_port),
            "clientid": "bench-node-red",
            "autoConnect": True,
            "usetls": False,
            "protocolVersion": "4",
            "keepalive": "60",
            "cleansession": True,
            "autoUnsubscribe": True,
        },
        {
            "id": "peer-influx",
            "type": "influxdb",
            "hostname": "127.0.0.1",
            "port": str(influx_port),
            "protocol": "http",
            "database": NODE_RED_DB,
            "name": "bench influxd",
            "usetls": False,
            "tls": "",
            "influxdbVersion": "1.x",
            "url": "",
            "timeout": "10",
            "rejectUnauthorized": False,
        },
        mqtt_in("peer-in-devices", DEVICE_TOPIC.format("+")),
        mqtt_in("peer-in-gateways", GATEWAY_TOPIC.format("+")),
        {
            "id": "peer-json",
            "type": "json",
            "z": tab,
            "name": "",
            "property": "payload",
            "action": "obj",
            "pretty": False,
            "wires": [["peer-points"]],
        },
        {
            "id": "peer-points",
            "type": "function",
            "z": tab,
            "name": "points",
            "func": POINTS_JS,
            "outputs": 1,
            "timeout": 0,
            "noerr": 0,
            "initialize": "",
            "finalize": "",
            "libs": [],
            "wires": [["peer-join"]],
        },
        {
            "id": "peer-join",
            "type": "join",
            "z": tab,
            "name": "",
            "mode": "custom",
            "build": "array",
            "property": "payload",
            "propertyType": "msg",
            "key": "topic",
            "joiner": "\\n",
            "joinerType": "str",
            "useparts": False,
            "accumulate": False,
            "timeout": str(JOIN_TIMEOUT_S),
            "count": str(JOIN_COUNT),
            "reduceRight": False,
            "wires": [["peer-write"]],
        },
        {
            "id": "peer-write",
            "type": "influxdb batch",
            "z": tab,
            "influxdb": "peer-influx",
            "precision": "ms",
            "retentionPolicy": "",
            "name": "",
            "database": "database",
            "precisionV18FluxV20": "ms",
            "retentionPolicyV18Flux": "",
            "org": "organisation",
            "bucket": "bucket",
            "wires": [],
        },
    ]


@dataclass
class InfluxCount(Stack):
    """A Stack whose progress count is InfluxQL over another database (Node-RED's): what
    `follow` and `sigap_phase` poll. `window` is the event-time range of the running phase."""

    database: str = NODE_RED_DB
    window: tuple[int, int] = (0, 0)

    def written(self) -> float:
        """Points stored so far in the running phase's event-time range."""
        return float(self.stored(self.window))

    def stored(self, ts_range: tuple[int, int]) -> int:
        """Points in this database with event times in the range (inclusive)."""
        query = (
            f'SELECT count("seq") FROM "{MEASUREMENT}" '
            f"WHERE time >= {ts_range[0]}ms AND time <= {ts_range[1]}ms"
        )
        response = self.http.get(f"{self.influx}/query", params={"db": self.database, "q": query})
        response.raise_for_status()
        series = response.json()["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0


def start_node_red(
    red_js: Path, work: Path, mqtt_port: int, influx_port: int, service: Account
) -> devstack.Service:
    """Node-RED headless with the peer flow, once its HTTP port accepts connections."""
    user_dir = work / "node-red"
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "settings.js").write_text(SETTINGS_JS)
    (user_dir / "flows.json").write_text(json.dumps(flow(mqtt_port, influx_port), indent=1))
    # credentialSecret false: Node-RED reads the credentials file as plain JSON.
    creds = {"peer-broker": {"user": service[0], "password": service[1]}, "peer-influx": {}}
    fd = os.open(user_dir / "flows_cred.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(creds, out)
    port = devstack.free_port()
    argv = [
        shutil.which("node") or "node",
        str(red_js),
        "--userDir",
        str(user_dir),
        "--settings",
        str(user_dir / "settings.js"),
        "--port",
        str(port),
        "--no-telemetry",
    ]
    return devstack.start("node-red", argv, port, work / "node-red.log", timeout=60)


def wait_flowing(
    red: devstack.Service, stack: InfluxCount, mqtt_port: int, pub: Account, probe_ms: int
) -> float:
    """Publish probe readings (event times before every phase's) until one is stored in
    Node-RED's database: the flow is subscribed and writes end to end. Seconds taken."""
    began = time.monotonic()
    deadline = began + 60
    sock = connect(mqtt_port, "bench-peer-probe", pub)
    sent, last_sent = 0, 0.0
    try:
        while stack.stored((probe_ms, probe_ms + 3_600_000)) == 0:
            if not red.alive() or time.monotonic() > deadline:
                raise SystemExit(f"Node-RED stored no probe reading:\n{red.log_tail()}")
            if time.monotonic() - last_sent > 2 * JOIN_TIMEOUT_S:
                payload = f'{{"ts":{probe_ms + sent},"seq":{sent},"temp_c":20.0}}'.encode()
                sock.sendall(publish_packet(DEVICE_TOPIC.format("peerprobe"), payload))
                sent, last_sent = sent + 1, time.monotonic()
            time.sleep(0.1)  # polling InfluxDB for the probe
    finally:
        _disconnect(sock)
    return time.monotonic() - began


# Warnings that our own settings cause (projects off, a plain credentials file).
EXPECTED_WARNINGS = ("Projects disabled", "Using unencrypted credentials")


def log_problems(red: devstack.Service) -> list[str]:
    """Node-RED's error and warning lines (a failed write or a parse error shows here)."""
    text = red.log_path.read_text(errors="replace") if red.log_path.exists() else ""
    return [
        line
        for line in text.splitlines()
        if ("[error]" in line or "[warn]" in line)
        and not any(expected in line for expected in EXPECTED_WARNINGS)
    ]


# -- phases ------------------------------------------------------------------------------


def wait_quiet(pids: dict[str, int], timeout: float = 60.0) -> float:
    """Until the processes together use under 10 % of a core for a second (influxd settling
    after the other system's writes), or the timeout; seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        before = sum(_cpu_s(pid) for pid in pids.values())
        time.sleep(1.0)  # the measuring window
        if sum(_cpu_s(pid) for pid in pids.values()) - before < 0.1:
            break
    return round(time.monotonic() - began, 1)


def phase(
    stack: Stack,
    own: str,
    mqtt_port: int,
    pub: Account,
    load: Load,
    publishers: int,
    tag: str,
) -> dict[str, Any]:
    """ingest_ceiling's `sigap_phase` on this stack, with the system's own CPU per reading."""
    loadavg = [round(x, 2) for x in os.getloadavg()]
    cpu0 = stack.cpu()
    result = sigap_phase(stack, mqtt_port, pub, load, publishers, tag=tag)
    cpu1 = stack.cpu()
    cpu = {name: cpu1[name] - cpu0[name] for name in cpu0}  # unrounded, unlike the phase's
    stored = result["stored"]
    return {
        "loadavg_at_start": loadavg,
        "messages": result["messages"],
        "published_readings": result["published_readings"],
        "stored": stored,
        "lost": result["lost"],
        "readings_per_s": result["readings_per_s"],
        "overall_readings_per_s": result["overall_readings_per_s"],
        "cpu_s": round(cpu[own], 2),
        "cpu_us_per_reading": round(cpu[own] / stored * 1e6, 2) if stored else None,
        "other_cpu_s": {k: round(v, 2) for k, v in cpu.items() if k != own},
        "publish": result["publish"],
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# -- main --------------------------------------------------------------------------------


def main() -> None:
    """Run both systems, one after the other, and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=150_000, help="single-reading messages")
    parser.add_argument("--gateway-messages", type=int, default=6000)
    parser.add_argument("--devices", type=int, default=2000, help="direct-reporting devices")
    parser.add_argument("--gateways", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50, help="readings per gateway message")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--first", choices=("sigap", "node-red"), default="sigap")
    parser.add_argument("--node-red-dir", type=Path, default=CACHE, help="npm install folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    began = time.monotonic()
    versions = install_node_red(args.node_red_dir)
    red_js = args.node_red_dir / "node_modules" / "node-red" / "red.js"

    now = int(time.time() * 1000)
    base = now - 3 * 86_400_000  # inside Sigap's accepted 7 days, as in ingest_ceiling
    fleet = make_fleet(args.devices, args.gateways, args.batch, 0)
    singles = single_load(fleet.singles, args.messages, base)
    gateway = gateway_load(fleet, args.gateway_messages, base + PHASE_SPAN_MS)

    work = Path(tempfile.mkdtemp(prefix="sigap-node-red-peer-"))
    accounts = devstack.dev_accounts(work / "accounts.json")
    dev, service = accounts.developer, (accounts.service_username, accounts.service_password)
    assert dev is not None
    mqtt_port, influx_port = devstack.free_port(), devstack.free_port()
    broker = devstack.start_mosquitto(mqtt_port, work, accounts)
    influxd = devstack.start_influxd(influx_port, work)
    influx = f"http://127.0.0.1:{influx_port}"
    services = {"mosquitto": broker.process.pid, "influxd": influxd.process.pid}
    result: dict[str, Any] = {"bench": "node_red_peer", "versions": versions}

    def run_sigap() -> None:
        _log("sigap: starting `sigap up` ...")
        up, api = start_sigap(work, accounts, mqtt_port, influx, {})
        try:
            stack = Stack(api, influx, {"sigap": up.pid, **services})
            response = stack.http.post(
                f"{api}/api/v1/devices/import",
                content=fleet.csv(),
                headers={"Authorization": f"Bearer {BENCH_TOKEN}", "Content-Type": "text/csv"},
            )
            response.raise_for_status()
            result["sigap_settled_s"] = wait_quiet(services)
            _log("sigap: single readings ...")
            single = phase(stack, "sigap", mqtt_port, dev, singles, args.publishers, "s1")
            _log("sigap: gateway batches ...")
            batches = phase(stack, "sigap", mqtt_port, dev, gateway, args.publishers, "sgw")
            result["sigap"] = {"single": single, "gateway": batches}
        finally:
            up.terminate()
            up.wait(60)

    def run_node_red() -> None:
        _log("node-red: starting ...")
        httpx.post(
            f"{influx}/query", params={"q": f'CREATE DATABASE "{NODE_RED_DB}"'}
        ).raise_for_status()
        red = start_node_red(red_js, work, mqtt_port, influx_port, service)
        try:
            stack = InfluxCount(
                f"http://127.0.0.1:{red.port}", influx, {"node-red": red.process.pid}
            )
            stack.pids |= services
            result["node_red_ready_s"] = round(
                wait_flowing(red, stack, mqtt_port, dev, base - 86_400_000), 1
            )
            result["node_red_settled_s"] = wait_quiet(services | {"node-red": red.process.pid})
            _log("node-red: single readings ...")
            stack.window = singles.ts_range
            single = phase(stack, "node-red", mqtt_port, dev, singles, args.publishers, "n1")
            _log("node-red: gateway batches ...")
            stack.window = gateway.ts_range
            batches = phase(stack, "node-red", mqtt_port, dev, gateway, args.publishers, "ngw")
            result["node_red"] = {"single": single, "gateway": batches}
            result["node_red_log_problems"] = log_problems(red)[:10]
        finally:
            red.stop()

    runs: list[Callable[[], None]] = [run_sigap, run_node_red]
    if args.first == "node-red":
        runs.reverse()
    try:
        for i, run in enumerate(runs):
            if i:
                result["between_systems_settled_s"] = wait_quiet(services)
            run()
    finally:
        influxd.stop()
        broker.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            _log(f"work folder kept: {work}")

    ratios: dict[str, dict[str, float | None]] = {}
    for name in ("single", "gateway"):
        s, n = result["sigap"][name], result["node_red"][name]
        ratios[name] = {
            "readings_per_s": _ratio(s["readings_per_s"], n["readings_per_s"]),
            "cpu_us_per_reading": _ratio(s["cpu_us_per_reading"], n["cpu_us_per_reading"]),
        }
    result |= {
        "ratios_sigap_over_node_red": ratios,
        "first": args.first,
        "messages": {"single": args.messages, "gateway": args.gateway_messages},
        "readings_per_gateway_message": args.batch,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.monotonic() - began, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
