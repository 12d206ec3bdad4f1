"""Publish the fleet's readings over MQTT on a smooth schedule, from one paho client."""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from rich import get_console
from rich.console import Console
from rich.live import Live
from rich.text import Text

from contract import topics
from simulators.config import SimConfig, SimSummary
from simulators.envelopes import (
    LorawanApp,
    chirpstack_uplink,
    dev_eui,
    gateway_messages,
    lorawan_registration,
    tts_uplink,
)
from simulators.errors import BrokerUnavailableError
from simulators.faults import FaultInjector, Outgoing
from simulators.fleet import Fleet, SimDevice, generate_fleet
from simulators.fleet_file import load_fleet_file
from simulators.readings import CrossingWatch, ReadingSource
from simulators.registry import register_fleet
from simulators.replay import Trace, replay
from simulators.scenario import Scenario, build_scenario

log = logging.getLogger(__name__)

KINDS = ("fire", "bin", "air")
# What a link counts when the fleet has no air stations (the counts of earlier releases).
BASE_KINDS = ("fire", "bin")
# paho's own in-flight limit is switched off (0): with a limit, paho rescans every queued
# message on each PUBACK (O(window) per acknowledgement), which caps a 1000 window at ~4k
# readings/s. We keep the window ourselves instead (MAX_OUTSTANDING), which costs nothing
# per acknowledgement. Mosquitto does not limit in-flight QoS 1 messages from MQTT 3.1.1
# clients.
PAHO_MAX_INFLIGHT = 0
# Readings handed to paho but not yet acknowledged. Past this the scheduler waits instead of
# growing paho's queue without bound (a slow or absent broker); it must stay well below the
# 65535 MQTT message ids, which paho reuses.
MAX_OUTSTANDING = 20_000
# The schedule sends readings due within this horizon together, rather than sleeping per message.
BATCH_HORIZON_S = 0.002
# Bounded so the loop still notices the deadline, stop and progress ticks every ~50 ms.
MAX_BATCH = 500
CONNECT_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 30.0
HEADLESS_PROGRESS_EVERY_S = 30.0


class Schedule:
    """When each device reports next: phases spread evenly over the interval, small jitter."""

    def __init__(
        self,
        count: int,
        interval_s: float,
        seed: int = 7,
        jitter_frac: float = 0.02,
        intervals: list[float] | None = None,
    ) -> None:
        self.interval_s = interval_s
        # Per-device intervals (a fleet file may give each device its own).
        self._intervals = intervals if intervals is not None else [interval_s] * count
        self._rng = random.Random(f"sigap-schedule:{seed}")
        self._jitter_frac = jitter_frac
        order = list(range(count))
        # Shuffled so fire detectors and bins interleave through each interval.
        self._rng.shuffle(order)
        self._phase = [0.0] * count
        for slot, index in enumerate(order):
            self._phase[index] = (
                (slot + self._rng.random()) * self._intervals[index] / max(count, 1)
            )
        # (due time, device index, slot number); the slot keeps jitter from accumulating.
        self._heap: list[tuple[float, int, int]] = [
            (phase, index, 0) for index, phase in enumerate(self._phase)
        ]
        heapq.heapify(self._heap)
        self.skipped = 0

    def next_due(self) -> float:
        """Time (seconds since start) of the earliest pending report; inf if none."""
        return self._heap[0][0] if self._heap else math.inf

    def pop_due(self, until: float, now: float, limit: int = MAX_BATCH) -> list[int]:
        """Devices due at or before `until` (at most `limit`), rescheduling each one."""
        heap = self._heap
        intervals = self._intervals
        due: list[int] = []
        while heap and heap[0][0] <= until and len(due) < limit:
            _, index, slot = heap[0]
            interval = intervals[index]
            phase = self._phase[index]
            next_slot = slot + 1
            if phase + next_slot * interval < now - interval:
                # More than an interval behind (broker stalled): drop the missed slots
                # rather than burst them out, as a real device would simply be late.
                caught_up = math.floor((now - phase) / interval) + 1
                self.skipped += caught_up - next_slot
                next_slot = caught_up
            jitter_s = self._jitter_frac * interval
            jitter = self._rng.uniform(-jitter_s, jitter_s)
            heapq.heapreplace(heap, (phase + next_slot * interval + jitter, index, next_slot))
            due.append(index)
        return due


