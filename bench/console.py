"""The browser console under measurement: fire -> drawn latency, page weight, map draw time.

One run starts mosquitto and influxd (repo configs, free ports, temp dirs) and `sigap up`
(bench.ingest_ceiling.start_sigap; escalation off so nothing updates a waiting alert),
registers two fire stations, a dispatcher's token and a fire detector for every fire
published, each in its own zone on a 330 m grid (fire confirmation pairs detectors within
100 m), and drives Debian's headless Chromium (/usr/bin/chromium) with
Playwright's sync API, one browser context per measurement:

1. **Publish -> drawn.** A dispatcher signs in. An init script (INSTRUMENT_JS), installed
   before the page loads, records in the page's clock (performance.timeOrigin +
   performance.now()) for each alert id: when the bytes of its first SSE event reached the
   page's JavaScript ("streamed": a pass-through tap on the console's own fetch of
   /api/v1/alerts/stream), when its first `article[data-testid=alert]` was added
   ("added": a MutationObserver on the document), the requestAnimationFrame callback after
   that ("raf": the frame that paints it; reported as "drawn") and a task posted from that
   callback ("painted": after the frame's style, layout and paint). One fire at a time,
   the bench notes time.time() just before publishing the detector's reading (developer
   account, QoS 1, 90 C and 20 %/m smoke: a confirmed fire at once), waits until the page
   has painted the new article, and lets the console settle (--settle s). Then --bursts
   bursts of --burst fires published back to back. For the same fires, a plain Python SSE
   client (httpx, the dispatcher's bearer token, same stream, in a thread) and a bare MQTT
   subscriber of the detectors' topics (service account: the broker hop) note their
   arrival times. The page's clock is tied to time.time() by the smallest-round-trip of
   15 page.evaluate calls at the page's start and end (offset and round trip reported).
   Every fire stays active, so the list grows: after the bursts, --fires-big more fires
   one at a time measure a long list ("single_long_list"), and --profile-fires more run
   under V8's sampling profiler (CDP Profiler; main_thread_profile: busy ms per fire and
   the functions that took it; their latencies are left out).
2. **Page weight of the first load.** A fresh context (empty cache) loads `/`, signs in and
   waits for the dispatcher view and its list, then until nothing but the live stream has
   been pending for 0.5 s. Bytes: decoded bodies (CDP Network.dataReceived, and Playwright's
   response.body() as a cross-check) and as transferred (CDP Network.loadingFinished
   encodedDataLength, headers included), per request. Measured with no alert, with a
   reload in the same context (warm cache; every asset is `no-cache`: revalidated), with
   every fire of phase 1 active, and with the map's devices registered too.
3. **Time to draw 10,000 devices on the map** (map_draw_time, marked below): only when the
   signed-in page has `[data-testid=view-map]` with its canvas, else null with the reason.
   Registers --map-devices devices (CSV import), then times signing in on /#map, opening
   /#map signed in, the map tab from the dispatcher's view, and 10 full redraws, each to
   the frame after the canvas's first frame holding every device, plus the canvas's own
   data-draw-ms. Then --fires-big fires one at a time, and --profile-fires under the
   profiler, in a new dispatcher page holding every device ("single_all_devices": the map
   view lives, hidden, in every dispatcher's page), to compare with "single_long_list"
   (about the same list length, the run's detectors only).

Usage: .venv/bin/python -m bench.console [--fires 100] [--bursts 3] [--burst 20]
       [--fires-big 20] [--profile-fires 10] [--settle 0.3] [--map-devices 10000]
       [--chromium PATH] [--keep]
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    ViewportSize,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from bench.ingest_ceiling import BENCH_TOKEN, start_sigap
from sigap import devstack

ADMIN = {"Authorization": f"Bearer {BENCH_TOKEN}"}
CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1920, "height": 1080}  # a fire post's wall screen
STREAM_PATH = "/api/v1/alerts/stream"
DEVICE_TOPIC = "sigap/devices/{}/up"
# A fixed-temperature alarm and dense smoke on one detector: a confirmed fire at once
# (tests/integration/console_stack.py uses the same reading).
FIRE = {"temp_c": 90.0, "smoke_obs_pct_m": 20.0}
GRID_DEG = 0.003  # ~330 m between detectors; fire confirmation pairs them within 100 m
GRID_COLS = 16
DRAW_TIMEOUT_MS = 15_000

# The console's DOM contract (/tmp/briefs/contract.md, tests/integration/console_page.py).
TOKEN = "#token"
SIGN_IN = "button[data-testid=sign-in]"
DISPATCH_VIEW = "[data-testid=view-dispatch]"
ALERT = "article[data-testid=alert]"

STATIONS: list[dict[str, Any]] = [
    {
        "id": "damkar-baamang",
        "kind": "fire_station",
        "name": "Pos Damkar Baamang",
        "lat": -2.5340,
        "lon": 112.9530,
        "district": "Baamang",
    },
    {
        "id": "damkar-mentawa-baru",
        "kind": "fire_station",
        "name": "Pos Damkar Mentawa Baru",
        "lat": -2.4900,
        "lon": 112.9530,
        "district": "Mentawa Baru Ketapang",
    },
]

# Installed with add_init_script, so it runs before the console's own scripts. Times are
# performance.timeOrigin + performance.now() (ms since the epoch, the page's clock).
# - A MutationObserver on the document notes the first time each alert id's article is
#   added (its callback is the microtask right after the render that inserted it), then a
#   requestAnimationFrame callback (the frame that will paint it: "raf") and a message
#   posted from inside that callback, which runs after the frame's rendering steps
#   ("painted").
# - The console reads the live stream with fetch(); the wrapper passes every chunk on
#   unchanged and notes when the first event of each alert id reached the page's
#   JavaScript ("streamed"). sse_starlette separates lines with \r\n.
# - waitFor(n, ms) resolves once n articles have been painted.
INSTRUMENT_JS = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const B = (window.__bench = {
    added: {}, raf: {}, painted: {}, streamed: {}, order: [], waiters: [], articles: {},
  });
  const settle = () => {
    B.waiters = B.waiters.filter((w) => {
      if (B.order.length < w.n) return true;
      clearTimeout(w.timer);
      w.resolve(B.order.length);
      return false;
    });
  };
  const seen = (article, at) => {
    const id = article.getAttribute("data-alert-id");
    if (id === null || id in B.added) return;
    B.added[id] = at;
    B.articles[id] = document.querySelectorAll('article[data-testid="alert"]').length;
    requestAnimationFrame(() => {
      B.raf[id] = now();
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        B.painted[id] = now();
        B.order.push(id);
        settle();
      };
      channel.port2.postMessage(null);
    });
  };
  new MutationObserver((records) => {
    const at = now();
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        if (node.matches('article[data-testid="alert"]')) seen(node, at);
        for (const a of node.querySelectorAll('article[data-testid="alert"]')) seen(a, at);
      }
    }
  }).observe(document, { childList: true, subtree: true });
  B.waitFor = (n, ms) =>
    new Promise((resolve, reject) => {
      if (B.order.length >= n) return resolve(B.order.length);
      const w = { n, resolve };
      w.timer = setTimeout(() => {
        B.waiters = B.waiters.filter((x) => x !== w);
        reject(new Error(`only ${B.order.length} of ${n} articles painted after ${ms} ms`));
      }, ms);
      B.waiters.push(w);
    });
  const originalFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const response = await originalFetch(input, init);
    const url = typeof input === "string" ? input : input.url;
    if (!url.includes("/api/v1/alerts/stream") || !response.body) return response;
    const decoder = new TextDecoder();
    let buffer = "";
    const tap = new TransformStream({
      transform(chunk, controller) {
        const at = now();
        buffer = (buffer + decoder.decode(chunk, { stream: true })).replace(/\\r\\n/g, "\\n");
        let end;
        while ((end = buffer.indexOf("\\n\\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).replace(/^ /, "")).join("\\n");
          if (!data) continue;
          try {
            const alert = JSON.parse(data);
            if (!(alert.id in B.streamed)) {
              B.streamed[alert.id] = { at, device: alert.device_id, kind: alert.kind };
            }
          } catch (error) {
            // not an alert: nothing to time
          }
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(tap), {
      status: response.status, statusText: response.statusText, headers: response.headers,
    });
  };
})();
"""

