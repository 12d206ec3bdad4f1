"""Soak: a large registered fleet reporting once a minute through gateways, at QoS 1.

Issue #9: "1M registered devices, each reporting once a minute, for 10 minutes: sustained
with zero loss. Record the memory of each process." One run:

1. starts mosquitto and influxd (sigap.devstack, the repo's configs) and `sigap up`
   (bench.ingest_ceiling.start_sigap);
2. registers the fleet through the API, timed: N/per_gateway `mqtt` gateways
   (POST /api/v1/gateways), then N devices (POST /api/v1/devices/import, CSV chunks of at
   most 10,000 rows, the import's limit): 70 % fire detectors, 30 % bins (half report
   distance_mm, half fill_pct), all with reporting_interval_s = 60;
3. restarts `sigap up` with the same environment, so that it loads the whole registry at
   start as it would in production: its start time (to /readyz 200) and RSS are recorded;
4. for --minutes, every gateway publishes one batch of its devices' readings a minute, at
   its own offset in the minute (N/60 readings/s spread evenly), at QoS 1, from raw-socket
   publishers in their own processes that count each PUBACK's readings. Event time is the
   publish time. Values are a quiet tropical day: no fire, no bin past 60 % full, no low
   battery, so alerts should stay at 0;
5. every 10 s: Sigap's written readings, its ingest gauges, and RSS and CPU seconds of
   every process (`sigap up`, mosquitto, influxd, publishers) from /proc;
6. after the publishers stop: waits (bounded) for Sigap to write what was acknowledged,
   counts the run's readings in InfluxDB minute by minute (event time), and reports
   lost = acknowledged - stored (must be 0).

Sustained: nothing lost, the backlog (acknowledged by the broker - settled by Sigap, i.e.
written or refused by InfluxDB) does not grow over the run (its least-squares slope adds
up to less than 5 s of load over the run), and it drains within 10 s of the last publish.

InfluxDB 1.x by default refuses new values of a tag past 100,000 (max-values-per-tag) and
series past 1,000,000 (max-series-per-database); every device is a device_id tag value.
The repo's influxdb.conf lifts both (this bench found it: before, the readings of every
device past the 100,000th were refused). --influx-env NAME=VALUE passes other influxd
settings for one run.

Usage: .venv/bin/python -m bench.soak [--devices 1000000] [--minutes 10] [--per-gateway 50]
       [--publishers 2] [--sigap-env NAME=VALUE ...] [--influx-env NAME=VALUE ...] [--keep]
Progress goes to stderr; the last output line is one JSON object.
"""

from __future__ import annotations

import argparse
import concurrent.futures
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
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import httpx

from bench.ingest_ceiling import (
    BENCH_TOKEN,
    GATEWAY_TOPIC,
    MP,
    Account,
    Stack,
    connect,
    histogram,
    publish_packet,
    start_sigap,
)
from sigap import devstack

SAMPLE_S = 10.0
IMPORT_ROWS = 10_000  # devices.importer.MAX_ROWS: a bigger file is refused whole
CSV_HEADER = "id,kind,lat,lon,district,depth_mm,gateway_id,reporting_interval_s"
REPORT_EVERY_S = 60
AUTH = {"Authorization": f"Bearer {BENCH_TOKEN}"}
# Per publisher, in its slot of the shared counters array (main samples them live).
SENT_MSGS, SENT_READINGS, ACKED_MSGS, ACKED_READINGS = range(4)
SLOTS = 4
# Ingest gauges sampled with the written count; the soak reports the largest of each.
GAUGES = (
    "sigap_influx_pending_readings",
    "sigap_ingest_unacked_messages",
    "sigap_ingest_queued_messages",
    "sigap_ingest_staged_readings",
    "sigap_spool_readings",
)


