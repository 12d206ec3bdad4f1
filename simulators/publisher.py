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

from simulators.config import SimConfig, SimSummary
from simulators.errors import BrokerUnavailableError
from simulators.fleet import Fleet, generate_fleet
from simulators.readings import CrossingWatch, ReadingSource
from simulators.registry import register_fleet
from simulators.scenario import Scenario, build_scenario

log = logging.getLogger(__name__)

KINDS = ("fire", "bin")
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
        self, count: int, interval_s: float, seed: int = 7, jitter_frac: float = 0.02
    ) -> None:
        self.interval_s = interval_s
        self._rng = random.Random(f"sigap-schedule:{seed}")
        self._jitter_s = jitter_frac * interval_s
        order = list(range(count))
        # Shuffled so fire detectors and bins interleave through each interval.
        self._rng.shuffle(order)
        self._phase = [0.0] * count
        for slot, index in enumerate(order):
            self._phase[index] = (slot + self._rng.random()) * interval_s / max(count, 1)
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
        interval = self.interval_s
        due: list[int] = []
        while heap and heap[0][0] <= until and len(due) < limit:
            _, index, slot = heap[0]
            phase = self._phase[index]
            next_slot = slot + 1
            if phase + next_slot * interval < now - interval:
                # More than an interval behind (broker stalled): drop the missed slots
                # rather than burst them out, as a real device would simply be late.
                caught_up = math.floor((now - phase) / interval) + 1
                self.skipped += caught_up - next_slot
                next_slot = caught_up
            jitter = self._rng.uniform(-self._jitter_s, self._jitter_s)
            heapq.heapreplace(heap, (phase + next_slot * interval + jitter, index, next_slot))
            due.append(index)
        return due


class _MqttLink:
    """One paho client: connects, publishes, and counts what the broker acknowledged."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
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
        self._pending: dict[int, int] = {}
        self._early: dict[int, bool] = {}
        self.sent = 0
        self.acked = [0] * len(KINDS)
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

    def _account(self, kind: int, ok: bool) -> None:
        if ok:
            self.acked[kind] += 1
        else:
            self.rejected += 1

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

    def publish(self, topic: str, payload: bytes, kind: int) -> None:
        """Hand one reading to paho; its outcome arrives later in _on_publish."""
        self.sent += 1
        info = self.client.publish(topic, payload, qos=self.config.qos, retain=False)
        rc = info.rc
        # QoS>0 while disconnected: paho keeps the message and sends it after reconnecting.
        accepted = rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self.config.qos > 0
        )
        with self._lock:
            early = self._early.pop(info.mid, None)
            if not accepted:
                self.send_errors += 1
            elif early is None:
                self._pending[info.mid] = kind
            else:
                self._account(kind, early)

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


def _progress_text(link: _MqttLink, elapsed: float, model_t: float, rate: float) -> Text:
    kinds = ", ".join(f"{k} {n:,}" for k, n in zip(KINDS, link.acked, strict=True))
    errors = link.rejected + link.send_errors
    text = Text.from_markup(
        f"[bold]{elapsed:.0f}s[/] t={model_t:.0f}s  [cyan]{rate:,.0f}/s[/]  "
        f"published {link.published:,} ({kinds})  in-flight {link.outstanding:,}  "
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
    fleet = generate_fleet(config.devices, config.fire_share, config.seed, config.id_prefix)
    scenario = build_scenario(config.scenario, fleet, config.seed)
    n_fire = len(fleet.of_kind("fire"))
    log.info(
        "fleet of %d devices (seed %d): %d fire detectors in %d buildings, %d bins; "
        "every %.1fs, speed x%g, QoS %d",
        len(fleet.devices),
        config.seed,
        n_fire,
        len(fleet.buildings),
        len(fleet.devices) - n_fire,
        config.interval_s,
        config.speed,
        config.qos,
    )
    for line in scenario.plan():
        log.info(line)

    registered = 0
    unsettled = 0
    duration = 0.0
    schedule = Schedule(len(fleet.devices), config.interval_s, config.seed)
    with _ctrl_c_sets(stop):
        link = _MqttLink(config)
        link.connect()
        try:
            if config.api_url and not stop.is_set():
                # The registry learns the reporting interval, so Sigap can tell when a
                # simulated device has gone silent (device.offline).
                bodies = [
                    body | {"reporting_interval_s": config.interval_s}
                    for body in fleet.registrations()
                ]
                registered = register_fleet(
                    bodies, config.api_url, config.api_token, stop=stop
                ).registered
            start = time.monotonic()
            _publish_loop(config, fleet, scenario, schedule, link, stop, start, console, progress)
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
        by_kind=dict(zip(KINDS, link.acked, strict=True)),
        sent=link.sent,
        skipped=schedule.skipped,
        devices=len(fleet.devices),
        scenario=config.scenario,
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


def _publish_loop(
    config: SimConfig,
    fleet: Fleet,
    scenario: Scenario,
    schedule: Schedule,
    link: _MqttLink,
    stop: threading.Event,
    start: float,
    console: Console,
    progress: bool,
) -> None:
    """Send readings as they fall due until the duration passes or `stop` is set."""
    # The model clock starts at the wall clock: readings carry real timestamps (`ts`) while
    # the physics may run `speed` times faster.
    epoch0 = time.time()
    source = ReadingSource(fleet, scenario, config.seed, epoch0)
    watch = CrossingWatch(fleet)
    highlighted = scenario.highlighted
    timeline = scenario.timeline(fleet)
    next_event = 0
    topics = [d.topic for d in fleet.devices]
    kinds = [KINDS.index(d.kind) for d in fleet.devices]
    ids = [d.id for d in fleet.devices]
    deadline = start + config.duration_s if config.duration_s is not None else math.inf
    speed = config.speed
    dumps = orjson.dumps
    headless = not console.is_terminal
    next_tick = start + 1.0
    next_headless_log = start + HEADLESS_PROGRESS_EVERY_S
    last_published, last_tick = 0, start
    rate = 0.0
    warned_behind = False

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
                if live is not None:
                    live.update(_progress_text(link, elapsed, model_t, rate), refresh=True)
                if progress and headless and now >= next_headless_log:
                    next_headless_log = now + HEADLESS_PROGRESS_EVERY_S
                    log.info(_progress_text(link, elapsed, model_t, rate).plain)
            if schedule.skipped and not warned_behind:
                warned_behind = True
                log.warning(
                    "falling behind: cannot publish %.0f readings/s (broker, network or this "
                    "client too slow); late report slots are skipped, see the summary",
                    len(fleet.devices) / config.interval_s,
                )
            room = MAX_OUTSTANDING - link.outstanding
            if room <= 0:
                stop.wait(0.005)  # the broker is behind: let it catch up
                continue
            wait_s = schedule.next_due() - elapsed
            if wait_s > BATCH_HORIZON_S:
                stop.wait(min(wait_s, next_tick - now, deadline - now, 0.25))
                continue
            for index in schedule.pop_due(elapsed + BATCH_HORIZON_S, elapsed, min(room, MAX_BATCH)):
                payload = source.payload(index, model_t, time.time_ns() // 1_000_000)
                link.publish(topics[index], dumps(payload), kinds[index])
                notes = watch.check(index, payload, model_t)
                for note in notes:
                    log.log(logging.INFO if ids[index] in highlighted else logging.DEBUG, note)
