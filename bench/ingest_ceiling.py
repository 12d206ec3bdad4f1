"""Ingest against its ceiling: a bare paho subscriber vs `sigap up` end to end, one run.

Starts mosquitto (with dynamic security) and influxd from the repo's configs on free ports,
pre-encodes every MQTT packet, then, in one run:

1. ceiling: a bare paho-mqtt subscriber (service account, its own process) that only counts
   messages, fed by the same publishers and payloads as the Sigap phases below;
2. `sigap up` end to end (published -> rules -> InfluxDB, counted in InfluxDB), single
   readings at QoS 0, then 50-reading gateway batches at QoS 0;
3. fire alert latency (publish -> SSE event on /api/v1/alerts/stream) at half the sustained
   single-reading rate (the lower of its 10..90 % slope and the whole phase's rate);
4. a QoS 1 loss check (every acknowledged reading must be in InfluxDB).

Publishers are raw-socket MQTT clients in separate processes writing pre-encoded packets
(developer account), so that they are never the bottleneck; their own rate is reported.
Rates are the 10 %..90 % slope of the consumer's count (the bare subscriber's own count, or
Sigap's `sigap_influx_written_readings_total`), so start-up and tail do not weigh in.
Usage: .venv/bin/python -m bench.ingest_ceiling [--messages 150000] [--profile var/prof]
       [--workers 2]   (`sigap up` plus `sigap ingest` workers on one shared subscription)
The last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import queue
import random
import re
import resource
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sigap import devstack

BENCH_TOKEN = secrets.token_urlsafe(24)  # admin bearer token of the `sigap up` started here
MEASUREMENT = "readings"
DEVICE_TOPIC = "sigap/devices/{}/up"
GATEWAY_TOPIC = "sigap/gateways/{}/up"
# Readings are spaced like a real fleet (one per device every 30 s of event time), so the
# rules see plausible rates of rise and no stuck values; every phase has its own time
# range, after the previous one's, so that InfluxDB counts phases apart and the rules
# evaluate every reading (none arrives "late").
STEP_MS = 30_000
PHASE_SPAN_MS = 6 * 3600 * 1000
# Fork, not spawn: the children inherit the pre-encoded packets instead of pickling them.
MP = multiprocessing.get_context("fork")
Account = tuple[str, str]

# -- MQTT 3.1.1 packets, encoded once ----------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(raw)) + raw


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    """One PUBLISH packet (QoS 0, or QoS 1 with its packet id)."""
    head = _string(topic) + (struct.pack("!H", packet_id) if qos else b"")
    return bytes([0x30 | (qos << 1)]) + _varint(len(head) + len(payload)) + head + payload


def connect(port: int, client_id: str, account: Account, keepalive: int = 600) -> socket.socket:
    """A raw MQTT connection to 127.0.0.1:port, CONNACK checked."""
    body = (
        _string("MQTT")
        + bytes([4, 0xC2])  # protocol level 4; username, password, clean session
        + struct.pack("!H", keepalive)
        + _string(client_id)
        + _string(account[0])
        + _string(account[1])
    )
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    connack = b""
    while len(connack) < 4:
        chunk = sock.recv(4 - len(connack))
        if not chunk:
            raise ConnectionError("broker closed the connection before CONNACK")
        connack += chunk
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {connack.hex()}")
    return sock


def _disconnect(sock: socket.socket) -> None:
    """DISCONNECT and wait for the broker to close: it has then handled every packet."""
    sock.sendall(b"\xe0\x00")
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(65536):
        pass
    sock.close()


# -- the workload -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fleet:
    """Device ids: direct reporters, gateway members, and fire detectors for alert probes."""

    singles: list[str]
    gateways: list[str]
    members: list[list[str]]
    probes: list[str]

    def csv(self) -> bytes:
        """The whole fleet as a POST /api/v1/devices/import body."""
        rows = ["id,kind,lat,lon,district,depth_mm,gateway_id"]
        lat0, lon0 = -2.538, 112.950
        for i, device in enumerate(self.singles):
            rows.append(_csv_row(device, i, lat0, lon0, None))
        for g, members in enumerate(self.members):
            for i, device in enumerate(members):
                rows.append(_csv_row(device, i, lat0 + 0.05, lon0, self.gateways[g]))
        # Probes 0.01 deg (about 1.1 km) apart and in no zone: no probe confirms another.
        rows.extend(
            f"{p},fire,{lat0 - 0.3 + i * 0.01:.5f},{lon0 - 0.3:.5f},Baamang,,"
            for i, p in enumerate(self.probes)
        )
        return ("\n".join(rows) + "\n").encode()


def _is_bin(index: int) -> bool:
    return index % 10 >= 7  # 70 % fire detectors, 30 % bins


def _csv_row(device: str, i: int, lat0: float, lon0: float, gateway: str | None) -> str:
    lat, lon = lat0 + (i % 100) * 0.002, lon0 + (i // 100) * 0.002
    kind, depth = ("bin", "1000") if _is_bin(i) else ("fire", "")
    return f"{device},{kind},{lat:.5f},{lon:.5f},Baamang,{depth},{gateway or ''}"


def make_fleet(devices: int, gateways: int, per_gateway: int, probes: int) -> Fleet:
    """Ids for the benchmark fleet."""
    return Fleet(
        singles=[f"bs{i:05d}" for i in range(devices)],
        gateways=[f"bgw{g:03d}" for g in range(gateways)],
        members=[[f"bg{g:03d}d{i:03d}" for i in range(per_gateway)] for g in range(gateways)],
        probes=[f"bp{i:04d}" for i in range(probes)],
    )


def _reading(rng: random.Random, index: int, round_: int, ts: int) -> str:
    # JSON text by hand: 1.3M readings through dicts and orjson would take seconds more.
    temp = 28.0 + 3.0 * ((round_ + index) % 40) / 40 + rng.random() * 0.2
    if _is_bin(index):
        distance = 700 + (index * 7 + round_) % 200
        return (
            f'"ts":{ts},"seq":{round_},"distance_mm":{distance},"temp_c":{temp:.2f},'
            f'"tilt_deg":{rng.random() * 4:.1f},"battery_pct":{90 - index % 10},'
            f'"rssi_dbm":{-70 - index % 30}'
        )
    return (
        f'"ts":{ts},"seq":{round_},"temp_c":{temp:.2f},'
        f'"smoke_obs_pct_m":{rng.random() * 0.8:.2f},"humidity_pct":{70 + index % 20},'
        f'"battery_pct":{90 - index % 10},"rssi_dbm":{-70 - index % 30}'
    )


@dataclass
class Load:
    """Pre-encoded packets; key[i] says which publisher sends packet i (one per device or
    gateway, so that each device's readings stay in order)."""

    packets: list[bytes]
    keys: list[int]
    readings: int
    ts_range: tuple[int, int]  # [first, last] event time, for counting in InfluxDB
    payload_bytes: int = 0

    def split(self, publishers: int) -> list[list[bytes]]:
        """The packets of each publisher, in order."""
        parts: list[list[bytes]] = [[] for _ in range(publishers)]
        for packet, key in zip(self.packets, self.keys, strict=True):
            parts[key % publishers].append(packet)
        return parts


def single_load(
    devices: Sequence[str], count: int, base_ms: int, qos: int = 0, seed: int = 1
) -> Load:
    """`count` one-reading messages, device after device, round after round."""
    rng = random.Random(seed)
    packets, keys, size = [], [], 0
    n = len(devices)
    for j in range(count):
        index, round_ = j % n, j // n
        payload = ("{" + _reading(rng, index, round_, base_ms + round_ * STEP_MS) + "}").encode()
        size += len(payload)
        packet_id = j % 65535 + 1
        packets.append(publish_packet(DEVICE_TOPIC.format(devices[index]), payload, qos, packet_id))
        keys.append(index)
    last = base_ms + ((count - 1) // n) * STEP_MS
    return Load(packets, keys, count, (base_ms, last), size)


def gateway_load(fleet: Fleet, count: int, base_ms: int, seed: int = 2) -> Load:
    """`count` gateway batches, each with one reading of every device behind the gateway."""
    rng = random.Random(seed)
    packets, keys, size, readings = [], [], 0, 0
    n = len(fleet.gateways)
    for j in range(count):
        g, round_ = j % n, j // n
        ts = base_ms + round_ * STEP_MS
        items = ",".join(
            '{"device_id":"' + device + '",' + _reading(rng, i, round_, ts) + "}"
            for i, device in enumerate(fleet.members[g])
        )
        payload = ('{"readings":[' + items + "]}").encode()
        size += len(payload)
        readings += len(fleet.members[g])
        packets.append(publish_packet(GATEWAY_TOPIC.format(fleet.gateways[g]), payload))
        keys.append(g)
    last = base_ms + ((count - 1) // n) * STEP_MS
    return Load(packets, keys, readings, (base_ms, last), size)


# -- publishers (separate processes) ----------------------------------------------------


def _publisher(
    port: int,
    account: Account,
    client_id: str,
    packets: list[bytes],
    qos: int,
    rate: float | None,
    window: int,
    start: MpEvent,
    out: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """Send pre-encoded packets (flat out, or paced at `rate`/s) and report what it did."""
    sock = connect(port, client_id, account)
    blob = memoryview(b"".join(packets))
    offsets = [0, *itertools.accumulate(len(p) for p in packets)]
    n = len(packets)
    acked = 0
    ack_lock = threading.Condition()

    def count_acks() -> None:
        # The broker sends us nothing but PUBACKs (4 bytes each): count bytes.
        nonlocal acked
        pending = 0
        while chunk := sock.recv(65536):
            pending += len(chunk)
            with ack_lock:
                acked += pending // 4
                pending %= 4
                ack_lock.notify_all()
            if acked >= n:
                return

    reader = threading.Thread(target=count_acks, daemon=True) if qos else None
    if reader is not None:
        reader.start()
    start.wait()
    started = time.monotonic()
    sent = 0
    while sent < n:
        due = n
        if rate is not None:
            due = min(n, int((time.monotonic() - started) * rate) + 1)
        if qos:
            with ack_lock:  # at most `window` messages unacknowledged
                while acked + window <= sent:
                    ack_lock.wait()
                due = min(due, acked + window)
        if due > sent:
            sock.sendall(blob[offsets[sent] : offsets[due]])
            sent = due
        elif rate is not None:
            time.sleep(0.002)
    if reader is not None:
        reader.join()
    _disconnect(sock)
    done = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(
        {
            "sent": sent,
            "acked": acked if qos else sent,
            "started": started,
            "done": done,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }
    )


@dataclass
class Publishers:
    """A group of publisher processes, started together."""

    procs: Sequence[multiprocessing.process.BaseProcess]
    start: MpEvent
    out: multiprocessing.Queue[dict[str, Any]]

    def go(self) -> float:
        """Release every publisher at once; returns the release time (monotonic)."""
        released = time.monotonic()
        self.start.set()
        return released

    def results(self, timeout: float = 300.0) -> dict[str, Any]:
        """Wait for every publisher; totals and the group's rate (sent over its wall time)."""
        parts = [self.out.get(timeout=timeout) for _ in self.procs]
        for proc in self.procs:
            proc.join(10)
        sent = sum(p["sent"] for p in parts)
        started = min(p["started"] for p in parts)
        done = max(p["done"] for p in parts)
        return {
            "publishers": len(parts),
            "sent": sent,
            "acked": sum(p["acked"] for p in parts),
            "started": started,
            "done": done,
            "wall_s": round(done - started, 3),
            "msgs_per_s": round(sent / max(done - started, 1e-9)),
            "cpu_s": round(sum(p["cpu_s"] for p in parts), 2),
        }


def start_publishers(
    port: int,
    account: Account,
    load: Load,
    count: int,
    *,
    qos: int = 0,
    rate: float | None = None,
    window: int = 2000,
    tag: str = "pub",
) -> Publishers:
    """Fork `count` publishers, connected and waiting for go()."""
    start = MP.Event()
    out: multiprocessing.Queue[dict[str, Any]] = MP.Queue()
    procs = []
    for i, packets in enumerate(load.split(count)):
        proc = MP.Process(
            target=_publisher,
            args=(
                port,
                account,
                f"bench-{tag}-{i}",
                packets,
                qos,
                rate / count if rate else None,
                window,
                start,
                out,
            ),
            daemon=True,
        )
        proc.start()
        procs.append(proc)
    time.sleep(0.3)  # let them connect, so that go() measures publishing only
    return Publishers(procs, start, out)


# -- the bare subscriber (the ceiling) ---------------------------------------------------


def _bare_subscriber(
    port: int,
    account: Account,
    expected: int,
    ready: MpEvent,
    out: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """Count messages with plain paho (loop thread), recording when 10/90/100 % arrived."""
    marks = {max(1, expected // 10): "t10", max(1, expected * 9 // 10): "t90", expected: "t100"}
    times: dict[str, float] = {}
    count = 0

    def on_message(_c: paho.Client, _u: object, _m: paho.MQTTMessage) -> None:
        nonlocal count
        count += 1
        if count in marks:
            times[marks[count]] = time.monotonic()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=True)
    client.username_pw_set(*account)
    client.on_message = on_message
    client.on_subscribe = lambda *_: ready.set()
    client.on_connect = lambda c, *_: c.subscribe(
        [("sigap/devices/+/up", 1), ("sigap/gateways/+/up", 1)]
    )
    client.connect("127.0.0.1", port, keepalive=600)
    client.loop_start()
    last, changed = 0, time.monotonic()
    while count < expected and time.monotonic() - changed < 5.0:
        time.sleep(0.05)
        if count != last:
            last, changed = count, time.monotonic()
    client.disconnect()
    client.loop_stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put({"count": count, **times, "cpu_s": usage.ru_utime + usage.ru_stime})


def ceiling(
    port: int, sub: Account, pub: Account, load: Load, publishers: int, expected: int
) -> dict[str, Any]:
    """The bare subscriber's rate for this load, with the publishers' own rate."""
    ready = MP.Event()
    out: multiprocessing.Queue[dict[str, Any]] = MP.Queue()
    proc = MP.Process(target=_bare_subscriber, args=(port, sub, expected, ready, out), daemon=True)
    proc.start()
    if not ready.wait(15):
        raise SystemExit("bare subscriber did not subscribe")
    group = start_publishers(port, pub, load, publishers, tag="ceil")
    released = group.go()
    pubs = group.results()
    got = out.get(timeout=600)
    proc.join(10)
    rate = _slope(0.8 * expected, got.get("t10"), got.get("t90"))
    return {
        "received": got["count"],
        "expected": expected,
        "msgs_per_s": round(rate),
        "overall_msgs_per_s": round(got["count"] / (got.get("t100", time.monotonic()) - released)),
        "subscriber_cpu_s": round(got["cpu_s"], 2),
        "publish": _public(pubs),
    }


def _slope(amount: float, t0: float | None, t1: float | None) -> float:
    return amount / (t1 - t0) if t0 is not None and t1 is not None and t1 > t0 else 0.0


def _public(pubs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in pubs.items() if k not in ("started", "done")}


# -- `sigap up` and its counters ---------------------------------------------------------


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Stack:
    """The processes under test and how to ask them things."""

    api: str
    influx: str
    pids: dict[str, int]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    workers: list[str] = field(default_factory=list)  # `sigap ingest` workers' health ports

    def metrics(self) -> dict[str, float]:
        """Sigap's /metrics as name{labels} -> value, summed over every worker."""
        values: dict[str, float] = {}
        for api in (self.api, *self.workers):
            response = self.http.get(
                f"{api}/metrics", headers={"Authorization": f"Bearer {BENCH_TOKEN}"}
            )
            response.raise_for_status()
            for line in response.text.splitlines():
                if line and not line.startswith("#"):
                    name, _, value = line.rpartition(" ")
                    values[name] = values.get(name, 0.0) + float(value)
        return values

    def written(self) -> float:
        """Readings Sigap has written to InfluxDB so far."""
        return self.metrics().get("sigap_influx_written_readings_total", 0.0)

    def stored(self, ts_range: tuple[int, int]) -> int:
        """Readings InfluxDB holds with event times in the range (inclusive)."""
        query = (
            f'SELECT count("seq") FROM "{MEASUREMENT}" '
            f"WHERE time >= {ts_range[0]}ms AND time <= {ts_range[1]}ms"
        )
        response = self.http.get(f"{self.influx}/query", params={"db": "sigap", "q": query})
        response.raise_for_status()
        series = response.json()["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process."""
        return {name: _cpu_s(pid) for name, pid in self.pids.items()}


def follow(stack: Stack, base: float, expected: int, stall_s: float = 10.0) -> dict[str, Any]:
    """Sample Sigap's written-readings counter until `expected` more than `base` are written
    (or it stalls); times when 10 %, 90 % and 100 % were reached."""
    samples: list[tuple[float, float]] = [(time.monotonic(), stack.written() - base)]
    changed = samples[0][0]
    while samples[-1][1] < expected and time.monotonic() - changed < stall_s:
        # Each /metrics request costs `sigap up` about 10 ms of its event loop: polled ten
        # times a second it took a tenth of the loop, twice a second it takes 2 %. The
        # 10 %/90 % times are interpolated between samples.
        time.sleep(0.5)
        value = stack.written() - base
        now = time.monotonic()
        if value != samples[-1][1]:
            changed = now
        samples.append((now, value))
    return {
        "written": int(samples[-1][1]),
        "t10": _crossing(samples, expected * 0.1),
        "t90": _crossing(samples, expected * 0.9),
        "t100": _crossing(samples, expected),
    }


def histogram(
    metrics: dict[str, float], name: str, since: dict[str, float] | None = None
) -> dict[str, dict[str, Any]]:
    """A Prometheus histogram per label set (what was observed after `since`, if given):
    count, sum, and the smallest bucket bound holding every observation (the largest
    value is at most this; None if only +Inf does)."""
    groups: dict[str, dict[str, Any]] = {}
    for key, total in metrics.items():
        if not key.startswith(name + "_"):
            continue
        value = total - (since or {}).get(key, 0.0)
        suffix, _, labels = key[len(name) + 1 :].partition("{")
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        le = pairs.pop("le", None)
        group = groups.setdefault(",".join(pairs.values()) or "all", {"buckets": []})
        if suffix == "bucket" and le is not None:
            group["buckets"].append((float(le), value))
        elif suffix in ("count", "sum"):
            group[suffix] = value
    summary: dict[str, dict[str, Any]] = {}
    for label, group in sorted(groups.items()):
        count = group.get("count", 0.0)
        bounds = sorted(group["buckets"])
        top = next((le for le, n in bounds if n >= count and not math.isinf(le)), None)
        summary[label] = {
            "count": int(count),
            "sum_s": round(group.get("sum", 0.0), 3),
            "max_le_s": top if count else 0.0,
        }
    return summary


def _crossing(samples: list[tuple[float, float]], level: float) -> float | None:
    """When the sampled counter reached `level` (linear between samples)."""
    if samples and samples[0][1] >= level:
        return samples[0][0]  # already there at the first sample
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if v1 >= level > v0:
            return t0 + (t1 - t0) * (level - v0) / (v1 - v0)
    return None


def sigap_phase(
    stack: Stack,
    port: int,
    pub: Account,
    load: Load,
    publishers: int,
    *,
    qos: int = 0,
    tag: str,
    on_start: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Publish a load flat out into `sigap up`; its end-to-end rate and what was lost."""
    cpu0 = stack.cpu()
    base = stack.written()
    group = start_publishers(port, pub, load, publishers, qos=qos, tag=tag)
    if on_start is not None:
        on_start()
    results: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=lambda: results.put(group.results()), daemon=True).start()
    released = group.go()
    progress = follow(stack, base, load.readings)
    pubs = results.get(timeout=600)
    cpu1 = stack.cpu()
    stored = stack.stored(load.ts_range)
    messages = len(load.packets)
    rate = _slope(0.8 * load.readings, progress["t10"], progress["t90"])
    done = progress["t100"]
    offered = pubs["acked"] if qos else pubs["sent"]
    offered_readings = offered * load.readings // messages
    return {
        "qos": qos,
        "messages": messages,
        "readings": load.readings,
        "readings_per_s": round(rate),
        "msgs_per_s": round(rate * messages / load.readings),
        "overall_readings_per_s": round(load.readings / (done - released)) if done else None,
        "published_readings": offered_readings,
        "stored": stored,
        "lost": offered_readings - stored,
        "cpu_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0},
        "publish": _public(pubs),
    }


def start_sigap(
    work: Path,
    accounts: devstack.BrokerAuth,
    mqtt_port: int,
    influx: str,
    extra_env: dict[str, str],
    command: str = "up",
) -> tuple[subprocess.Popen[bytes], str]:
    """`sigap up` (or `sigap ingest`) against the bench broker and InfluxDB, once /readyz
    says ready."""
    api_port = devstack.free_port()
    env = (
        os.environ
        | {
            "SIGAP_MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}",
            "SIGAP_INFLUX_URL": influx,
            "SIGAP_DATA_DIR": str(work / "sigap"),
            "SIGAP_API_PORT": str(api_port),
            "SIGAP_LOG_LEVEL": "WARNING",
            "SIGAP_ADMIN_TOKEN": BENCH_TOKEN,
            "SIGAP_MQTT_USERNAME": accounts.service_username,
            "SIGAP_MQTT_PASSWORD": accounts.service_password,
            # No route plans while we measure (nothing registers a depot anyway).
            "SIGAP_ROUTES_SCHEDULE": "false",
        }
        | extra_env
    )
    name = f"sigap-{command}-{extra_env.get('SIGAP_INGEST_WORKER', '0')}"
    with (work / f"{name}.log").open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "sigap", command], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    api = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{api}/readyz").status_code == 200:
                return up, api
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or up.poll() is not None:
            up.kill()
            raise SystemExit(f"sigap {command} did not start; see {work / name}.log")
        time.sleep(0.2)


# -- alert latency ---------------------------------------------------------------------


class AlertWatcher:
    """Reads /api/v1/alerts/stream in a thread; notes when each probe's alert arrives."""

    def __init__(self, api: str, probes: set[str]) -> None:
        self.seen: dict[str, float] = {}
        self.kinds: collections.Counter[str] = collections.Counter()
        self._probes = probes
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(api,), daemon=True)
        self._thread.start()
        if not self._connected.wait(15):
            raise SystemExit("could not open the alert stream")

    def _run(self, api: str) -> None:
        headers = {"Authorization": f"Bearer {BENCH_TOKEN}", "Accept": "text/event-stream"}
        with (
            contextlib.suppress(httpx.HTTPError),  # `sigap up` stopping cuts the stream
            httpx.Client(timeout=None) as client,
            client.stream("GET", f"{api}/api/v1/alerts/stream", headers=headers) as response,
        ):
            response.raise_for_status()
            self._connected.set()
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                arrived = time.monotonic()
                alert = orjson.loads(line[5:])
                self.kinds[alert.get("kind", "?")] += 1
                device = alert.get("device_id")
                if device in self._probes and device not in self.seen:
                    self.seen[device] = arrived


class ProbeEcho:
    """Subscribes to the probes' own topics: when the broker delivered each probe, to tell
    a broker stall from one inside Sigap."""

    def __init__(self, port: int, account: Account, probes: list[str]) -> None:
        self.seen: dict[str, float] = {}
        ready = threading.Event()

        def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
            self.seen.setdefault(message.topic.split("/")[2], time.monotonic())

        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-echo")
        self._client.username_pw_set(*account)
        self._client.on_message = on_message
        self._client.on_subscribe = lambda *_: ready.set()
        self._client.on_connect = lambda c, *_: c.subscribe(
            [(DEVICE_TOPIC.format(p), 0) for p in probes]
        )
        self._client.connect("127.0.0.1", port, keepalive=600)
        self._client.loop_start()
        if not ready.wait(15):
            raise SystemExit("probe echo subscriber did not subscribe")

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def latency_phase(
    stack: Stack,
    port: int,
    pub: Account,
    echo_account: Account,
    fleet: Fleet,
    background: Load,
    rate: float,
    publishers: int,
    duration: float,
    probe_hz: float,
) -> dict[str, Any]:
    """Fire-alert latency (publish -> SSE) while publishers offer `rate` readings/s."""
    watcher = AlertWatcher(stack.api, set(fleet.probes))
    probes = fleet.probes[: int(max(duration - 2.0, 1.0) * probe_hz)]
    sent_at: dict[str, float] = {}
    echo = ProbeEcho(port, echo_account, probes)
    sock = connect(port, "bench-probe", pub)
    group = start_publishers(port, pub, background, publishers, rate=rate, tag="lat")
    results: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=lambda: results.put(group.results()), daemon=True).start()
    written0 = stack.written()
    cpu0 = stack.cpu()
    started = group.go()
    time.sleep(1.5)  # probes once the background load is steady
    for i, device in enumerate(probes):
        while time.monotonic() < started + 1.5 + i / probe_hz:
            time.sleep(0.001)
        payload = orjson.dumps(
            {"ts": int(time.time() * 1000), "seq": 1, "temp_c": 75.0, "smoke_obs_pct_m": 25.0}
        )
        packet = publish_packet(DEVICE_TOPIC.format(device), payload)
        sent_at[device] = time.monotonic()
        sock.sendall(packet)
    pubs = results.get(timeout=600)
    deadline = time.monotonic() + 5.0
    while len(watcher.seen) < len(probes) and time.monotonic() < deadline:
        time.sleep(0.05)
    _disconnect(sock)
    # Keeping up: everything offered is written soon after the publishers stop.
    progress = follow(stack, written0, pubs["sent"] + len(probes), stall_s=5.0)
    drain = progress["t100"] - pubs["done"] if progress["t100"] else None
    cpu1 = stack.cpu()
    echo.close()
    timed = [
        (
            sent_at[d] - started,
            (watcher.seen[d] - sent_at[d]) * 1000,
            (echo.seen[d] - sent_at[d]) * 1000 if d in echo.seen else math.nan,
        )
        for d in probes
        if d in watcher.seen
    ]
    latencies = sorted(ms for _, ms, _ in timed)
    hop = sorted((echo.seen[d] - sent_at[d]) * 1000 for d in probes if d in echo.seen)
    # The slowest probes with when they were sent: periodic stalls show up as a pattern.
    worst = sorted(timed, key=lambda item: -item[1])[:8]
    return {
        "offered_readings_per_s": round(rate),
        "publish": _public(pubs),
        "probes": len(probes),
        "alerts_seen": len(latencies),
        "alert_kinds": dict(watcher.kinds),
        "p50_ms": round(_percentile(latencies, 50), 1),
        "p90_ms": round(_percentile(latencies, 90), 1),
        "p99_ms": round(_percentile(latencies, 99), 1),
        "max_ms": round(latencies[-1], 1) if latencies else None,
        # Publish -> delivered by the broker to a bare subscriber, for the same probes.
        "broker_hop_p50_ms": round(_percentile(hop, 50), 1),
        "broker_hop_p99_ms": round(_percentile(hop, 99), 1),
        "broker_hop_max_ms": round(hop[-1], 1) if hop else None,
        # (sent at s, to SSE ms, to the bare subscriber ms) of the slowest probes.
        "worst_at_s_ms_hop_ms": [
            (round(at, 2), round(ms), round(hop_ms)) for at, ms, hop_ms in sorted(worst)
        ],
        "background_published": pubs["sent"],
        "background_stored": stack.stored(background.ts_range),
        # Resolution: the 0.5 s /metrics poll.
        "written_after_publishers_stopped_s": round(drain, 2) if drain is not None else None,
        "cpu_s": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu0},
    }


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    rank = min(len(values) - 1, max(0, math.ceil(pct / 100 * len(values)) - 1))
    return values[rank]  # nearest rank


# -- profiling ---------------------------------------------------------------------------


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy record of `sigap up` in collapsed-stack (raw) form, until SIGINT."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    # py-spy pauses the process for each sample (~20 threads): at 200 Hz that cut the rate
    # by two thirds, so sample at 50 Hz. --nonblocking costs less but gave torn stacks.
    argv = [spy, "record", "--pid", str(pid), "--rate", "50"]
    return subprocess.Popen(
        [*argv, "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Where the event-loop thread spends its time, from py-spy's collapsed stacks.

    Worker threads (aiosqlite, thread pools) are left out: they block in C calls that
    py-spy cannot tell from work. Samples in the selector (epoll) count as idle.
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    loop = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]  # merge lines
        if not stack or frames[0].startswith("Thread._bootstrap"):
            continue
        count = int(count_text)
        loop += count
        if frames[-1].startswith("EpollSelector.select"):
            idle += count
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    busy = max(loop - idle, 1)

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / busy, 1)) for name, n in counter.most_common(top)]

    return {
        "loop_samples": loop,
        "loop_busy_pct": round(100 * (loop - idle) / max(loop, 1), 1),
        "self_pct_of_busy": share(own),
        "inclusive_pct_of_busy": share(inclusive),
    }


# -- main --------------------------------------------------------------------------------


def main() -> None:
    """Run every phase and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=150_000, help="single-reading messages")
    parser.add_argument("--gateway-messages", type=int, default=6000)
    parser.add_argument("--devices", type=int, default=2000, help="direct-reporting devices")
    parser.add_argument("--gateways", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50, help="readings per gateway message")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--latency-duration", type=float, default=10.0)
    parser.add_argument("--probe-hz", type=float, default=20.0, help="fire probes per second")
    parser.add_argument("--qos1-messages", type=int, default=20_000, help="0 skips the check")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy `sigap up` in the single, gateway and latency phases; files here",
    )
    parser.add_argument(
        "--sigap-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for `sigap up`, e.g. SIGAP_INGEST_BATCH_WINDOW_MS=20 (repeatable)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="ingest workers: `sigap up` plus N-1 `sigap ingest` (shared subscription)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    began = time.monotonic()

    now = int(time.time() * 1000)
    base = now - 3 * 86_400_000  # well inside the accepted 7 days, phases in order after it
    probes = int(args.latency_duration * args.probe_hz) + 10
    fleet = make_fleet(args.devices, args.gateways, args.batch, probes)
    singles = single_load(fleet.singles, args.messages, base)
    gateway = gateway_load(fleet, args.gateway_messages, base + PHASE_SPAN_MS)
    encoded_s = time.monotonic() - began

    work = Path(tempfile.mkdtemp(prefix="sigap-ceiling-"))
    accounts = devstack.dev_accounts(work / "accounts.json")
    dev, service = accounts.developer, (accounts.service_username, accounts.service_password)
    assert dev is not None
    mqtt_port, influx_port = devstack.free_port(), devstack.free_port()
    broker = devstack.start_mosquitto(mqtt_port, work, accounts)
    influxd = devstack.start_influxd(influx_port, work)
    influx = f"http://127.0.0.1:{influx_port}"
    up: subprocess.Popen[bytes] | None = None
    others: list[subprocess.Popen[bytes]] = []  # `sigap ingest` workers
    result: dict[str, Any] = {"bench": "ingest_ceiling", "workers": args.workers}
    try:
        # The ceilings first, while nothing else subscribes.
        print("ceiling: bare paho subscriber ...", file=sys.stderr, flush=True)
        ceil_single = ceiling(mqtt_port, service, dev, singles, args.publishers, args.messages)
        ceil_gateway = ceiling(
            mqtt_port, service, dev, gateway, args.publishers, args.gateway_messages
        )
        ceil_gateway["readings_per_s"] = ceil_gateway["msgs_per_s"] * args.batch

        extra = dict(item.split("=", 1) for item in args.sigap_env)
        if args.workers > 1:
            # One SQLite file in the shared data dir is enough for a bench on one machine.
            extra |= {"SIGAP_INGEST_WORKERS": str(args.workers), "SIGAP_INGEST_WORKER": "0"}
        up, api = start_sigap(work, accounts, mqtt_port, influx, extra)
        stack = Stack(
            api,
            influx,
            {"sigap": up.pid, "mosquitto": broker.process.pid, "influxd": influxd.process.pid},
        )
        for k in range(1, args.workers):
            worker, worker_api = start_sigap(
                work, accounts, mqtt_port, influx, extra | {"SIGAP_INGEST_WORKER": str(k)}, "ingest"
            )
            others.append(worker)
            stack.workers.append(worker_api)
            stack.pids[f"sigap-ingest-{k}"] = worker.pid
        response = stack.http.post(
            f"{api}/api/v1/devices/import",
            content=fleet.csv(),
            headers={"Authorization": f"Bearer {BENCH_TOKEN}", "Content-Type": "text/csv"},
        )
        response.raise_for_status()

        print("sigap: single readings ...", file=sys.stderr, flush=True)
        spy: subprocess.Popen[bytes] | None = None
        profile_path = args.profile / "single.txt" if args.profile else None

        def profile() -> None:
            nonlocal spy
            if profile_path is not None and up is not None:
                spy = start_profile(up.pid, profile_path)
                time.sleep(1.0)  # py-spy attaches before the load starts

        single = sigap_phase(
            stack, mqtt_port, dev, singles, args.publishers, tag="one", on_start=profile
        )
        if spy is not None:
            spy.send_signal(2)  # SIGINT: py-spy writes what it has
            spy.wait(30)
        print("sigap: gateway batches ...", file=sys.stderr, flush=True)
        if args.profile is not None:
            spy = start_profile(up.pid, args.profile / "gateway.txt")
            time.sleep(1.0)
        batches = sigap_phase(stack, mqtt_port, dev, gateway, args.publishers, tag="gw")
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)

        print("sigap: alert latency ...", file=sys.stderr, flush=True)
        # Half of the sustained rate: the 10..90 % slope, or the whole phase's rate where that
        # is lower (the slope overstates it when Sigap works off a queued backlog in bursts).
        sustained = min(single["readings_per_s"], single["overall_readings_per_s"] or math.inf)
        half = max(sustained, 2000) / 2
        background = single_load(
            fleet.singles,
            int(half * args.latency_duration),
            base + 2 * PHASE_SPAN_MS,
            seed=3,
        )
        if args.profile is not None:
            spy = start_profile(up.pid, args.profile / "latency.txt")
            time.sleep(1.0)
        before_latency = stack.metrics()
        latency = latency_phase(
            stack,
            mqtt_port,
            dev,
            service,
            fleet,
            background,
            half,
            args.publishers,
            args.latency_duration,
            args.probe_hz,
        )
        # What the alerts waited behind in this phase: collector pauses, a late event loop,
        # SQL commits, and how long readings waited in ingest.
        after_latency = stack.metrics()
        for key, name in (
            ("gc_pauses", "sigap_gc_pause_seconds"),
            ("loop_lag", "sigap_event_loop_lag_seconds"),
            ("alert_commit", "sigap_alert_commit_seconds"),
            ("ingest_lag", "sigap_ingest_lag_seconds"),
        ):
            latency[key] = histogram(after_latency, name, before_latency)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
        qos1: dict[str, Any] | None = None
        if args.qos1_messages:
            print("sigap: QoS 1 loss check ...", file=sys.stderr, flush=True)
            q1 = single_load(fleet.singles, args.qos1_messages, base + 3 * PHASE_SPAN_MS, qos=1)
            qos1 = sigap_phase(stack, mqtt_port, dev, q1, args.publishers, qos=1, tag="q1")
        final = stack.metrics()
        rss_kb = int(Path(f"/proc/{up.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        rss_workers = [
            int(Path(f"/proc/{w.pid}/status").read_text().split("VmRSS:")[1].split()[0]) / 1024
            for w in others
        ]
        result |= {
            "ceiling_single": ceil_single,
            "ceiling_gateway": ceil_gateway,
            "sigap_single": single,
            "sigap_gateway": batches,
            "latency": latency,
            "qos1_loss": qos1,
            "sigap_queue_overflow": sum(
                v for k, v in final.items() if k.startswith("sigap_ingest_queue_overflow_total")
            ),
            "sigap_rejected": sum(
                v for k, v in final.items() if k.startswith("sigap_ingest_rejected_total")
            ),
            "sigap_gc_pauses": histogram(final, "sigap_gc_pause_seconds"),
            "sigap_up_rss_mb": round(rss_kb / 1024, 1),
            "sigap_ingest_rss_mb": [round(r, 1) for r in rss_workers],
        }
        if args.profile is not None:
            result["profile"] = {
                path.stem: summarise_profile(path) | {"file": str(path)}
                for path in (
                    args.profile / f"{name}.txt" for name in ("single", "gateway", "latency")
                )
                if path.exists()
            }
    finally:
        for process in [*others, *([up] if up is not None else [])]:
            process.terminate()
            process.wait(60)
        influxd.stop()
        broker.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    ceiling_rate = ceil_single["msgs_per_s"]
    result |= {
        "ratios": {
            "single_vs_ceiling": round(single["msgs_per_s"] / ceiling_rate, 3)
            if ceiling_rate
            else None,
            "single_target": 0.7,
            "gateway_readings_per_s": batches["readings_per_s"],
            "gateway_vs_target_200k": round(batches["readings_per_s"] / 200_000, 3),
            "gateway_vs_its_ceiling": round(
                batches["readings_per_s"] / ceil_gateway["readings_per_s"], 3
            )
            if ceil_gateway["readings_per_s"]
            else None,
            "latency_p99_ms": latency["p99_ms"],
            "latency_target_p99_ms": 100,
            "lost": single["lost"] + batches["lost"] + (qos1["lost"] if qos1 else 0),
        },
        "profiled": args.profile is not None,
        "sigap_env": args.sigap_env,
        "encode_s": round(encoded_s, 1),
        "payload_bytes_single": round(singles.payload_bytes / len(singles.packets)),
        "payload_bytes_gateway": round(gateway.payload_bytes / len(gateway.packets)),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.monotonic() - began, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