COLLECT_JS = """
() => {
  const B = window.__bench;
  return {
    added: B.added, raf: B.raf, painted: B.painted, streamed: B.streamed,
    order: B.order, articles: B.articles,
  };
}
"""


def log(text: str) -> None:
    """A progress line on stderr."""
    print(f"[console {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of values (nan when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def summary(values: list[float]) -> dict[str, Any]:
    """p50, p90, p99, max and n of latencies in ms."""
    if not values:
        return {"n": 0, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p90_ms": round(percentile(values, 90), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1),
    }


# -- the stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    """mosquitto, influxd and `sigap up`, and the bench's clients of them."""

    work: Path
    broker: devstack.Service
    influxd: devstack.Service
    up: subprocess.Popen[bytes]
    api: str
    accounts: devstack.BrokerAuth
    http: httpx.Client
    dispatcher_token: str = ""
    detectors: list[str] = field(default_factory=list)

    def stop(self) -> None:
        """Stop `sigap up`, influxd and the broker."""
        self.http.close()
        if self.up.poll() is None:
            self.up.terminate()
            try:
                self.up.wait(30)
            except subprocess.TimeoutExpired:
                self.up.kill()
        self.influxd.stop()
        self.broker.stop()


def start_stack(work: Path) -> Stack:
    """Start the services and `sigap up` (escalation off: it would update waiting alerts)."""
    mqtt_port, influx_port = devstack.free_port(), devstack.free_port()
    accounts = devstack.dev_accounts(work / "accounts.json")
    broker = devstack.start_mosquitto(mqtt_port, work, accounts)
    influxd = devstack.start_influxd(influx_port, work)
    up, api = start_sigap(
        work,
        accounts,
        mqtt_port,
        f"http://127.0.0.1:{influx_port}",
        {"SIGAP_DISPATCH_ESCALATE_AFTER_S": "3600"},
    )
    return Stack(work, broker, influxd, up, api, accounts, httpx.Client(headers=ADMIN, timeout=30))


def prepare(stack: Stack, detectors: int) -> None:
    """Two fire stations, a dispatcher's token, and the detectors on a grid north of Sampit."""
    for station in STATIONS:
        response = stack.http.post(f"{stack.api}/api/v1/stations", json=station)
        response.raise_for_status()
    response = stack.http.post(
        f"{stack.api}/api/v1/tokens", json={"name": "Bench dispatcher", "role": "dispatcher"}
    )
    response.raise_for_status()
    stack.dispatcher_token = response.json()["token"]
    run = uuid.uuid4().hex[:6]
    for k in range(detectors):
        row, col = divmod(k, GRID_COLS)
        device_id = f"bench-fire-{run}-{k:03d}"
        body = {
            "id": device_id,
            "kind": "fire",
            "name": f"Detektor bench {k}",
            "lat": round(-2.5000 - GRID_DEG * row, 5),
            "lon": round(112.9200 + GRID_DEG * col, 5),
            "district": "Baamang",
            "zone": f"bench-{k}",
        }
        response = stack.http.post(f"{stack.api}/api/v1/devices", json=body)
        if response.status_code != 201:
            raise SystemExit(f"device refused ({response.status_code}): {response.text[:300]}")
        stack.detectors.append(device_id)


class SseClient:
    """A plain Python reader of the alert stream (httpx, bearer token) in a thread; notes
    time.time() when the first event of each device's alert arrives."""

    def __init__(self, api: str, token: str) -> None:
        self.first: dict[str, tuple[float, int, str]] = {}  # device -> (at, alert id, event)
        self.events: Counter[str] = Counter()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(api, token), daemon=True)
        self._thread.start()
        if not self._connected.wait(15):
            raise SystemExit("the Python SSE client could not open the alert stream")

    def _run(self, api: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        # Closing the client or stopping `sigap up` ends the stream.
        with (
            contextlib.suppress(httpx.HTTPError, RuntimeError, OSError),
            self._client.stream("GET", f"{api}{STREAM_PATH}", headers=headers) as response,
        ):
            response.raise_for_status()
            self._connected.set()
            event = "message"
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    arrived = time.time()
                    alert = orjson.loads(line[5:])
                    self.events[event] += 1
                    device = alert.get("device_id")
                    if device is not None and device not in self.first:
                        self.first[device] = (arrived, int(alert["id"]), event)

    def close(self) -> None:
        """Cut the stream."""
        self._client.close()


class Echo:
    """A bare MQTT subscriber of the detectors' topics (service account): when the broker
    delivered each reading, to tell the broker's share from Sigap's."""

    def __init__(self, port: int, account: tuple[str, str]) -> None:
        self.first: dict[str, float] = {}
        ready = threading.Event()

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            self.first.setdefault(message.topic.split("/")[2], time.time())

        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-console-echo")
        self._client.username_pw_set(*account)
        self._client.on_message = on_message
        self._client.on_subscribe = lambda *_: ready.set()
        self._client.on_connect = lambda c, *_: c.subscribe(DEVICE_TOPIC.format("+"), qos=0)
        self._client.connect("127.0.0.1", port, keepalive=600)
        self._client.loop_start()
        if not ready.wait(15):
            raise SystemExit("the echo subscriber did not subscribe")

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


class Publisher:
    """The developer account publishing as any detector, QoS 1."""

    def __init__(self, port: int, account: tuple[str, str]) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-console-pub")
        self._client.username_pw_set(*account)
        self._client.connect("127.0.0.1", port, keepalive=600)
        self._client.loop_start()
        self._seq = 0

    def send(self, device: str) -> tuple[float, mqtt.MQTTMessageInfo]:
        """Publish a fire reading; the wall-clock time just before publishing, and its info."""
        self._seq += 1
        payload = orjson.dumps({"ts": int(time.time() * 1000), "seq": self._seq, **FIRE})
        at = time.time()
        info = self._client.publish(DEVICE_TOPIC.format(device), payload, qos=1)
        return at, info

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


# -- the browser -------------------------------------------------------------------------


def new_context(browser: Browser, base_url: str, instrument: bool = False) -> BrowserContext:
    """A fresh context (own cookies, empty cache) on the console; INSTRUMENT_JS if asked."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    if instrument:
        context.add_init_script(INSTRUMENT_JS)
    return context


def sign_in(page: Page, token: str, path: str = "/") -> float:
    """Open the console at path and sign in; the monotonic time of the click."""
    page.goto(path)
    page.locator(TOKEN).fill(token)
    clicked = time.monotonic()
    page.locator(SIGN_IN).click()
    return clicked


def clock_offset(page: Page, samples: int = 15) -> dict[str, float]:
    """Page clock minus time.time() in ms, from the call with the smallest round trip."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        before = time.time()
        page_ms = float(page.evaluate("() => performance.timeOrigin + performance.now()"))
        after = time.time()
        rtt = (after - before) * 1000
        offset = page_ms - (before + after) / 2 * 1000
        if best is None or rtt < best[1]:
            best = (offset, rtt)
    assert best is not None
    return {"offset_ms": round(best[0], 2), "rtt_ms": round(best[1], 2)}


@dataclass
class Fire:
    """One published fire: its detector, group, and time.time() just before publishing."""

    device: str
    published: float
    group: str
    burst: int | None = None


class Probes:
    """What watches the fires outside the browser (the Python SSE client on the same stream,
    the broker echo) and the publisher; shared by every page of the run."""

    def __init__(self, stack: Stack) -> None:
        port = stack.broker.port
        assert stack.accounts.developer is not None
        self.sse = SseClient(stack.api, stack.dispatcher_token)
        self.echo = Echo(port, (stack.accounts.service_username, stack.accounts.service_password))
        self.publisher = Publisher(port, stack.accounts.developer)

    def close(self) -> None:
        """Disconnect all three."""
        self.publisher.close()
        self.echo.close()
        self.sse.close()


PAGE_TABLES = ("streamed", "added", "raf", "painted")


class LivePage:
    """A dispatcher's console with INSTRUMENT_JS, signed in with its live stream open."""

    def __init__(self, browser: Browser, stack: Stack, probes: Probes) -> None:
        self.probes = probes
        self.context = new_context(browser, stack.api, instrument=True)
        self.page = page = self.context.new_page()
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught {exc}"))
        page.on("console", self._console)
        with page.expect_response(lambda r: STREAM_PATH in r.url and r.status == 200):
            sign_in(page, stack.dispatcher_token)
        page.locator(DISPATCH_VIEW).wait_for(state="visible")
        page.wait_for_timeout(500)  # the views' first loads and renders are over
        self.clock_start = clock_offset(page)
        log(f"page clock - time.time() = {self.clock_start['offset_ms']} ms")
        self.fires: list[Fire] = []

    def _console(self, message: ConsoleMessage) -> None:
        # The sign-in page's session probe answers 401 by design.
        if message.type in ("error", "warning") and "401" not in message.text:
            self.errors.append(message.text)

    def publish_and_draw(self, devices: list[str], group: str, burst: int | None = None) -> None:
        """Publish a fire on each device (back to back), then wait until the page has
        painted as many new articles."""
        drawn = int(self.page.evaluate("() => window.__bench.order.length"))
        infos = []
        for device in devices:
            at, info = self.probes.publisher.send(device)
            self.fires.append(Fire(device, at, group, burst))
            infos.append(info)
        for info in infos:
            info.wait_for_publish(10)
        try:
            self.page.evaluate(
                "([n, ms]) => window.__bench.waitFor(n, ms)",
                [drawn + len(devices), DRAW_TIMEOUT_MS],
            )
        except PlaywrightError as exc:
            log(f"not drawn: {exc.message.splitlines()[0]}")

    def singles(self, devices: list[str], group: str, settle_s: float) -> float:
        """One fire at a time, each drawn before the next; the wall time in s."""
        began = time.monotonic()
        for i, device in enumerate(devices):
            self.publish_and_draw([device], group)
            time.sleep(settle_s)  # the card's device and incident look-ups finish
            if (i + 1) % 20 == 0:
                log(f"{group}: {i + 1}/{len(devices)} fires drawn")
        return time.monotonic() - began

    def bursts(self, bursts: list[list[str]], group: str, settle_s: float) -> None:
        """Each burst's fires published back to back."""
        for b, devices in enumerate(bursts):
            self.publish_and_draw(devices, group, b)
            time.sleep(max(settle_s, 1.0))
            log(f"{group}: burst {b + 1}/{len(bursts)} of {len(devices)} drawn")

    def collect(self) -> dict[str, Any]:
        """The page's records in time.time() seconds (the clock offset averaged over the
        page's life), per table and alert id; the list length when each was added."""
        clock_end = clock_offset(self.page)
        offset_s = (self.clock_start["offset_ms"] + clock_end["offset_ms"]) / 2 / 1000
        seen: dict[str, Any] = self.page.evaluate(COLLECT_JS)
        times: dict[str, dict[int, float]] = {}
        for table in PAGE_TABLES:
            times[table] = {}
            for key, value in seen[table].items():
                ms = value["at"] if isinstance(value, dict) else value
                times[table][int(key)] = float(ms) / 1000 - offset_s
        return {
            "times": times,
            "articles": {int(k): int(v) for k, v in seen["articles"].items()},
            "clock": {"start": self.clock_start, "end": clock_end},
            "page_errors": self.errors[:10],
        }

    def profile(self, devices: list[str], settle_s: float) -> dict[str, Any]:
        """Fires one at a time under V8's sampling profiler (CDP Profiler, 200 us): where
        the page's main thread spends its time per fire. Not part of the latency stats."""
        cdp = self.context.new_cdp_session(self.page)
        cdp.send("Profiler.enable")
        cdp.send("Profiler.setSamplingInterval", {"interval": 200})
        cdp.send("Profiler.start")
        self.singles(devices, PROFILED, settle_s)
        profile = cdp.send("Profiler.stop")["profile"]
        cdp.detach()
        return summarise_profile(profile, len(devices))

    def close(self) -> None:
        """Close the page's context."""
        self.context.close()


PROFILED = "profiled"  # the group of the fires published under the profiler


def summarise_profile(profile: dict[str, Any], fires: int, top: int = 12) -> dict[str, Any]:
    """A V8 CPU profile as the busy time per fire and the functions that took it: self
    time, and inclusive time (self + callees; a recursive function counts once per frame)."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    self_us: Counter[int] = Counter()
    deltas = profile.get("timeDeltas", [])
    # timeDeltas[i] is the time before sample i: the time of sample i is timeDeltas[i + 1].
    for sample, delta in zip(profile.get("samples", []), [*deltas[1:], 0], strict=True):
        self_us[sample] += delta

    def key(node: dict[str, Any]) -> str:
        frame = node["callFrame"]
        name = frame.get("functionName") or "(anonymous)"
        url = frame.get("url", "")
        return f"{name} {url.rsplit('/', 1)[-1]}:{frame.get('lineNumber', 0) + 1}" if url else name

    inclusive_us: dict[int, int] = {}

    def inclusive(node_id: int) -> int:
        if node_id not in inclusive_us:
            children = nodes[node_id].get("children", [])
            inclusive_us[node_id] = self_us[node_id] + sum(inclusive(c) for c in children)
        return inclusive_us[node_id]

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(nodes) + 1000))
    by_self: Counter[str] = Counter()
    by_inclusive: Counter[str] = Counter()
    for node_id, node in nodes.items():
        by_self[key(node)] += self_us[node_id]
        by_inclusive[key(node)] += inclusive(node_id)
    idle = {"(idle)", "(root)", "(program)"}
    busy = sum(us for name, us in by_self.items() if name not in idle)

    def ranked(table: Counter[str]) -> list[list[Any]]:
        return [
            [name, round(us / 1000 / fires, 2), round(us / busy, 3) if busy else None]
            for name, us in table.most_common()
            if name not in idle
        ][:top]

    return {
        "fires": fires,
        "busy_ms_per_fire": round(busy / 1000 / fires, 1),
        "program_ms_per_fire": round(by_self["(program)"] / 1000 / fires, 1),
        "sampled_s": round(sum(self_us.values()) / 1e6, 1),
        # [function file:line, ms per fire, share of busy]
        "top_self": ranked(by_self),
        "top_inclusive": ranked(by_inclusive),
    }


def analyse(fires: list[Fire], probes: Probes, seen: dict[str, Any]) -> dict[str, Any]:
    """Per group of fires: latency of each stage from the publish (ms), and the browser's
    share."""
    times: dict[str, dict[int, float]] = seen["times"]
    rows: list[dict[str, Any]] = []
    for fire in fires:
        row: dict[str, Any] = {"fire": fire}
        if fire.device in probes.echo.first:
            row["broker"] = (probes.echo.first[fire.device] - fire.published) * 1000
        first = probes.sse.first.get(fire.device)
        if first is not None:
            arrived, alert_id, _event = first
            row["sse"] = (arrived - fire.published) * 1000
            row["articles"] = seen["articles"].get(alert_id)
            for table in PAGE_TABLES:
                if alert_id in times[table]:
                    row[table] = (times[table][alert_id] - fire.published) * 1000
        rows.append(row)
    out: dict[str, Any] = {}
    for group in dict.fromkeys(f.group for f in fires if f.group != PROFILED):
        chosen = [r for r in rows if r["fire"].group == group]
        stats: dict[str, Any] = {
            "fires": len(chosen),
            "missing": sum("raf" not in r for r in chosen),
        }
        for stage in ("broker", "sse", *PAGE_TABLES):
            stats[stage] = summary([r[stage] for r in chosen if stage in r])
        # The browser's own share, fire by fire.
        stats["page_js_and_render"] = summary(
            [r["painted"] - r["streamed"] for r in chosen if "painted" in r and "streamed" in r]
        )
        stats["drawn_minus_python_sse"] = summary(
            [r["raf"] - r["sse"] for r in chosen if "raf" in r and "sse" in r]
        )
        drawn, sse = stats["raf"]["p50_ms"], stats["sse"]["p50_ms"]
        stats["drawn_over_sse_p50"] = round(drawn / sse, 2) if drawn and sse else None
        lengths = [r["articles"] for r in chosen if r.get("articles") is not None]
        stats["articles_in_list"] = [min(lengths), max(lengths)] if lengths else None
        bursts = sorted({r["fire"].burst for r in chosen if r["fire"].burst is not None})
        if bursts:
            spans = []
            for b in bursts:
                members = [r for r in chosen if r["fire"].burst == b]
                if all("painted" in r for r in members):
                    start = min(r["fire"].published for r in members)
                    end = max(r["fire"].published + r["painted"] / 1000 for r in members)
                    spans.append(round((end - start) * 1000, 1))
            stats["bursts"] = len(bursts)
            stats["first_publish_to_last_painted_ms"] = spans
        elif len(chosen) >= 40:
            # Does a longer list slow the drawing? (every fire stays active: it grows)
            for name, part in (("first20", chosen[:20]), ("last20", chosen[-20:])):
                values = [r["raf"] for r in part if "raf" in r]
                stats[f"{name}_raf_p50_ms"] = round(percentile(values, 50), 1)
        out[group] = stats
    return out


# -- page weight -------------------------------------------------------------------------


@dataclass
class NetRecord:
    """One request seen through CDP."""

    url: str
    type: str = ""
    status: int | None = None
    decoded: int = 0  # body bytes after decoding (Network.dataReceived dataLength)
    transferred: int | None = None  # Network.loadingFinished encodedDataLength
    encoding: str = ""
    done: bool = False


class Network:
    """CDP Network events of one page, and Playwright's responses (for body() sizes)."""

    def __init__(self, context: BrowserContext, page: Page) -> None:
        self.requests: dict[str, NetRecord] = {}
        self.responses: list[Response] = []
        self.last_change = time.monotonic()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.loadingFailed", self._failed)
        page.on("response", lambda response: self.responses.append(response))

    def _sent(self, event: dict[str, Any]) -> None:
        self.last_change = time.monotonic()
        self.requests[event["requestId"]] = NetRecord(
            event["request"]["url"], event.get("type", "")
        )

    def _response(self, event: dict[str, Any]) -> None:
        record = self.requests.get(event["requestId"])
        if record is not None:
            response = event["response"]
            record.status = int(response["status"])
            record.type = event.get("type", record.type)
            headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
            record.encoding = headers.get("content-encoding", "")

    def _data(self, event: dict[str, Any]) -> None:
        record = self.requests.get(event["requestId"])
        if record is not None:
            record.decoded += int(event.get("dataLength", 0))

    def _finished(self, event: dict[str, Any]) -> None:
        self.last_change = time.monotonic()
        record = self.requests.get(event["requestId"])
        if record is not None:
            record.transferred = int(event["encodedDataLength"])
            record.done = True

    def _failed(self, event: dict[str, Any]) -> None:
        self.last_change = time.monotonic()
        record = self.requests.get(event["requestId"])
        if record is not None:
            record.done = True

    def pending(self) -> list[NetRecord]:
        """Requests not finished, the live stream aside (it never finishes)."""
        return [r for r in self.requests.values() if not r.done and STREAM_PATH not in r.url]

    def wait_quiet(self, page: Page, quiet_s: float = 0.5, limit_s: float = 30.0) -> None:
        """Until nothing but the stream has been pending for quiet_s."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            page.wait_for_timeout(50)  # pumps the events
            if not self.pending() and time.monotonic() - self.last_change >= quiet_s:
                return
        log(f"network not quiet after {limit_s} s: {[r.url for r in self.pending()][:5]}")

    def report(self, bodies: bool = True) -> dict[str, Any]:
        """Totals and per request; body() sizes of finished responses when asked."""
        body_sizes: dict[str, int] = {}
        if bodies:
            for response in self.responses:
                if STREAM_PATH in response.url:
                    continue
                with contextlib.suppress(PlaywrightError):
                    body_sizes[response.url] = body_sizes.get(response.url, 0) + len(
                        response.body()
                    )
        records = list(self.requests.values())
        by_type: Counter[str] = Counter()
        by_type_bytes: Counter[str] = Counter()
        per_path: Counter[str] = Counter()
        for r in records:
            by_type[r.type or "?"] += 1
            by_type_bytes[r.type or "?"] += r.decoded
            per_path[_short(r.url)] += 1
        out: dict[str, Any] = {
            "requests": len(records),
            "decoded_bytes": sum(r.decoded for r in records),
            "transferred_bytes": sum(r.transferred or 0 for r in records),
            "not_finished": [_short(r.url) for r in records if not r.done],
            "statuses": dict(Counter(str(r.status) for r in records)),
            "content_encodings": sorted({r.encoding for r in records if r.encoding}),
            "by_type": {k: {"requests": by_type[k], "bytes": by_type_bytes[k]} for k in by_type},
            "repeated_paths": {p: n for p, n in per_path.items() if n > 1},
            "largest": [
                {"path": _short(r.url), "bytes": r.decoded, "transferred": r.transferred}
                for r in sorted(records, key=lambda r: -r.decoded)[:8]
            ],
        }
        if bodies:
            out["body_bytes"] = sum(body_sizes.values())
        return out


def _short(url: str) -> str:
    """The path (and query) of a URL; device and incident ids folded, to count repeats."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    for prefix in ("/api/v1/devices/", "/api/v1/incidents/"):
        if path.startswith(prefix):
            return prefix + "{id}"
    return path


def page_weight(
    browser: Browser, stack: Stack, articles: int, reload: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """First load and sign-in in an empty-cache context until the dispatcher's list is shown
    (with `articles` alerts) and the network is quiet; then optionally a reload."""
    context = new_context(browser, stack.api)
    page = context.new_page()
    net = Network(context, page)
    began = time.monotonic()
    page.goto("/")
    page.locator(TOKEN).wait_for()
    form_ms = (time.monotonic() - began) * 1000
    page.locator(TOKEN).fill(stack.dispatcher_token)
    clicked = time.monotonic()
    page.locator(SIGN_IN).click()
    page.locator(DISPATCH_VIEW).wait_for(state="visible")
    view_ms = (time.monotonic() - clicked) * 1000
    page.wait_for_function(
        """n => document.querySelectorAll('article[data-testid="alert"]').length >= n
           && document.querySelector('[data-testid="view-dispatch"] p.empty')
                ?.dataset.i18n !== 'dispatch.loading'""",
        arg=articles,
    )
    list_ms = (time.monotonic() - clicked) * 1000
    net.wait_quiet(page)
    quiet_ms = (time.monotonic() - clicked) * 1000 - 500
    first = net.report() | {
        "articles": articles,
        # Driven by Playwright (typing the token takes its time): rough, for orientation.
        "goto_to_form_ms": round(form_ms),
        "click_to_view_ms": round(view_ms),
        "click_to_list_ms": round(list_ms),
        "click_to_network_quiet_ms": round(quiet_ms),
    }
    warm = None
    if reload:
        net.requests.clear()
        net.responses.clear()
        page.reload()
        page.locator(DISPATCH_VIEW).wait_for(state="visible")
        net.wait_quiet(page)
        warm = net.report(bodies=False)
    context.close()
    return first, warm


# -- 3. the map: time to draw 10,000 devices ---------------------------------------------
#
# The map view's contract as this bench uses it (js/mapview.js, js/map.js):
# the view is MAP_VIEW, its tab MAP_TAB, the map is MAP_CANVAS, and after each frame it
# draws, the canvas carries data-points (devices it holds) and data-draw-ms (that frame's
# JavaScript drawing time). Without a MAP_VIEW holding a MAP_CANVAS in the signed-in page,
# map_draw_time reports null with the reason and registers nothing.
MAP_VIEW = "[data-testid=view-map]"
MAP_TAB = "a[data-view=map]"
DISPATCH_TAB = "a[data-view=dispatch]"
MAP_CANVAS = f"{MAP_VIEW} canvas.map-canvas"
_CANVAS_JS = "document.querySelector('[data-testid=\"view-map\"] canvas.map-canvas')"
# Whether the map holds at least n devices (drawn on screen or not).
MAP_HOLDS_JS = f"n => Number({_CANVAS_JS}?.dataset.points ?? 0) >= n"
# Whether a frame drawn since MAP_FORGET_JS, on screen, holds at least n devices.
MAP_DRAWN_JS = f"""n => {{
  const c = {_CANVAS_JS};
  return !!c && c.clientWidth > 0 && c.dataset.drawMs !== undefined
    && Number(c.dataset.points ?? 0) >= n;
}}"""
MAP_FORGET_JS = f"() => {{ const c = {_CANVAS_JS}; if (c) delete c.dataset.drawMs; }}"
MAP_DRAW_MS_JS = f"() => Number({_CANVAS_JS}?.dataset.drawMs ?? NaN)"
# Resolves after the next frame has been rendered.
AFTER_FRAME_JS = "() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))"
MAP_CSV_HEADER = "id,kind,lat,lon,district,depth_mm,zone"
MAP_REDRAWS = 10


def register_map_devices(stack: Stack, devices: int) -> float:
    """`devices` more devices (60 % fire detectors, 40 % bins) on a 100-wide grid west of
    the detectors, by CSV import (10,000 rows a file at most); the seconds it took."""
    began = time.monotonic()
    run = uuid.uuid4().hex[:6]
    for start in range(0, devices, 10_000):
        lines = [MAP_CSV_HEADER]
        for k in range(start, min(devices, start + 10_000)):
            row, col = divmod(k, 100)
            lat, lon = -2.45 - 0.0015 * row, 112.78 + 0.0015 * col
            kind, depth = ("bin", "1000") if k % 5 < 2 else ("fire", "")
            lines.append(f"bench-map-{run}-{k:05d},{kind},{lat:.5f},{lon:.5f},Baamang,{depth},m{k}")
        response = stack.http.post(
            f"{stack.api}/api/v1/devices/import",
            content=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "text/csv"},
        )
        if response.status_code != 201:
            raise SystemExit(f"import refused ({response.status_code}): {response.text[:300]}")
    return time.monotonic() - began


def _map_drawn(
    page: Page, devices: int, began: float, timeout_ms: float = 120_000
) -> dict[str, Any]:
    """Wait for a frame on screen holding `devices`, then the frame after it: ms since
    `began` (monotonic) and the canvas's own draw time of that frame."""
    page.wait_for_function(MAP_DRAWN_JS, arg=devices, timeout=timeout_ms)
    draw_ms = float(page.evaluate(MAP_DRAW_MS_JS))
    page.evaluate(AFTER_FRAME_JS)
    return {"ms": round((time.monotonic() - began) * 1000, 1), "draw_ms": draw_ms}


def map_draw_time(browser: Browser, stack: Stack, devices: int) -> dict[str, Any]:
    """Time to draw `devices` more devices on the map (THE MAP MEASUREMENT; see above).

    Registers them only once the page has shown a map view with a canvas, then, with every
    registered device (held = the run's detectors + `devices`): signing in on /#map (the
    click to the frame after the first one holding them all: session, the registry
    download, drawing), opening the console on the map signed in (page load too: "ms"),
    the map tab from the dispatcher's view (data already loaded), and MAP_REDRAWS redraws
    of the whole map (window resizes that refit it): each as wall time to the frame after
    it and as the canvas's own data-draw-ms of that frame."""
    if devices <= 0:
        return {"ms": None, "reason": "skipped (--map-devices 0)"}
    context = new_context(browser, stack.api)
    page = context.new_page()
    try:
        sign_in(page, stack.dispatcher_token)
        page.locator(DISPATCH_VIEW).wait_for(state="visible")
        if page.locator(MAP_VIEW).count() == 0:
            return {"ms": None, "reason": f"the signed-in console has no {MAP_VIEW}"}
        if page.locator(MAP_CANVAS).count() == 0:
            return {"ms": None, "reason": f"{MAP_VIEW} has no {MAP_CANVAS}"}
        log(f"map view found; registering {devices} devices for it ...")
        import_s = register_map_devices(stack, devices)
        held = len(stack.detectors) + devices
        context.close()
        # Sign in on the map (empty cache): the click to the first frame holding them all.
        context = new_context(browser, stack.api)
        page = context.new_page()
        clicked = sign_in(page, stack.dispatcher_token, "/#map")
        signed_in = _map_drawn(page, held, clicked)
        log(f"map: sign-in click to {held} devices drawn in {signed_in['ms']} ms")
        # Open the console on the map, signed in (assets revalidated: all are no-cache).
        page.goto("about:blank")
        began = time.monotonic()
        page.goto("/#map")
        opened = _map_drawn(page, held, began)
        log(f"map: page load to {held} devices drawn in {opened['ms']} ms")
        # The map tab from the dispatcher's view.
        page.locator(DISPATCH_TAB).click()
        page.locator(DISPATCH_VIEW).wait_for(state="visible")
        page.wait_for_timeout(300)
        page.evaluate(MAP_FORGET_JS)
        began = time.monotonic()
        page.locator(MAP_TAB).click()
        tab = _map_drawn(page, held, began)
        # Redraws of everything: a resize refits the map (it follows until panned).
        walls: list[float] = []
        draws: list[float] = []
        for i in range(MAP_REDRAWS):
            page.evaluate(MAP_FORGET_JS)
            began = time.monotonic()
            # The map is min(75vh, 900px) tall (main is at most 1800px wide): 780 or 810.
            height = VIEWPORT["height"] - (40 if i % 2 == 0 else 0)
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            again = _map_drawn(page, held, began, timeout_ms=10_000)
            walls.append(again["ms"])
            draws.append(again["draw_ms"])
        return {
            "ms": opened["ms"],
            "devices_held": held,
            "import_s": round(import_s, 1),
            "open_on_map": opened,
            "sign_in_on_map": signed_in,
            "tab_from_dispatch": tab,
            "redraw_wall": summary(walls),
            "redraw_draw_ms": summary(draws),
        }
    except PlaywrightError as exc:
        return {"ms": None, "reason": f"map not drawn: {exc.message.splitlines()[0]}"}
    finally:
        context.close()


# -- main --------------------------------------------------------------------------------


def console_tree() -> dict[str, Any]:
    """The commit and the console files changed since it (others edit the tree meanwhile)."""
    git = shutil.which("git") or "git"
    head = subprocess.run(
        [git, "-C", str(devstack.REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    changed = subprocess.run(
        [git, "-C", str(devstack.REPO), "status", "--short", "--", "dashboard_api/console"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return {"head": head, "console_changes": [line.strip() for line in changed]}


def main() -> None:
    """Run the benchmark and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=100, help="one-at-a-time fires")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst", type=int, default=20, help="fires per burst")
    parser.add_argument(
        "--fires-big",
        type=int,
        default=20,
        help="one-at-a-time fires with a long list, before and after the map's devices",
    )
    parser.add_argument(
        "--profile-fires", type=int, default=10, help="fires under the profiler, per page"
    )
    parser.add_argument("--settle", type=float, default=0.3, help="s after each drawn fire")
    parser.add_argument("--map-devices", type=int, default=10_000)
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="sigap-bench-console-"))
    log(f"load average {load_before}; work folder {work}")
    result: dict[str, Any] = {
        "bench": "console",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "tree": console_tree(),
    }
    stack = start_stack(work)
    try:
        n_long, n_prof = args.fires_big, args.profile_fires
        detectors = args.fires + args.bursts * args.burst + 2 * (n_long + n_prof)
        log(f"sigap up at {stack.api}; registering {detectors} detectors ...")
        prepare(stack, detectors)
        pool = iter(stack.detectors)

        def take(n: int) -> list[str]:
            return [next(pool) for _ in range(n)]

        singles = take(args.fires)
        bursts = [take(args.burst) for _ in range(args.bursts)]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
            result["chromium"] = browser.version
            log("page weight: first load, empty list; then a reload ...")
            cold, warm = page_weight(browser, stack, 0, reload=True)
            log(f"{cold['requests']} requests, {cold['decoded_bytes']} bytes")
            probes = Probes(stack)
            log(f"publish -> drawn: {args.fires} fires one at a time, {args.bursts} x {args.burst}")
            live = LivePage(browser, stack, probes)
            singles_s = live.singles(singles, "single", args.settle)
            live.bursts(bursts, "burst", args.settle)
            # The same list length as the fires with every device registered, below.
            live.singles(take(n_long), "single_long_list", args.settle)
            profiles = {"long_list": live.profile(take(n_prof), args.settle)} if n_prof else {}
            seen = live.collect()
            live.close()
            latency = analyse(live.fires, probes, seen)
            log(f"single: drawn (raf) p50 {latency['single']['raf']['p50_ms']} ms")
            active = len(live.fires)
            log(f"page weight: first load with {active} active fires ...")
            full, _ = page_weight(browser, stack, active, reload=False)
            log("map ...")
            map_result = map_draw_time(browser, stack, args.map_devices)
            weight_big = None
            if map_result.get("devices_held"):
                log(f"page weight: first load with {map_result['devices_held']} devices ...")
                weight_big, _ = page_weight(browser, stack, active, reload=False)
            log(f"{n_long} fires one at a time with every device registered ...")
            live = LivePage(browser, stack, probes)
            held = map_result.get("devices_held")
            if held:
                # The worst case a dispatcher meets: the map opened once (so it holds every
                # device and follows the alerts), then back to the fire list.
                live.page.locator(MAP_TAB).click()
                live.page.wait_for_function(MAP_HOLDS_JS, arg=held, timeout=120_000)
                live.page.locator(DISPATCH_TAB).click()
                live.page.locator(DISPATCH_VIEW).wait_for(state="visible")
            live.singles(take(n_long), "single_all_devices", args.settle)
            if n_prof:
                profiles["all_devices"] = live.profile(take(n_prof), args.settle)
            seen_big = live.collect()
            live.close()
            big_latency = analyse(live.fires, probes, seen_big)
            probes.close()
            browser.close()
        result |= {
            "settle_s": args.settle,
            "latency": latency
            | big_latency
            | {
                "main_thread_profile": profiles,
                "single_wall_s": round(singles_s, 1),
                "clock": {"first_page": seen["clock"], "all_devices_page": seen_big["clock"]},
                "sse_events": dict(probes.sse.events),
                "page_errors": seen["page_errors"] + seen_big["page_errors"],
            },
            "page_weight": {
                "first_load_empty_list": cold,
                "reload_warm_cache": warm,
                "first_load_active_fires": full,
                "first_load_all_devices": weight_big,
            },
            "map_draw": map_result,
        }
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["load_average"] = {"before": load_before, "after": load_average()}
    result["tree_after"] = console_tree()  # the console may have changed during the run
    print(json.dumps(result))


if __name__ == "__main__":
    main()