class _MqttLink:
    """One paho client: connects, publishes, and counts what the broker acknowledged."""

    def __init__(self, config: SimConfig, kinds: tuple[str, ...] = BASE_KINDS) -> None:
        self.config = config
        # Kinds counted, by index (a prefix of KINDS); per-kind counts of one reading of each.
        self.kinds = kinds
        self._one = tuple(tuple(int(i == k) for i in range(len(kinds))) for k in range(len(kinds)))
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{config.id_prefix}-simulator-{os.getpid()}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if config.mqtt_username is not None:
            self.client.username_pw_set(config.mqtt_username, config.mqtt_password)
        self.client.max_inflight_messages_set(PAHO_MAX_INFLIGHT)
        self.client.max_queued_messages_set(0)  # 0 = unbounded: we bound it ourselves
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self._closing = False
        # mid -> kind of readings awaiting their acknowledgement; `_early` holds
        # acknowledgements that beat publish() back to us (the network thread is fast).
        self._pending: dict[int, tuple[int, ...]] = {}
        self._early: dict[int, bool] = {}
        self.sent = 0  # readings (a gateway batch counts each reading it carries)
        self.acked = [0] * len(kinds)
        self.messages = 0  # messages acknowledged
        self.rejected = 0
        self.send_errors = 0

    @property
    def published(self) -> int:
        """Readings the broker acknowledged (QoS >= 1) or that were written out (QoS 0)."""
        return sum(self.acked)

    @property
    def outstanding(self) -> int:
        """Readings handed to paho whose fate is still unknown."""
        return self.sent - self.published - self.rejected - self.send_errors

    @property
    def connected(self) -> bool:
        """Whether the client currently holds a broker connection."""
        return self.client.is_connected()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._connect_error = str(reason_code)
            log.warning("broker refused the connection: %s", reason_code)
        elif self._connected.is_set():
            log.info("reconnected to the broker")
        self._connected.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not self._closing:
            log.warning("lost the broker connection (%s); paho will reconnect", reason_code)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        ok = not reason_code.is_failure
        with self._lock:
            kind = self._pending.pop(mid, None)
            if kind is None:
                self._early[mid] = ok
                return
            self._account(kind, ok)

    def _account(self, counts: tuple[int, ...], ok: bool) -> None:
        if ok:
            for kind, n in enumerate(counts):
                self.acked[kind] += n
            self.messages += 1
        else:
            self.rejected += sum(counts)

    def connect(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect and wait for the broker's CONNACK, or raise BrokerUnavailableError."""
        host, port = self.config.mqtt_host, self.config.mqtt_port
        try:
            self.client.connect(host, port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise BrokerUnavailableError(host, port, f"{type(exc).__name__}: {exc}") from exc
        self.client.loop_start()
        if not self._connected.wait(timeout_s) or self._connect_error is not None:
            reason = self._connect_error or f"no CONNACK within {timeout_s:.0f}s"
            self.close(drain_s=0)
            raise BrokerUnavailableError(host, port, reason)
        log.info("connected to MQTT broker %s:%d", host, port)

    def publish(self, topic: str, payload: bytes, kind: int | tuple[int, ...]) -> None:
        """Hand one message to paho (`kind`: one reading's kind index, or readings per kind)."""
        counts = self._one[kind] if isinstance(kind, int) else kind
        self.sent += sum(counts)
        info = self.client.publish(topic, payload, qos=self.config.qos, retain=False)
        rc = info.rc
        # QoS>0 while disconnected: paho keeps the message and sends it after reconnecting.
        accepted = rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self.config.qos > 0
        )
        with self._lock:
            early = self._early.pop(info.mid, None)
            if not accepted:
                self.send_errors += sum(counts)
            elif early is None:
                self._pending[info.mid] = counts
            else:
                self._account(counts, early)

    def drain(self, timeout_s: float) -> int:
        """Wait until every reading handed to paho is settled; returns how many were not."""
        deadline = time.monotonic() + timeout_s
        while self.outstanding > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        return max(self.outstanding, 0)

    def close(self, drain_s: float = DRAIN_TIMEOUT_S) -> int:
        """Drain (bounded), disconnect and stop the network thread; returns unsettled readings."""
        try:
            return self.drain(drain_s) if drain_s > 0 else max(self.outstanding, 0)
        finally:
            # Even when the wait is interrupted: never leave paho's network thread behind.
            self._closing = True
            self.client.disconnect()
            self.client.loop_stop()


def _progress_text(
    link: _MqttLink, injector: FaultInjector, elapsed: float, model_t: float, rate: float
) -> Text:
    kinds = ", ".join(f"{k} {n:,}" for k, n in zip(link.kinds, link.acked, strict=True))
    errors = link.rejected + link.send_errors
    faults = sum(injector.counts.values())
    text = Text.from_markup(
        f"[bold]{elapsed:.0f}s[/] t={model_t:.0f}s  [cyan]{rate:,.0f}/s[/]  "
        f"published {link.published:,} ({kinds}; {link.messages:,} msgs)  "
        f"in-flight {link.outstanding:,}  "
        + (f"[magenta]faults {faults:,}[/]  " if faults else "")
        + (f"[bold red]errors {errors:,}[/]" if errors else "errors 0")
        + ("" if link.connected else "  [bold red]DISCONNECTED[/]")
    )
    # One line whatever the terminal width: the live display must not wrap.
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


@contextlib.contextmanager
def _live(console: Console, enabled: bool) -> Iterator[Live | None]:
    if not enabled:
        yield None
        return
    # Transient: the live line gives way to the final summary; on a non-terminal it prints
    # nothing, so headless logs stay clean.
    with Live(console=console, auto_refresh=False, transient=True) as live:
        yield live


def counted_kinds(fleet: Fleet) -> tuple[str, ...]:
    """Kinds a run counts readings of: air only when the fleet has air stations."""
    return KINDS if fleet.of_kind("air") else BASE_KINDS


def build_fleet(config: SimConfig) -> Fleet:
    """The run's fleet: from the fleet file, or generated from the seed."""
    if config.fleet_file is not None:
        return load_fleet_file(config.fleet_file, config.seed)
    gateways = config.gateways
    if gateways == 0 and config.envelope == "gateway":
        # A gateway batch needs gateways: about one per hundred devices, as in a town.
        gateways = max(1, config.devices // 100)
    return generate_fleet(
        config.devices,
        config.fire_share,
        config.seed,
        config.id_prefix,
        gateways,
        config.air_stations,
    )


def run_simulation(
    config: SimConfig,
    stop: threading.Event | None = None,
    progress: bool = True,
    *,
    console: Console | None = None,
) -> SimSummary:
    """Run a simulated fleet until `duration_s` passes or `stop` is set; returns the counts."""
    stop = stop if stop is not None else threading.Event()
    console = console if console is not None else _default_console()
    fleet = build_fleet(config)
    scenario = build_scenario(config.scenario, fleet, config.seed)
    n_fire = len(fleet.of_kind("fire"))
    n_air = len(fleet.of_kind("air"))
    interval_s = config.interval_s
    if config.rate is not None:
        interval_s = len(fleet.devices) / config.rate
    log.info(
        "fleet of %d devices (seed %d): %d fire detectors in %d buildings, %d bins, "
        "%d air stations, %d gateways; every %.3gs, speed x%g, QoS %d, %s messages, "
        "event time %s",
        len(fleet.devices),
        config.seed,
        n_fire,
        len(fleet.buildings),
        len(fleet.devices) - n_fire - n_air,
        n_air,
        len(fleet.gateways),
        interval_s,
        config.speed,
        config.qos,
        config.envelope,
        config.event_time,
    )
    for line in scenario.plan():
        log.info(line)

    registered = 0
    unsettled = 0
    duration = 0.0
    intervals = [d.interval_s or interval_s for d in fleet.devices]
    schedule = Schedule(len(fleet.devices), interval_s, config.seed, intervals=intervals)
    injector = FaultInjector(scenario)
    with _ctrl_c_sets(stop):
        link = _MqttLink(config, counted_kinds(fleet))
        link.connect()
        try:
            if config.api_url and not stop.is_set():
                # The registry learns the reporting interval, so Sigap can tell when a
                # simulated device has gone silent (device.offline).
                bodies = [
                    {"reporting_interval_s": interval_s} | body for body in fleet.registrations()
                ]
                if config.envelope in ("tts", "chirpstack"):
                    bodies = [lorawan_registration(body, config.envelope) for body in bodies]
                registered = register_fleet(
                    bodies, config.api_url, config.api_token, stop=stop
                ).registered
            start = time.monotonic()
            loop = _Loop(config, fleet, scenario, schedule, link, injector, stop, start)
            loop.run(console, progress)
            duration = time.monotonic() - start
        finally:
            # Counted as failed: still unacknowledged after the bounded wait.
            unsettled = link.close()
    if unsettled:
        log.warning("%d readings were still unacknowledged when the client gave up", unsettled)
    published = link.published
    summary = SimSummary(
        published=published,
        failed=link.rejected + link.send_errors + unsettled,
        duration_s=round(duration, 3),
        rate=published / duration if duration > 0 else 0.0,
        registered=registered,
        by_kind=dict(zip(link.kinds, link.acked, strict=True)),
        sent=link.sent,
        skipped=schedule.skipped,
        devices=len(fleet.devices),
        scenario=scenario.name,
        messages=link.messages,
        faults=dict(injector.counts),
        envelope=config.envelope,
    )
    console.print(summary.line(), highlight=False, soft_wrap=True)
    return summary


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """Make Ctrl-C set `stop` (a second one aborts), unless the caller handles SIGINT itself."""
    # A KeyboardInterrupt landing inside paho's publish() would leave a reading whose fate
    # is unknown, and `published` would no longer be exact; a flag is checked between
    # readings instead.
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("interrupted: stopping and waiting for in-flight readings (Ctrl-C again aborts)")
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _default_console() -> Console:
    # rich's global console, so a RichHandler set up by the CLI prints above the live line.
    return get_console()


class _Loop:
    """The publishing loop of one run: schedule, physics, faults, envelopes, progress."""

    def __init__(
        self,
        config: SimConfig,
        fleet: Fleet,
        scenario: Scenario,
        schedule: Schedule,
        link: _MqttLink,
        injector: FaultInjector,
        stop: threading.Event,
        start: float,
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.scenario = scenario
        self.schedule = schedule
        self.link = link
        self.injector = injector
        self.stop = stop
        self.start = start
        self.speed = config.speed
        self.deadline = start + config.duration_s if config.duration_s is not None else math.inf
        # The model clock starts at the wall clock, or (event_time=model) far enough back
        # that the last reading of the run is stamped about now: ingest refuses readings
        # from the future.
        self.epoch0 = time.time()
        if config.event_time == "model" and config.duration_s is not None:
            self.epoch0 -= config.duration_s * config.speed
        self.source = ReadingSource(fleet, scenario, config.seed, self.epoch0)
        self.watch = CrossingWatch(fleet)
        self.highlighted = scenario.highlighted
        self.devices = fleet.devices
        self.kinds = [KINDS.index(d.kind) for d in fleet.devices]
        self.n_kinds = len(counted_kinds(fleet))
        self.fcnt = [0] * len(fleet.devices)
        self.app = LorawanApp()

    def _ts_ms(self, model_t: float) -> int:
        if self.config.event_time == "model":
            return int((self.epoch0 + model_t) * 1000)
        return time.time_ns() // 1_000_000

    def send(self, indices: list[int], model_t: float) -> None:
        """Generate, fault and publish the readings of these devices at model time `model_t`."""
        envelope = self.config.envelope
        batches: dict[str, list[dict[str, Any]]] = {}
        batch_counts: dict[str, list[int]] = {}
        link, dumps = self.link, orjson.dumps
        for index in indices:
            device = self.devices[index]
            payload = self.source.payload(index, model_t, self._ts_ms(model_t))
            for note in self.watch.check(index, payload, model_t):
                level = logging.INFO if device.id in self.highlighted else logging.DEBUG
                log.log(level, note)
            items: list[Outgoing] = (
                self.injector.apply(device.id, payload, model_t)
                if device.id in self.highlighted
                else [payload]
            )
            kind = self.kinds[index]
            for item in items:
                if envelope == "direct":
                    link.publish(
                        device.topic, item if isinstance(item, bytes) else dumps(item), kind
                    )
                elif envelope == "gateway":
                    gateway = device.gateway_id or f"{self.config.id_prefix}-gw-direct"
                    if isinstance(item, bytes):
                        # Broken bytes cannot sit inside a batch: the gateway forwards them.
                        link.publish(topics.gateway_up(gateway), item, kind)
                        continue
                    batches.setdefault(gateway, []).append({"device_id": device.id} | item)
                    batch_counts.setdefault(gateway, []).append(kind)
                else:
                    self._lorawan(index, device, item, kind)
        for gateway, items_ in batches.items():
            kinds = batch_counts[gateway]
            offset = 0
            for topic, data, n in gateway_messages(gateway, items_):
                part = kinds[offset : offset + n]
                offset += n
                link.publish(topic, data, tuple(part.count(k) for k in range(self.n_kinds)))

    def _lorawan(self, index: int, device: SimDevice, item: Outgoing, kind: int) -> None:
        eui = dev_eui(device.id)
        if isinstance(item, bytes):
            topic = (
                f"v3/{self.app.application_id}@{self.app.tenant_id}/devices/{device.id}/up"
                if self.config.envelope == "tts"
                else f"application/{self.app.chirpstack_application_id}/device/{eui}/event/up"
            )
            self.link.publish(topic, item, kind)
            return
        self.fcnt[index] += 1
        make = tts_uplink if self.config.envelope == "tts" else chirpstack_uplink
        topic, data = make(device, item, self.fcnt[index], time.time_ns() // 1_000_000, self.app)
        self.link.publish(topic, data, kind)

    def run(self, console: Console, progress: bool) -> None:
        """Send readings as they fall due until the duration passes or `stop` is set."""
        link, schedule, stop = self.link, self.schedule, self.stop
        start, deadline, speed = self.start, self.deadline, self.speed
        timeline = self.scenario.timeline(self.fleet)
        next_event = 0
        headless = not console.is_terminal
        next_tick = start + 1.0
        next_headless_log = start + HEADLESS_PROGRESS_EVERY_S
        last_published, last_tick = 0, start
        rate = 0.0
        warned_behind = False
        count = len(self.devices)
        cursor = 0  # max_rate: round robin over the fleet

        with _live(console, progress) as live:
            while not stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    break
                elapsed = now - start
                model_t = elapsed * speed
                while next_event < len(timeline) and timeline[next_event][0] <= model_t:
                    log.info(timeline[next_event][1])
                    next_event += 1
                if now >= next_tick:
                    published = link.published
                    rate = (published - last_published) / (now - last_tick)
                    last_published, last_tick = published, now
                    next_tick = now + 1.0
                    text = _progress_text(link, self.injector, elapsed, model_t, rate)
                    if live is not None:
                        live.update(text, refresh=True)
                    if progress and headless and now >= next_headless_log:
                        next_headless_log = now + HEADLESS_PROGRESS_EVERY_S
                        log.info(text.plain)
                if schedule.skipped and not warned_behind:
                    warned_behind = True
                    log.warning(
                        "falling behind: cannot publish %.0f readings/s (broker, network or "
                        "this client too slow); late report slots are skipped, see the summary",
                        count / schedule.interval_s,
                    )
                room = MAX_OUTSTANDING - link.outstanding
                if room <= 0:
                    stop.wait(0.005)  # the broker is behind: let it catch up
                    continue
                if self.config.max_rate:
                    n = min(room, MAX_BATCH)
                    due = [(cursor + k) % count for k in range(n)]
                    cursor = (cursor + n) % count
                    self.send(due, model_t)
                    continue
                wait_s = schedule.next_due() - elapsed
                if wait_s > BATCH_HORIZON_S:
                    stop.wait(min(wait_s, next_tick - now, deadline - now, 0.25))
                    continue
                due = schedule.pop_due(elapsed + BATCH_HORIZON_S, elapsed, min(room, MAX_BATCH))
                self.send(due, model_t)


def run_replay(
    config: SimConfig,
    trace: Trace,
    device_id: str,
    stop: threading.Event | None = None,
) -> SimSummary:
    """Publish a recorded trace as `device_id`'s readings (real time, or `config.speed` x)."""
    stop = stop if stop is not None else threading.Event()
    topic = topics.device_up(device_id)
    log.info(
        "replaying %d rows (%.0f s) of %s as %s at x%g",
        len(trace.times_s),
        trace.span_s,
        trace.source,
        device_id,
        config.speed,
    )
    with _ctrl_c_sets(stop):
        link = _MqttLink(config)
        link.connect()
        start = time.monotonic()
        try:
            replay(
                trace,
                lambda data: link.publish(topic, data, 0),
                speed=config.speed,
                sleep=stop.wait,
                stop=stop.is_set,
            )
            duration = time.monotonic() - start
        finally:
            unsettled = link.close()
    return SimSummary(
        published=link.published,
        failed=link.rejected + link.send_errors + unsettled,
        duration_s=round(duration, 3),
        rate=link.published / duration if duration > 0 else 0.0,
        registered=0,
        by_kind={"replay": link.published},
        sent=link.sent,
        devices=1,
        scenario=f"replay {Path(trace.source).name}",
        messages=link.messages,
    )