def log(text: str) -> None:
    """A progress line on stderr."""
    print(f"[soak {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- the fleet ---------------------------------------------------------------------------


def _unit(n: int) -> float:
    """A fixed pseudo-random number in [0, 1) per integer (Knuth's multiplicative hash)."""
    return ((n * 2654435761) % 2**32) / 2**32


@dataclass(frozen=True)
class Fleet:
    """N devices behind ceil(N / per_gateway) gateways; everything derives from indices,
    so that a million devices cost no memory in the publishers."""

    devices: int
    per_gateway: int

    @property
    def gateways(self) -> int:
        """How many gateways."""
        return -(-self.devices // self.per_gateway)

    def gateway_id(self, g: int) -> str:
        """Gateway g's id."""
        return f"sgw{g:06d}"

    def device_id(self, j: int) -> str:
        """Device j's id."""
        return f"sd{j:07d}"

    def members(self, g: int) -> range:
        """Indices of the devices behind gateway g."""
        return range(g * self.per_gateway, min(self.devices, (g + 1) * self.per_gateway))

    def offset_s(self, g: int) -> float:
        """When in each minute gateway g forwards its batch: evenly spread."""
        return 60.0 * g / self.gateways

    @staticmethod
    def is_bin(j: int) -> bool:
        """70 % fire detectors, 30 % bins, interleaved so every gateway has both."""
        return j % 10 >= 7

    @staticmethod
    def depth_mm(j: int) -> int:
        """A bin's depth: 800..1300 mm."""
        return 800 + 100 * (j % 6)

    def location(self, j: int) -> tuple[float, float]:
        """A grid about 55 m apart around Sampit, gateway members side by side."""
        return -2.80 + (j % 1000) * 0.0005, 112.70 + (j // 1000) * 0.0005

    def csv_chunks(self, rows: int) -> Iterator[tuple[int, bytes]]:
        """POST /api/v1/devices/import bodies of at most `rows` devices, with their counts."""
        for start in range(0, self.devices, rows):
            lines = [CSV_HEADER]
            stop = min(self.devices, start + rows)
            for j in range(start, stop):
                lat, lon = self.location(j)
                kind, depth = ("bin", str(self.depth_mm(j))) if self.is_bin(j) else ("fire", "")
                gateway = self.gateway_id(j // self.per_gateway)
                lines.append(
                    f"{self.device_id(j)},{kind},{lat:.5f},{lon:.5f},Baamang,{depth},{gateway},60"
                )
            yield stop - start, ("\n".join(lines) + "\n").encode()

    def reading(self, j: int, minute: int, ts: int, rng: random.Random) -> str:
        """Device j's reading of this minute as JSON text (by hand: ~17k/s must stay cheap).

        Quiet tropical day: detectors 24..36 C drifting at most 0.3 C/min (rate of rise
        alarms at 8.3), smoke under 0.3 %/m (pre-alarm at 5); bins 5..60 % full and steady
        (nearly full at 75), level, batteries 40..99 %.
        """
        head = f'{{"device_id":"sd{j:07d}","ts":{ts},"seq":{minute},'
        tail = f',"battery_pct":{40 + j % 60},"rssi_dbm":{-60 - (j * 7) % 55}}}'
        drift = 0.5 * math.sin(2 * math.pi * (minute / 10 + _unit(j + 7)))
        if not self.is_bin(j):
            temp = 24.5 + 11.0 * _unit(j) + drift + 0.1 * rng.random()
            return (
                f'{head}"temp_c":{temp:.2f},"smoke_obs_pct_m":{0.3 * rng.random():.2f},'
                f'"humidity_pct":{55 + int(40 * _unit(j + 3))}{tail}'
            )
        fill = 5.0 + 55.0 * _unit(j)
        temp = 28.0 + 5.0 * _unit(j + 11) + drift
        if (j // 10) % 2:
            level = f'"fill_pct":{fill + 0.6 * rng.random() - 0.3:.1f}'
        else:
            distance = self.depth_mm(j) * (1 - fill / 100) + rng.randint(-3, 3)
            level = f'"distance_mm":{distance:.0f}'
        return f'{head}{level},"tilt_deg":{3 * rng.random():.1f},"temp_c":{temp:.2f}{tail}'


# -- publishers (separate processes) ----------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(pct: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]

    return {"p50": round(rank(50), 3), "p99": round(rank(99), 3), "max": round(ordered[-1], 3)}


def _publisher(
    port: int,
    account: Account,
    client_id: str,
    fleet: Fleet,
    gateways: Sequence[int],
    minutes: int,
    window: int,
    start: MpEvent,
    counters: Any,  # the shared array of int64 counters (multiprocessing.Array, no lock)
    slot: int,
    out: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """Publish each gateway's batch once a minute at its offset, QoS 1; report what it did."""
    sock = connect(port, client_id, account)
    base = slot * SLOTS
    # Readings in the message with each packet id: a PUBACK names its packet id, so the
    # acknowledged count is exact (packet ids are not reused while unacknowledged).
    readings_of = [0] * 65536
    acked = 0
    ack_lock = threading.Condition()
    bad_acks = 0

    def count_acks() -> None:
        # The broker sends this client nothing but PUBACKs (0x40 0x02 id id).
        nonlocal acked, bad_acks
        buffer = b""
        while chunk := sock.recv(65536):
            buffer += chunk
            whole = len(buffer) - len(buffer) % 4
            readings = 0
            for i in range(0, whole, 4):
                if buffer[i] != 0x40:
                    bad_acks += 1
                readings += readings_of[(buffer[i + 2] << 8) | buffer[i + 3]]
            buffer = buffer[whole:]
            with ack_lock:
                acked += whole // 4
                counters[base + ACKED_MSGS] = acked
                counters[base + ACKED_READINGS] += readings
                ack_lock.notify_all()

    reader = threading.Thread(target=count_acks, daemon=True)
    reader.start()
    rng = random.Random(slot)
    lags: list[float] = []
    sent = sent_readings = 0
    ts_min, ts_max = 2**63, 0
    start.wait()
    started = time.monotonic()
    last_send = started
    for minute in range(minutes):
        for g in gateways:
            due = started + minute * 60 + fleet.offset_s(g)
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with ack_lock:  # at most `window` messages unacknowledged
                while sent - acked >= window:
                    ack_lock.wait()
            ts = time.time_ns() // 1_000_000  # event time = the publish time
            members = fleet.members(g)
            payload = (
                '{"readings":['
                + ",".join(fleet.reading(j, minute, ts, rng) for j in members)
                + "]}"
            ).encode()
            packet_id = sent % 65535 + 1
            readings_of[packet_id] = len(members)
            sock.sendall(
                publish_packet(GATEWAY_TOPIC.format(fleet.gateway_id(g)), payload, 1, packet_id)
            )
            last_send = time.monotonic()
            lags.append(max(0.0, last_send - due))
            sent += 1
            sent_readings += len(members)
            counters[base + SENT_MSGS] = sent
            counters[base + SENT_READINGS] = sent_readings
            ts_min, ts_max = min(ts_min, ts), max(ts_max, ts)
    with ack_lock:  # every PUBACK, or give up after a while (reported as not acked)
        deadline = time.monotonic() + 120
        while acked < sent and time.monotonic() < deadline:
            ack_lock.wait(1.0)
    done = time.monotonic()
    # DISCONNECT, then wait for the broker to close: it has handled every packet.
    sock.sendall(b"\xe0\x00")
    sock.shutdown(socket.SHUT_WR)
    reader.join(30)
    sock.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.put(
        {
            "sent": sent,
            "sent_readings": sent_readings,
            "acked": acked,
            "acked_readings": int(counters[base + ACKED_READINGS]),
            "bad_acks": bad_acks,
            "started": started,
            "last_send": last_send,
            "done": done,
            "ts_range": (ts_min, ts_max),
            "lags": lags,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "max_rss_mb": usage.ru_maxrss / 1024,
        }
    )


@dataclass
class Publishers:
    """The publisher processes, their shared counters and their reports."""

    procs: Sequence[multiprocessing.process.BaseProcess]
    start: MpEvent
    counters: Any
    out: multiprocessing.Queue[dict[str, Any]]

    def totals(self) -> dict[str, int]:
        """Live sums of the counters over every publisher."""
        names = {"sent": SENT_MSGS, "sent_readings": SENT_READINGS}
        names |= {"acked": ACKED_MSGS, "acked_readings": ACKED_READINGS}
        n = len(self.procs)
        return {
            k: sum(int(self.counters[i * SLOTS + s]) for i in range(n)) for k, s in names.items()
        }


def start_publishers(
    port: int, account: Account, fleet: Fleet, count: int, minutes: int, window: int
) -> Publishers:
    """Fork `count` publishers (gateways dealt round-robin, so each publisher's batches
    are spread over the whole minute), connected and waiting for the start event."""
    start = MP.Event()
    out: multiprocessing.Queue[dict[str, Any]] = MP.Queue()
    counters = MP.Array("q", SLOTS * count, lock=False)
    procs = []
    for i in range(count):
        mine = range(i, fleet.gateways, count)
        proc = MP.Process(
            target=_publisher,
            args=(
                port,
                account,
                f"soak-pub-{i}",
                fleet,
                mine,
                minutes,
                window,
                start,
                counters,
                i,
                out,
            ),
            daemon=True,
        )
        proc.start()
        procs.append(proc)
    time.sleep(0.5)  # let them connect
    return Publishers(procs, start, counters, out)


# -- processes, metrics -----------------------------------------------------------------


def proc_stats(pid: int) -> tuple[float, float, float] | None:
    """(RSS MB, peak RSS MB, CPU seconds) of a live process; None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rss = re.search(r"VmRSS:\s+(\d+)", status)
    hwm = re.search(r"VmHWM:\s+(\d+)", status)
    if rss is None or hwm is None:
        return None  # a zombie has no memory lines
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return int(rss.group(1)) / 1024, int(hwm.group(1)) / 1024, cpu


@dataclass
class Sample:
    """One look at every counter, t seconds after the publishers were released."""

    t: float
    sent: int
    acked: int
    settled: float  # written to InfluxDB, or refused by it, since the load started
    gauges: dict[str, float]
    procs: dict[str, tuple[float, float, float]]

    @property
    def backlog(self) -> float:
        """Readings acknowledged by the broker that Sigap has not settled yet."""
        return self.acked - self.settled


@dataclass
class Sampler:
    """Takes Samples of the stack and the publishers."""

    stack: Stack
    publishers: Publishers | None
    released: float
    settled0: float
    samples: list[Sample] = field(default_factory=list)

    def pids(self) -> dict[str, int]:
        """Every process to look at, by name."""
        pids = dict(self.stack.pids)
        if self.publishers is not None:
            procs = enumerate(self.publishers.procs)
            pids |= {f"publisher-{i}": p.pid for i, p in procs if p.pid and p.is_alive()}
        return pids

    def take(self) -> Sample:
        """Sample now and keep it."""
        metrics = self.stack.metrics()
        totals = self.publishers.totals() if self.publishers else {}
        procs = {name: s for name, pid in self.pids().items() if (s := proc_stats(pid))}
        sample = Sample(
            t=time.monotonic() - self.released,
            sent=totals.get("sent_readings", 0),
            acked=totals.get("acked_readings", 0),
            settled=settled(metrics) - self.settled0,
            gauges={g: metrics.get(g, 0.0) for g in GAUGES},
            procs=procs,
        )
        self.samples.append(sample)
        return sample


def settled(metrics: dict[str, float]) -> float:
    """Readings Sigap is done with: written to InfluxDB, or refused by it for good."""
    return metrics.get("sigap_influx_written_readings_total", 0.0) + metrics.get(
        "sigap_influx_refused_readings_total", 0.0
    )


def labelled(metrics: dict[str, float], name: str) -> dict[str, float]:
    """name{label="x"} values by x (the first label), for one counter family."""
    found: dict[str, float] = {}
    for key, value in metrics.items():
        if key.startswith(name + "{"):
            label = key.split('"')[1] if '"' in key else key
            found[label] = found.get(label, 0.0) + value
    return found


def _at(samples: Sequence[Sample], t: float, value: str) -> float:
    """A sampled counter at time t, linear between samples (held past the ends)."""
    points = [(s.t, float(getattr(s, value))) for s in samples]
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return points[-1][1]


def per_minute(samples: Sequence[Sample], value: str, minutes: int) -> list[int]:
    """Increase of a sampled counter in each minute since the release."""
    return [
        round(_at(samples, 60.0 * (k + 1), value) - _at(samples, 60.0 * k, value))
        for k in range(minutes)
    ]


def slope_per_min(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (t s, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 60.0 * sum((t - mt) * (v - mv) for t, v in points) / var if var else 0.0


# -- registration and restart -----------------------------------------------------------


def register(stack: Stack, fleet: Fleet, chunk_rows: int) -> dict[str, Any]:
    """Register the gateways, then the devices in CSV chunks; how long each took."""
    log(f"registering {fleet.gateways} gateways ...")
    began = time.monotonic()

    def gateway(g: int) -> None:
        lat, lon = fleet.location(g * fleet.per_gateway)
        body = {"id": fleet.gateway_id(g), "kind": "mqtt", "name": "", "lat": lat, "lon": lon}
        response = stack.http.post(f"{stack.api}/api/v1/gateways", json=body, headers=AUTH)
        response.raise_for_status()

    # A few requests in flight hide the round trips; the server commits one at a time.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in pool.map(gateway, range(fleet.gateways)):
            pass
    gateways_s = time.monotonic() - began
    log(f"{fleet.gateways} gateways in {gateways_s:.1f} s; importing {fleet.devices} devices ...")
    chunk_s: list[float] = []
    began = time.monotonic()
    done = 0
    for rows, body in fleet.csv_chunks(chunk_rows):
        t0 = time.monotonic()
        response = stack.http.post(
            f"{stack.api}/api/v1/devices/import",
            content=body,
            headers=AUTH | {"Content-Type": "text/csv"},
        )
        if response.status_code != 201:
            raise SystemExit(f"import refused ({response.status_code}): {response.text[:500]}")
        chunk_s.append(time.monotonic() - t0)
        done += rows
        if len(chunk_s) % 10 == 0 or done == fleet.devices:
            log(f"  {done} devices, last chunk {chunk_s[-1]:.2f} s")
    devices_s = time.monotonic() - began
    stats = proc_stats(stack.pids["sigap"])
    return {
        "gateways": fleet.gateways,
        "gateways_s": round(gateways_s, 1),
        "gateways_per_s": round(fleet.gateways / max(gateways_s, 1e-9)),
        "devices_s": round(devices_s, 1),
        "devices_per_s": round(fleet.devices / max(devices_s, 1e-9)),
        "chunk_rows": chunk_rows,
        "chunks": len(chunk_s),
        "chunk_s": {
            "first": round(chunk_s[0], 2),
            "last": round(chunk_s[-1], 2),
            "mean": round(sum(chunk_s) / len(chunk_s), 2),
            "max": round(max(chunk_s), 2),
        },
        "sigap_rss_mb_after": round(stats[0], 1) if stats else None,
    }


def restart_sigap(
    up: subprocess.Popen[bytes], api: str, log_path: Path, timeout: float
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Stop `sigap up` and start it again with the very environment it ran with (same
    API port), timing the stop and the start to /readyz 200."""
    # start_sigap builds the environment and waits only 60 s; read it back from /proc
    # rather than build it twice, and wait as long as a big registry needs.
    raw = Path(f"/proc/{up.pid}/environ").read_bytes()
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    t0 = time.monotonic()
    up.terminate()
    up.wait(300)
    stopped_s = time.monotonic() - t0
    with log_path.open("wb") as out:
        t0 = time.monotonic()
        new = subprocess.Popen(
            [sys.executable, "-m", "sigap", "up"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = t0 + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}/readyz", timeout=10).status_code == 200:
                break
        if new.poll() is not None or time.monotonic() > deadline:
            new.kill()
            raise SystemExit(f"sigap up did not start again; see {log_path}")
        time.sleep(0.2)
    start_s = time.monotonic() - t0
    stats = proc_stats(new.pid)
    return new, {
        "stop_s": round(stopped_s, 1),
        "start_s": round(start_s, 1),
        "rss_mb": round(stats[0], 1) if stats else None,
        "peak_rss_mb": round(stats[1], 1) if stats else None,  # VmHWM: loading included
    }


# -- the soak ----------------------------------------------------------------------------


def soak(
    stack: Stack,
    port: int,
    account: Account,
    fleet: Fleet,
    minutes: int,
    publishers: int,
    window: int,
) -> dict[str, Any]:
    """Publish for `minutes`, sample every 10 s, drain, count; the soak's own results."""
    group = start_publishers(port, account, fleet, publishers, minutes, window)
    metrics0 = stack.metrics()
    offered_rate = fleet.devices / 60
    sampler = Sampler(stack, group, time.monotonic(), settled(metrics0))
    group.start.set()
    sampler.take()
    reports: list[dict[str, Any]] = []
    next_at = SAMPLE_S
    next_report = REPORT_EVERY_S
    while len(reports) < len(group.procs):
        with contextlib.suppress(queue.Empty):  # nobody finished yet
            reports.append(group.out.get(timeout=0.5))
            continue
        if time.monotonic() - sampler.released >= next_at:
            s = sampler.take()
            next_at += SAMPLE_S
            if s.t >= next_report:
                next_report += REPORT_EVERY_S
                rss = " ".join(f"{k}={v[0]:.0f}" for k, v in s.procs.items())
                log(
                    f"t={s.t:.0f}s acked={s.acked} settled={s.settled:.0f} "
                    f"backlog={s.backlog:.0f} rss_mb: {rss}"
                )
        if time.monotonic() - sampler.released > minutes * 60 + 900:
            raise SystemExit("publishers did not finish 15 min after their last minute")
    for proc in group.procs:
        proc.join(10)
    acked = sum(r["acked_readings"] for r in reports)
    last_send = max(r["last_send"] for r in reports)
    load_samples = list(sampler.samples)  # the backlog while publishing

    log(f"publishers done ({acked} readings acknowledged); draining ...")
    drained_at: float | None = None
    changed, last = time.monotonic(), -1.0
    while time.monotonic() - changed < 30 and time.monotonic() - last_send < 600:
        now_settled = settled(stack.metrics()) - sampler.settled0
        if now_settled >= acked:
            drained_at = time.monotonic()
            break
        if now_settled != last:
            changed, last = time.monotonic(), now_settled
        time.sleep(0.5)
    sampler.take()
    drain_s = max(0.0, drained_at - last_send) if drained_at is not None else None

    ts_min = min(r["ts_range"][0] for r in reports)
    ts_max = max(r["ts_range"][1] for r in reports)
    log("counting readings in InfluxDB ...")
    stored_per_minute = []
    for a in range(ts_min, ts_max + 1, 60_000):
        stored_per_minute.append(stack.stored((a, min(a + 59_999, ts_max))))
    stored = sum(stored_per_minute)

    backlog = [(s.t, s.backlog) for s in load_samples]
    half = len(backlog) // 2
    first = max((b for _, b in backlog[:half]), default=0.0)
    second = max((b for _, b in backlog[half:]), default=0.0)
    slope = slope_per_min(backlog)
    grew = slope * minutes > offered_rate * 5
    lags = [lag for r in reports for lag in r["lags"]]
    wall = max(r["last_send"] for r in reports) - min(r["started"] for r in reports)
    sent_readings = sum(r["sent_readings"] for r in reports)
    lost = acked - stored
    return {
        "readings": {
            "offered": sent_readings,
            "acked": acked,
            "stored": stored,
            "lost": lost,
            "stored_per_minute": stored_per_minute,
        },
        "messages": {
            "sent": sum(r["sent"] for r in reports),
            "acked": sum(r["acked"] for r in reports),
            "bad_acks": sum(r["bad_acks"] for r in reports),
        },
        "target_readings_per_s": round(offered_rate),
        "published_readings_per_s": round(sent_readings / max(wall, 1e-9)),
        "acked_per_minute": per_minute(sampler.samples, "acked", minutes),
        "settled_per_minute": per_minute(sampler.samples, "settled", minutes),
        "backlog": {
            "max": round(max((b for _, b in backlog), default=0.0)),
            "first_half_max": round(first),
            "second_half_max": round(second),
            "slope_per_min": round(slope),
            "grew": grew,
            "at_samples": [round(b) for _, b in backlog],
        },
        "drain_s": round(drain_s, 2) if drain_s is not None else None,
        "sustained": lost == 0 and not grew and drain_s is not None and drain_s <= 10,
        "publishers": {
            "count": len(reports),
            "lag_behind_schedule_s": _percentiles(lags),
            "batches_late_over_1s": sum(lag > 1.0 for lag in lags),
            "cpu_s": round(sum(r["cpu_s"] for r in reports), 1),
            "max_rss_mb": round(max(r["max_rss_mb"] for r in reports), 1),
        },
        "ingest_gauges_max": {g: round(max(s.gauges[g] for s in sampler.samples)) for g in GAUGES},
        "samples": sampler.samples,
        "metrics_before": metrics0,
        "ts_range": (ts_min, ts_max),
    }


def process_memory(samples: Sequence[Sample]) -> dict[str, dict[str, float | None]]:
    """Per process: the largest sampled RSS, the last one, and the kernel's peak (VmHWM)."""
    names = sorted({name for s in samples for name in s.procs})
    table: dict[str, dict[str, float | None]] = {}
    for name in names:
        seen = [s.procs[name] for s in samples if name in s.procs]
        table[name] = {
            "peak_mb": round(max(rss for rss, _, _ in seen), 1),
            "final_mb": round(seen[-1][0], 1),
            "hwm_mb": round(max(hwm for _, hwm, _ in seen), 1),
        }
    return table


def process_cpu(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """Per process: CPU seconds during the soak (first to last sample) and in all."""
    names = sorted({name for s in samples for name in s.procs})
    table: dict[str, dict[str, float]] = {}
    for name in names:
        seen = [s.procs[name][2] for s in samples if name in s.procs]
        table[name] = {"soak_s": round(seen[-1] - seen[0], 1), "total_s": round(seen[-1], 1)}
    return table


def alerts_by_kind(stack: Stack, cap: int = 200_000) -> dict[str, int]:
    """Every alert raised so far (up to `cap`), counted by kind."""
    kinds: Counter[str] = Counter()
    offset, page = 0, 10_000
    while offset < cap:
        response = stack.http.get(
            f"{stack.api}/api/v1/alerts",
            params={"limit": page, "offset": offset},
            headers=AUTH,
        )
        response.raise_for_status()
        alerts = response.json()
        kinds.update(a.get("kind", "?") for a in alerts)
        if len(alerts) < page:
            break
        offset += page
    return dict(kinds)


# -- main --------------------------------------------------------------------------------


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"{option} wants NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def main() -> None:
    """Register, restart, soak, and print the JSON result."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--per-gateway", type=int, default=50, help="devices per gateway")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--window", type=int, default=1000, help="unacked messages/publisher")
    parser.add_argument(
        "--import-rows", type=int, default=IMPORT_ROWS, help="devices per import request"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=1800.0, help="s for the restarted sigap up"
    )
    parser.add_argument(
        "--sigap-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for `sigap up`, e.g. SIGAP_INGEST_BATCH_SIZE=10000 (repeatable)",
    )
    parser.add_argument(
        "--influx-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for influxd over the repo's influxdb.conf, e.g. "
        "INFLUXDB_DATA_CACHE_MAX_MEMORY_SIZE=2g (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, data)")
    args = parser.parse_args()
    if not 1 <= args.per_gateway <= 1000:  # ingest's limit of readings per gateway batch
        raise SystemExit("--per-gateway must be 1..1000")
    if not 1 <= args.window < 65535:
        raise SystemExit("--window must be 1..65534 (MQTT packet ids)")
    sigap_env = _pairs(args.sigap_env, "--sigap-env")
    influx_env = _pairs(args.influx_env, "--influx-env")
    fleet = Fleet(args.devices, args.per_gateway)
    load_before = os.getloadavg()
    began = time.monotonic()

    work = Path(tempfile.mkdtemp(prefix="sigap-soak-"))
    accounts = devstack.dev_accounts(work / "accounts.json")
    dev = accounts.developer
    assert dev is not None
    mqtt_port, influx_port = devstack.free_port(), devstack.free_port()
    broker = devstack.start_mosquitto(mqtt_port, work, accounts)
    # influxd reads INFLUXDB_* variables over its config file; only it gets them.
    saved = {name: os.environ.get(name) for name in influx_env}
    os.environ.update(influx_env)
    try:
        influxd = devstack.start_influxd(influx_port, work)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    influx = f"http://127.0.0.1:{influx_port}"
    up: subprocess.Popen[bytes] | None = None
    result: dict[str, Any] = {
        "bench": "soak",
        "devices": fleet.devices,
        "gateways": fleet.gateways,
        "per_gateway": fleet.per_gateway,
        "minutes": args.minutes,
        "fleet": {
            "fire": sum(not Fleet.is_bin(j) for j in range(fleet.devices)),
            "bin": sum(Fleet.is_bin(j) for j in range(fleet.devices)),
        },
    }
    try:
        t0 = time.monotonic()
        up, api = start_sigap(work, accounts, mqtt_port, influx, sigap_env)
        empty = proc_stats(up.pid)
        result["first_start"] = {  # with no device registered, to compare the restart with
            "start_s": round(time.monotonic() - t0, 1),
            "rss_mb": round(empty[0], 1) if empty else None,
        }
        pids = {"sigap": up.pid, "mosquitto": broker.process.pid, "influxd": influxd.process.pid}
        # Long timeout: counting a big run in InfluxDB, or importing 10k rows, takes a while.
        stack = Stack(api, influx, pids, http=httpx.Client(timeout=900))
        result["registration"] = register(stack, fleet, args.import_rows)

        log("restarting sigap up (it loads the registry at start) ...")
        up, result["restart"] = restart_sigap(
            up, api, work / "sigap-up-restarted.log", args.start_timeout
        )
        stack.pids["sigap"] = up.pid
        log(f"sigap up ready in {result['restart']['start_s']} s; soaking {args.minutes} min ...")
        run = soak(stack, mqtt_port, dev, fleet, args.minutes, args.publishers, args.window)
        samples: list[Sample] = run.pop("samples")
        before: dict[str, float] = run.pop("metrics_before")
        metrics = stack.metrics()
        result |= run
        result["rss_mb"] = process_memory(samples)
        result["cpu_s"] = process_cpu(samples)
        result["ingest_lag_seconds"] = histogram(metrics, "sigap_ingest_lag_seconds")
        # During the soak; empty where this Sigap does not expose it.
        result["event_loop_lag_seconds"] = histogram(
            metrics, "sigap_event_loop_lag_seconds", before
        )
        # Start-up collections (the registry load, gcpause.freeze's full one) apart from
        # the soak's own: only the latter stall readings.
        result["gc_pause_seconds"] = {
            "start": histogram(before, "sigap_gc_pause_seconds"),
            "soak": histogram(metrics, "sigap_gc_pause_seconds", before),
        }
        result["rejected"] = labelled(metrics, "sigap_ingest_rejected_total")
        result["influx_refused_readings"] = metrics.get("sigap_influx_refused_readings_total", 0)
        result["influx_write_errors"] = metrics.get("sigap_influx_write_errors_total", 0)
        result["queue_overflow"] = labelled(metrics, "sigap_ingest_queue_overflow_total")
        result["alerts"] = alerts_by_kind(stack)
    finally:
        if up is not None:
            up.terminate()
            up.wait(120)
        influxd.stop()
        broker.stop()
        if args.keep:
            log(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result |= {
        "sigap_env": args.sigap_env,
        "influx_env": args.influx_env,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.monotonic() - began, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
