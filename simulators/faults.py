"""Faults on demand: what a scenario's fault windows do to a device's outgoing readings.

`FaultInjector.apply` takes the reading the physics produced and returns what the device
actually sends: nothing (silent, or held back), the reading changed, several readings, or
raw bytes that are not a valid reading. No I/O and no clock.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from simulators.scenario import Scenario, Window

# A malformed message cycles through these, so every rejection path of ingest is exercised.
MALFORMED_VARIANTS = ("not_json", "bad_type", "out_of_range", "no_quantity")
# Readings of a burst are this far apart in event time (a device flushing its buffer).
BURST_SPACING_MS = 10

Outgoing = dict[str, Any] | bytes


class FaultInjector:
    """Applies silences and faults per device; counts what it did, per fault kind."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.counts: Counter[str] = Counter()
        self._held: dict[str, dict[str, Any]] = {}
        self._stuck: dict[str, float] = {}
        self._toggle: Counter[str] = Counter()

    def apply(self, device_id: str, payload: dict[str, Any], t: float) -> list[Outgoing]:
        """What the device sends at model time `t` instead of (or besides) `payload`."""
        windows = self.scenario.active(device_id, t)
        if not windows:
            held = self._held.pop(device_id, None)
            self._stuck.pop(device_id, None)
            return [payload] if held is None else [payload, held]
        out: list[Outgoing] = [payload]
        for window in windows:
            out = self._one(window, device_id, out)
        return out

    def _one(self, window: Window, device_id: str, out: list[Outgoing]) -> list[Outgoing]:
        what = window.what
        if what == "silent":
            self.counts["silent"] += len(out)
            return []
        readings = [o for o in out if isinstance(o, dict)]
        if what == "clock_skew":
            self.counts[what] += len(readings)
            for reading in readings:
                reading["ts"] = int(reading["ts"]) + round(window.skew_s * 1000)
            return out
        if what == "stuck":
            for reading in readings:
                if "temp_c" in reading:
                    value = self._stuck.setdefault(device_id, float(reading["temp_c"]))
                    reading["temp_c"] = value
                    self.counts[what] += 1
            return out
        if what == "duplicate":
            self.counts[what] += len(out)
            return [o for o in out for _ in (0, 1)]
        if what == "burst":
            self.counts[what] += len(readings)
            burst: list[Outgoing] = []
            for o in out:
                if isinstance(o, dict):
                    burst.extend(
                        o | {"ts": int(o["ts"]) + k * BURST_SPACING_MS} for k in range(window.size)
                    )
                else:
                    burst.append(o)
            return burst
        # The rest act on every other reading, so the device still reports in between
        # (a device that sends only garbage or only late readings would just look offline).
        self._toggle[f"{what}:{device_id}"] += 1
        odd = self._toggle[f"{what}:{device_id}"] % 2 == 1
        if what == "out_of_order":
            held = self._held.pop(device_id, None)
            if held is not None:
                # The reading held back arrives after the newer one.
                return [*out, held]
            if odd and readings:
                self._held[device_id] = readings[0]
                self.counts[what] += 1
                return [o for o in out if o is not readings[0]]
            return out
        if what == "malformed" and odd and readings:
            # Per device, so each malformed device shows every variant in turn.
            n = self._toggle[f"malformed#{device_id}"]
            self._toggle[f"malformed#{device_id}"] += 1
            variant = MALFORMED_VARIANTS[n % len(MALFORMED_VARIANTS)]
            self.counts[what] += 1
            bad = malformed(readings[0], variant)
            return [bad if o is readings[0] else o for o in out]
        return out


def malformed(reading: dict[str, Any], variant: str) -> Outgoing:
    """A broken version of `reading` that ingest must reject with the named reason."""
    if variant == "not_json":
        # Cut mid-message, as a radio link or a full buffer would.
        return b'{"ts":' + str(reading["ts"]).encode() + b',"temp_c":3'
    if variant == "bad_type":
        return reading | {"temp_c": "panas"}
    if variant == "out_of_range":
        field = "smoke_obs_pct_m" if "smoke_obs_pct_m" in reading else "battery_pct"
        return reading | {field: 250.0}
    if variant == "no_quantity":
        return {"ts": reading["ts"], "seq": reading.get("seq", 0)}
    raise ValueError(f"unknown malformed variant {variant!r}")
