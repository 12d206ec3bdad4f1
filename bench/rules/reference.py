"""The reference rule engine: docs/rules.md as a plain per-reading Python loop (the oracle).

Readability over speed: one dataclass of state per device, one reading at a time, every
rule written the way docs/rules.md words it. The production engine (`rules/engine.py`,
vectorised numpy) must produce the same events; `tests/unit/test_rules_oracle.py` and
`bench/rules/run.py` compare the two.

Where docs/rules.md leaves room, the choices are commented here and listed in
bench/rules/README.md ("Readings of the specification").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from contract import optics
from contract.bins import BinStatus
from contract.ispu import category, pm25_index
from contract.readings import KIND_NAMES, QUANTITIES
from contract.thresholds import RuleParams
from ingest.batch import ReadingBatch
from rules.events import Action, AlertEvent, Severity
from rules.haze import HazeConfig, region_name
from rules.params import KIND_DEFAULTS, DeviceSpec

NEVER = -(2**63)  # the minimum int64, "no time yet"
EARTH_RADIUS_M = 6_371_000.0  # docs/rules.md: haversine with this radius

FIRE_KINDS = {1: "fire.pre_alarm", 2: "fire.alarm", 3: "fire.confirmed"}
# haze.regional by ISPU category rank: Tidak Sehat info, Sangat Tidak Sehat minor,
# Berbahaya major.
HAZE_SEVERITY = {
    0: Severity.info,
    1: Severity.info,
    2: Severity.info,
    3: Severity.minor,
    4: Severity.major,
}
FILL_KINDS = {1: "bin.nearly_full", 2: "bin.full"}
RING_SIZE = 4


@dataclass(slots=True)
class Pending:
    """A reading admitted but not evaluated yet (held by the reorder window)."""

    ts: int
    arrival: int  # `now` of the call that admitted it
    values: dict[str, float]  # only the quantities the reading carried


@dataclass(slots=True)
class HeatVerdict:
    """What one temperature reading says about heat."""

    temp: float
    fixed: bool
    rate: float | None  # C/min, steepest against a qualifying ring sample, None if none
    ror: bool
    heat: bool
    normal: bool
    rise: float | None  # C above the ring's coolest sample, None with an empty ring


@dataclass(slots=True)
class DeviceState:
    """Everything the rules remember about one device."""

    spec: DeviceSpec
    # Admission.
    last_ts: int = NEVER
    max_ts: int = NEVER
    last_arrival: int = NEVER
    pending: dict[int, Pending] = field(default_factory=dict)  # by event time
    # Heat ring: up to RING_SIZE earlier (ts, temp) samples, oldest first.
    ring: list[tuple[int, float]] = field(default_factory=list)
    # Fire (slot "fire").
    fire_level: int = 0
    first_alarm_ts: int = NEVER
    last_alarm_ts: int = NEVER
    fire_normal_since: int = NEVER
    # Bin fill level (slot "bin.fill").
    fill_level: int = 0
    fill_pending: int | None = None
    fill_count: int = 0
    # Fill rate.
    has_fill: bool = False
    ema: float = math.nan
    ema_ts: int = NEVER
    anchor_fill: float = math.nan
    anchor_ts: int = NEVER
    prior_rate: float = math.nan
    # bin.fire.
    bin_fire: bool = False
    bin_fire_normal_since: int = NEVER
    # bin.tilted, device.battery_low, device.offline.
    tilted: bool = False
    battery_low: bool = False
    offline: bool = False
    # device.fault.
    fault: bool = False
    good: int = 0
    stuck_value: float | None = None
    stuck_since: int = NEVER
    stuck_count: int = 0
    # Haze (docs/rules.md "Haze"), rounded as the production engine stores them: the ratio
    # and the newest value (smoke, or an air station's PM2.5) as float16, the base float32.
    region: str | None = None  # None: never registered
    ratio: float = 1.0
    base: float = 0.0
    last_haze: float | None = None


@dataclass(slots=True)
class RegionState:
    """A haze region's level and its haze.regional alert."""

    level: float = 0.0
    known: bool = False
    active_rank: int | None = None


def f16(value: float) -> float:
    """A value as float16 stores it (the production engine's haze ratio and newest value)."""
    return float(np.float16(value))


def f32(value: float) -> float:
    """A value as float32 stores it (the production engine's clear-air base)."""
    return float(np.float32(value))


def median(values: list[float]) -> float:
    """The middle value, or the mean of the two middle values."""
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def severity_of(kind: str, device_kind: str) -> Severity:
    """The severity of an alert kind (docs/rules.md, "Alerts")."""
    if kind in ("device.offline", "device.fault"):
        return Severity.major if device_kind == "fire" else Severity.minor
    return {
        "fire.pre_alarm": Severity.major,
        "fire.alarm": Severity.critical,
        "fire.confirmed": Severity.critical,
        "bin.nearly_full": Severity.info,
        "bin.full": Severity.minor,
        "bin.fire": Severity.critical,
        "bin.tilted": Severity.minor,
        "device.battery_low": Severity.minor,
    }[kind]


def category_of(kind: str) -> str:
    """The category of an alert kind: fire, bin or device."""
    if kind.startswith("fire.") or kind == "bin.fire":
        return "fire"
    return kind.split(".", 1)[0]


def _g(value: float) -> str:
    return f"{value:g}"


class ReferenceEngine:
    """docs/rules.md, one reading at a time (slow, obviously correct; the oracle)."""

    def __init__(
        self,
        devices: Sequence[DeviceSpec] = (),
        reorder_window_ms: int = 0,
        haze_config: HazeConfig | None = None,
    ) -> None:
        self.reorder_window_ms = int(reorder_window_ms)
        self.haze = haze_config or HazeConfig()
        self.regions: dict[str, RegionState] = {}  # in the order first seen
        self.last_haze_check: int | None = None
        self.last_base_learning: int | None = None
        self.states: dict[int, DeviceState] = {}
        self.late_count = 0  # rows not evaluated because they were no newer than last_ts
        self.duplicate_count = 0  # rows dropped because (device, ts) was already pending
        # Bookkeeping so that a batch costs time in its own rows, not in the fleet's size:
        self.holding: set[int] = set()  # devices with pending rows
        self.alarming: set[int] = set()  # fire devices at level >= 1 (confirmation partners)
        for spec in devices:
            self.upsert_device(spec)

    # ----------------------------------------------------------------- devices
    def upsert_device(self, spec: DeviceSpec) -> None:
        """Add a device, or replace its attributes and parameters keeping its rule state."""
        state = self.states.get(spec.index)
        if state is None:
            state = self.states[spec.index] = DeviceState(spec)
        else:
            state.spec = spec
        state.region = region_name(spec.district, spec.lat, spec.lon, self.haze.cell_deg)
        self.regions.setdefault(state.region, RegionState())

    def _state_for_row(self, batch: ReadingBatch, row: int) -> DeviceState:
        index = int(batch.device[row])
        state = self.states.get(index)
        if state is None:  # never registered: the class defaults of the batch's kind
            kind = KIND_NAMES[int(batch.kind[row])]
            spec = DeviceSpec(index, batch.device_ids[index], kind, KIND_DEFAULTS[kind])
            state = self.states[index] = DeviceState(spec)
        return state

    # --------------------------------------------------------------- admission
    def evaluate(self, batch: ReadingBatch, now_ms: int) -> list[AlertEvent]:
        """Admit a batch (late, duplicate, pending), release what is due, evaluate it."""
        now = int(now_ms)
        columns = batch.values.tolist()
        for row in range(len(batch)):
            state = self._state_for_row(batch, row)
            ts = int(batch.ts_ms[row])
            # 1. Late: no newer than the last evaluated reading (nothing is evaluated
            #    before the whole batch is admitted, so last_ts is as the batch began).
            if ts <= state.last_ts:
                self.late_count += 1
                continue
            # 2. Duplicate of a row already pending: the first arrival wins.
            if ts in state.pending:
                self.duplicate_count += 1
                continue
            # 3. Pending, stamped with the arrival time.
            values = {
                name: columns[q][row]
                for q, name in enumerate(QUANTITIES)
                if not math.isnan(columns[q][row])
            }
            state.pending[ts] = Pending(ts, now, values)
            self.holding.add(state.spec.index)
            state.max_ts = max(state.max_ts, ts)
        return self._release(now, by_max_ts=True)

    def release(self, now_ms: int) -> list[AlertEvent]:
        """Release and evaluate held readings that arrived at least R ago."""
        return self._release(int(now_ms), by_max_ts=False)

    def _release(self, now: int, by_max_ts: bool) -> list[AlertEvent]:
        window = self.reorder_window_ms
        released: dict[int, list[Pending]] = {}
        for index in sorted(self.holding):
            state = self.states[index]
            due = [
                p.ts
                for p in state.pending.values()
                if (by_max_ts and p.ts <= state.max_ts - window) or p.arrival <= now - window
            ]
            if not due:
                continue
            # Everything held up to the newest due row goes, so time order is kept.
            upto = max(due)
            rows = sorted(ts for ts in state.pending if ts <= upto)
            released[index] = [state.pending.pop(ts) for ts in rows]
            if not state.pending:
                self.holding.discard(index)
        return self._evaluate_rounds(released, now)

    # ------------------------------------------------------------------ rounds
    def _evaluate_rounds(self, released: dict[int, list[Pending]], now: int) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        rounds = max((len(rows) for rows in released.values()), default=0)
        for k in range(rounds):
            alarms: list[tuple[int, int]] = []  # (device index, ts) of alarm-level readings
            for index in sorted(released):
                rows = released[index]
                if k >= len(rows):
                    continue
                state = self.states[index]
                alarm_ts = self._evaluate_reading(state, rows[k], now, events)
                if alarm_ts is not None:
                    alarms.append((index, alarm_ts))
            self._confirm(alarms, events)
        return events

    def _evaluate_reading(
        self, state: DeviceState, reading: Pending, now: int, events: list[AlertEvent]
    ) -> int | None:
        """Run every family on one reading; the ts if it was a fire alarm-level reading."""
        ts, values = reading.ts, reading.values
        if state.offline:
            state.offline = False
            silent = (now - state.last_arrival) / 1000
            self._emit(
                events,
                state,
                Action.clear,
                "device.offline",
                "device.offline",
                ts,
                f"reporting again after {silent:g} s",
                {},
            )
        temp = values.get("temp_c")
        heat = self._heat(state, temp, ts) if temp is not None else None
        alarm_ts = None
        if state.spec.kind == "fire":
            alarm_ts = self._fire(state, ts, heat, values, events)
        elif state.spec.kind == "air" and "pm25_ugm3" in values:
            state.last_haze = f16(values["pm25_ugm3"])
        elif state.spec.kind == "bin":
            self._bin_fill(state, ts, values, events)
            self._bin_fire(state, ts, heat, events)
            self._bin_tilted(state, ts, values, events)
        self._battery(state, ts, values, events)
        self._fault(state, ts, values, events)
        state.last_ts = ts
        state.last_arrival = now
        return alarm_ts

    # -------------------------------------------------------------------- heat
    def _heat(self, state: DeviceState, temp: float, ts: int) -> HeatVerdict:
        p = state.spec.params
        fixed = temp >= p.heat_fixed_c
        # The steepest rise against any ring sample between min span and window, each
        # sample counted only as cool as the one before it (one low outlier fakes no rise).
        rates = [
            (temp - (sample_temp if j == 0 else max(sample_temp, state.ring[j - 1][1])))
            / ((ts - sample_ts) / 60_000)
            for j, (sample_ts, sample_temp) in enumerate(state.ring)  # oldest first
            if p.ror_min_span_s <= (ts - sample_ts) / 1000 <= p.ror_window_s
        ]
        rate = max(rates) if rates else None
        ror = p.ror_enabled and rate is not None and rate >= p.ror_c_per_min
        heat = fixed or ror
        normal = temp < p.heat_fixed_c - p.heat_clear_margin_c and not ror
        rise = temp - min(t for _, t in state.ring) if state.ring else None
        if not state.ring or ts - state.ring[-1][0] >= p.ror_window_s * 1000 / 4:
            state.ring.append((ts, temp))
            if len(state.ring) > RING_SIZE:
                state.ring.pop(0)
        return HeatVerdict(temp, fixed, rate, ror, heat, normal, rise)

    @staticmethod
    def _heat_reason(h: HeatVerdict, p: RuleParams) -> list[str]:
        causes = []
        if h.fixed:
            causes.append(f"temp_c {_g(h.temp)} >= heat_fixed_c {_g(p.heat_fixed_c)}")
        if h.ror and h.rate is not None:
            causes.append(f"rate of rise {h.rate:.2f} C/min >= ror_c_per_min {_g(p.ror_c_per_min)}")
        return causes

    # -------------------------------------------------------------------- fire
    def _fire(
        self,
        state: DeviceState,
        ts: int,
        heat: HeatVerdict | None,
        values: dict[str, float],
        events: list[AlertEvent],
    ) -> int | None:
        p = state.spec.params
        smoke = values.get("smoke_obs_pct_m")
        if smoke is not None:
            # Judged on its excess over the clear-air base and the region's haze.
            state.last_haze = f16(smoke)
            level = self.regions[state.region].level if state.region is not None else 0.0
            taken = level * (1.0 + self.haze.margin)  # the haze with its margin
            smoke = smoke - state.base - state.ratio * taken
        smoke_alarm = smoke is not None and smoke >= p.smoke_alarm_pct_m
        # Faint smoke with a warming or carbon monoxide at the detector is a pre-alarm too.
        warmed = heat is not None and heat.rise is not None and heat.rise >= p.corroborate_rise_c
        co = values.get("co_ppm")
        with_co = co is not None and co >= p.corroborate_co_ppm
        smoke_pre = smoke is not None and (
            smoke >= p.smoke_prealarm_pct_m
            or ((warmed or with_co) and smoke >= p.smoke_corroborated_pct_m)
        )
        is_heat = heat is not None and heat.heat
        alarm_level = is_heat or smoke_alarm
        neutral = heat is None and smoke is None
        normal = (
            not neutral
            and (heat is None or heat.normal)
            and (smoke is None or smoke < p.smoke_prealarm_pct_m * p.smoke_clear_ratio)
        )
        shown = {k: v for k, v in values.items() if k in ("temp_c", "smoke_obs_pct_m")}
        if heat is not None and heat.rate is not None:
            shown["ror_c_per_min"] = heat.rate
        causes = self._heat_reason(heat, p) if heat is not None and heat.heat else []
        if smoke_alarm and smoke is not None:
            causes.append(
                f"smoke_obs_pct_m {_g(smoke)} >= smoke_alarm_pct_m {_g(p.smoke_alarm_pct_m)}"
            )
        old = state.fire_level
        reason = ""
        if alarm_level:
            state.last_alarm_ts = ts
            state.fire_normal_since = NEVER
            if is_heat and smoke_alarm:
                state.fire_level = 3
                reason = "heat and smoke together: " + "; ".join(causes)
            elif state.fire_level >= 2:
                pass
            elif (
                state.first_alarm_ts != NEVER
                and ts - state.first_alarm_ts <= p.verify_window_s * 1000
            ):
                state.fire_level = 2
                reason = (
                    "; ".join(causes) + f"; verified: second alarm-level reading "
                    f"{(ts - state.first_alarm_ts) / 1000:g} s after the first "
                    f"(verify_window_s {_g(p.verify_window_s)})"
                )
            else:
                state.first_alarm_ts = ts
                state.fire_level = max(state.fire_level, 1)
                reason = "; ".join(causes) + "; unverified (one alarm-level reading)"
        elif smoke_pre and smoke is not None:
            state.fire_normal_since = NEVER
            state.fire_level = max(state.fire_level, 1)
            reason = (
                f"smoke_obs_pct_m {_g(smoke)} >= smoke_prealarm_pct_m {_g(p.smoke_prealarm_pct_m)}"
            )
        elif normal:
            if state.fire_normal_since == NEVER:
                state.fire_normal_since = ts
            held = ts - state.fire_normal_since
            if state.fire_level > 0 and held >= p.fire_clear_hold_s * 1000:
                state.fire_level = 0
                state.first_alarm_ts = NEVER
                reason = (
                    f"normal for {held / 1000:g} s >= fire_clear_hold_s "
                    f"{_g(p.fire_clear_hold_s)}: "
                    + ", ".join(f"{k} {_g(v)}" for k, v in shown.items())
                )
        elif not neutral:
            state.fire_normal_since = NEVER
        self._level_event(
            events, state, "fire", FIRE_KINDS, old, state.fire_level, ts, reason, shown
        )
        return ts if alarm_level else None

    def _confirm(self, alarms: list[tuple[int, int]], events: list[AlertEvent]) -> None:
        """Cross-device confirmation at the end of a round (ascending device index)."""
        for index, t_d in sorted(alarms):
            d = self.states[index]
            p = d.spec.params
            partners = [
                e
                for i, e in sorted((i, self.states[i]) for i in self.alarming)
                if i != index
                and e.spec.kind == "fire"
                and e.fire_level >= 1
                and e.last_alarm_ts != NEVER
                and abs(t_d - e.last_alarm_ts) <= p.confirm_window_s * 1000
                and self._near(d, e)
            ]
            if not partners:
                continue
            ts = max(t_d, max(e.last_alarm_ts for e in partners))
            group = [d, *partners]  # d first, then its partners in index order
            zones = {s.spec.zone for s in group}
            zone = (next(iter(zones)) or None) if len(zones) == 1 else None  # "": no zone
            for member in group:
                if member.fire_level >= 3:
                    continue  # already confirmed: nothing more to say
                others = tuple(s.spec.id for s in group if s is not member)
                old, member.fire_level = member.fire_level, 3
                reason = (
                    f"confirmed: {d.spec.id} alarmed at {t_d}, {', '.join(others)} alarmed "
                    f"within confirm_window_s {_g(p.confirm_window_s)} and in the same zone "
                    f"or within confirm_distance_m {_g(p.confirm_distance_m)}"
                )
                self._level_event(
                    events, member, "fire", FIRE_KINDS, old, 3, ts, reason, {}, others, zone
                )

    @staticmethod
    def _near(d: DeviceState, e: DeviceState) -> bool:
        a, b = d.spec, e.spec
        if a.zone and a.zone == b.zone:  # None and "" are no zone
            return True
        return distance_m(a.lat, a.lon, b.lat, b.lon) <= a.params.confirm_distance_m

    # -------------------------------------------------------------------- bins
    def _bin_fill(
        self, state: DeviceState, ts: int, values: dict[str, float], events: list[AlertEvent]
    ) -> None:
        fill = values.get("fill_pct")
        if fill is None:
            return
        p = state.spec.params
        level = state.fill_level
        if fill >= p.bin_full_pct:
            target, why = 2, f">= bin_full_pct {_g(p.bin_full_pct)}"
        elif level == 2 and fill >= p.bin_full_pct - p.bin_full_hysteresis_pct:
            target, why = 2, "within bin_full_hysteresis_pct of full"
        elif fill >= p.bin_nearly_full_pct:
            target, why = 1, f">= bin_nearly_full_pct {_g(p.bin_nearly_full_pct)}"
        elif fill < p.bin_emptied_pct:
            target, why = 0, f"< bin_emptied_pct {_g(p.bin_emptied_pct)} (emptied)"
        elif level >= 1:
            target, why = 1, "not emptied yet"
        else:
            target, why = 0, f"< bin_nearly_full_pct {_g(p.bin_nearly_full_pct)}"
        if target == level:
            state.fill_count = 0
        elif target == state.fill_pending:
            state.fill_count += 1
        else:
            state.fill_pending, state.fill_count = target, 1
        if target != level and state.fill_count >= p.bin_confirm_readings:
            state.fill_level, state.fill_count = target, 0
            reason = (
                f"fill_pct {fill:.1f} {why}, {p.bin_confirm_readings} consecutive readings "
                f"(bin_confirm_readings)"
            )
            self._level_event(
                events, state, "bin.fill", FILL_KINDS, level, target, ts, reason, {"fill_pct": fill}
            )
        self._fill_rate(state, ts, fill)

    @staticmethod
    def _fill_rate(state: DeviceState, ts: int, fill: float) -> None:
        p = state.spec.params
        if not state.has_fill:
            state.has_fill = True
            state.ema = fill
            state.anchor_ts, state.anchor_fill = ts, fill
        elif fill < state.ema - p.fill_emptied_drop_pct:
            state.ema = fill
            state.anchor_ts, state.anchor_fill = ts, fill
        else:
            a = 1 - math.exp(-(ts - state.ema_ts) / (p.fill_smoothing_s * 1000))
            state.ema += a * (fill - state.ema)
            span = ts - state.anchor_ts
            if span >= p.fill_rate_min_span_s * 1000 and span > 0:
                slope = (state.ema - state.anchor_fill) / (span / 3_600_000)
                if span > 2 * p.fill_rate_horizon_s * 1000:
                    state.prior_rate = slope
                    state.anchor_ts, state.anchor_fill = ts, state.ema
        state.ema_ts = ts

    def bin_status(self, index: int) -> BinStatus | None:
        """Smoothed fill, fill rate and hours to full of a bin; None before its first fill."""
        state = self.states.get(index)
        if state is None or state.spec.kind != "bin" or not state.has_fill:
            return None
        p = state.spec.params
        span = state.ema_ts - state.anchor_ts
        if span >= p.fill_rate_min_span_s * 1000 and span > 0:
            slope = (state.ema - state.anchor_fill) / (span / 3_600_000)
            w = min(1.0, span / (p.fill_rate_horizon_s * 1000))
            rate = slope if math.isnan(state.prior_rate) else w * slope + (1 - w) * state.prior_rate
        else:
            rate = state.prior_rate
        if state.ema >= p.bin_full_pct:
            hours: float | None = 0.0
        elif not math.isnan(rate) and rate > 0.05:
            hours = (p.bin_full_pct - state.ema) / rate
        else:
            hours = None
        return BinStatus(
            fill_pct=state.ema,
            rate_pct_per_h=None if math.isnan(rate) else rate,
            hours_to_full=hours,
            level=state.fill_level,
            reading_ts_ms=state.ema_ts,
        )

    def _bin_fire(
        self, state: DeviceState, ts: int, heat: HeatVerdict | None, events: list[AlertEvent]
    ) -> None:
        if heat is None:
            return
        p = state.spec.params
        values = {"temp_c": heat.temp}
        if heat.rate is not None:
            values["ror_c_per_min"] = heat.rate
        if heat.heat:
            state.bin_fire_normal_since = NEVER
            if not state.bin_fire:
                state.bin_fire = True
                reason = "; ".join(self._heat_reason(heat, p))
                self._emit(events, state, Action.raise_, "bin.fire", "bin.fire", ts, reason, values)
        elif heat.normal:
            if state.bin_fire_normal_since == NEVER:
                state.bin_fire_normal_since = ts
            held = ts - state.bin_fire_normal_since
            if state.bin_fire and held >= p.fire_clear_hold_s * 1000:
                state.bin_fire = False
                reason = (
                    f"temp_c {_g(heat.temp)} normal for {held / 1000:g} s >= fire_clear_hold_s "
                    f"{_g(p.fire_clear_hold_s)}"
                )
                self._emit(events, state, Action.clear, "bin.fire", "bin.fire", ts, reason, values)
        else:
            state.bin_fire_normal_since = NEVER

    def _bin_tilted(
        self, state: DeviceState, ts: int, values: dict[str, float], events: list[AlertEvent]
    ) -> None:
        tilt = values.get("tilt_deg")
        if tilt is None:
            return
        p = state.spec.params
        if not state.tilted and tilt >= p.tilt_alarm_deg:
            state.tilted = True
            reason = f"tilt_deg {_g(tilt)} >= tilt_alarm_deg {_g(p.tilt_alarm_deg)}"
            self._emit(
                events,
                state,
                Action.raise_,
                "bin.tilted",
                "bin.tilted",
                ts,
                reason,
                {"tilt_deg": tilt},
            )
        elif state.tilted and tilt < p.tilt_clear_deg:
            state.tilted = False
            reason = f"tilt_deg {_g(tilt)} < tilt_clear_deg {_g(p.tilt_clear_deg)}"
            self._emit(
                events,
                state,
                Action.clear,
                "bin.tilted",
                "bin.tilted",
                ts,
                reason,
                {"tilt_deg": tilt},
            )

    # ------------------------------------------------------------------ health
    def _battery(
        self, state: DeviceState, ts: int, values: dict[str, float], events: list[AlertEvent]
    ) -> None:
        p = state.spec.params
        pct, volts = values.get("battery_pct"), values.get("battery_v")
        shown = {k: v for k, v in (("battery_pct", pct), ("battery_v", volts)) if v is not None}
        if not shown:
            return
        low = []
        if pct is not None and pct < p.battery_low_pct:
            low.append(f"battery_pct {_g(pct)} < battery_low_pct {_g(p.battery_low_pct)}")
        if volts is not None and volts < p.battery_low_v:
            low.append(f"battery_v {_g(volts)} < battery_low_v {_g(p.battery_low_v)}")
        ok_pct = pct is None or pct >= p.battery_low_pct + p.battery_clear_pct_margin
        ok_v = volts is None or volts >= p.battery_low_v + p.battery_clear_v_margin
        if low and not state.battery_low:
            state.battery_low = True
            self._emit(
                events,
                state,
                Action.raise_,
                "device.battery_low",
                "device.battery_low",
                ts,
                "; ".join(low),
                shown,
            )
        elif state.battery_low and ok_pct and ok_v:
            state.battery_low = False
            reason = "battery OK again: " + ", ".join(f"{k} {_g(v)}" for k, v in shown.items())
            reason += (
                f" (clear at battery_pct >= {_g(p.battery_low_pct + p.battery_clear_pct_margin)},"
                f" battery_v >= {_g(p.battery_low_v + p.battery_clear_v_margin)})"
            )
            self._emit(
                events,
                state,
                Action.clear,
                "device.battery_low",
                "device.battery_low",
                ts,
                reason,
                shown,
            )

    def check_offline(self, now_ms: int) -> list[AlertEvent]:
        """Raise device.offline for devices silent longer than their offline interval."""
        now = int(now_ms)
        events: list[AlertEvent] = []
        for index in sorted(self.states):
            state = self.states[index]
            if state.last_arrival == NEVER or state.offline:
                continue
            p = state.spec.params
            limit_ms = p.offline_intervals * state.spec.interval_s * 1000
            silent = now - state.last_arrival
            if silent > limit_ms:
                state.offline = True
                reason = (
                    f"silent for {silent / 1000:g} s > offline_intervals {_g(p.offline_intervals)}"
                    f" x reporting interval {_g(state.spec.interval_s)} s"
                )
                self._emit(
                    events,
                    state,
                    Action.raise_,
                    "device.offline",
                    "device.offline",
                    now,
                    reason,
                    {"silent_s": silent / 1000},
                )
        return events

    # ------------------------------------------------------------------- haze
    def check_haze(self, now_ms: int) -> list[AlertEvent]:
        """docs/rules.md "Haze" steps 1..4: levels, learning, haze.regional."""
        cfg = self.haze
        now = int(now_ms)
        events: list[AlertEvent] = []
        if not cfg.enabled or not self.regions:
            return events
        dt = 0.0 if self.last_haze_check is None else max(now - self.last_haze_check, 0) / 1000
        self.last_haze_check = now
        max_age = int(cfg.max_age_s * 1000)

        def fresh(state: DeviceState, value: float | None) -> bool:
            return (
                state.region is not None
                and value is not None
                and not math.isnan(value)
                and state.last_arrival >= now - max_age
            )

        detectors: dict[str, list[DeviceState]] = {}
        stations: dict[str, list[float]] = {}
        for index in sorted(self.states):
            state = self.states[index]
            if not fresh(state, state.last_haze):
                continue
            if state.spec.kind == "fire":
                detectors.setdefault(str(state.region), []).append(state)
            elif state.spec.kind == "air":
                stations.setdefault(str(state.region), []).append(float(state.last_haze or 0))
        for name, region in self.regions.items():
            found = detectors.get(name, [])
            based = [d for d in found if d.base > 0.0]  # a base learnt: clear air known
            region.known = len(based) >= cfg.min_detectors
            excess = [float(d.last_haze or 0) - d.base for d in based]
            level = median(excess) if region.known else 0.0
            # Below clear_max it is the detectors' noise, not haze.
            region.level = level if level >= cfg.clear_max_pct_m else 0.0
        a_ratio = 1 - math.exp(-min(dt, cfg.ratio_tau_s) / cfg.ratio_tau_s)
        # Bases learn every base_learn_s; between, only a detector without one takes it.
        last_base = self.last_base_learning
        learn_bases = last_base is None or now - last_base >= cfg.base_learn_s * 1000
        base_dt = 0.0 if last_base is None or not learn_bases else (now - last_base) / 1000
        if learn_bases:
            self.last_base_learning = now
        a_base = 1 - math.exp(-min(base_dt, cfg.base_tau_s) / cfg.base_tau_s)
        rise = cfg.base_max_rise_pct_m_per_day * base_dt / 86400.0
        for name, found in detectors.items():
            region = self.regions[name]
            for d in found:
                if d.fire_level != 0:
                    continue  # a detector in a fire state learns nothing
                smoke = float(d.last_haze or 0)
                if region.level >= cfg.learn_min_pct_m:
                    sample = min(max((smoke - d.base) / region.level, 0.0), cfg.ratio_max)
                    d.ratio = f16(d.ratio + a_ratio * (sample - d.ratio))
                elif not region.known or region.level < cfg.clear_max_pct_m:
                    if d.base == 0.0:  # never learnt: the first clear reading, capped
                        d.base = f32(min(max(smoke, 0.0), cfg.base_first_max_pct_m))
                    elif learn_bases:
                        learnt = max(d.base + a_base * (smoke - d.base), 0.0)
                        if smoke > d.base:  # dust rises slowly
                            learnt = min(learnt, d.base + rise)
                        d.base = f32(learnt)
        for name, region in self.regions.items():
            pm25: float | None = None
            if name in stations:
                pm25 = median(stations[name])
                source = "the air-quality stations"
            elif region.known and (
                region.level >= cfg.detect_min_pct_m
                or (region.active_rank is not None and region.level >= cfg.detect_min_pct_m / 2)
            ):
                outdoor = min(region.level / cfg.typical_infiltration, 99.0)
                pm25 = optics.pm25_ugm3(optics.extinction_from_obscuration(outdoor))
                source = f"the detectors (median haze {region.level:.2f} %/m)"
            elif region.known:
                source = "the detectors: below what they can measure"  # clear to them
            else:
                continue
            index = 0 if pm25 is None else pm25_index(pm25)
            rank = category(index).rank
            if region.active_rank is None and index >= cfg.alert_index:
                action, shown = Action.raise_, rank
            elif region.active_rank is not None and index < cfg.clear_index:
                action, shown = Action.clear, region.active_rank
            elif region.active_rank is not None and (
                # Into another category, and category_margin points inside it.
                (
                    rank > region.active_rank
                    and category(max(index - cfg.category_margin, 0)).rank > region.active_rank
                )
                or (
                    rank < region.active_rank
                    and category(index + cfg.category_margin).rank < region.active_rank
                )
            ):
                action, shown = Action.update, rank
            else:
                continue
            region.active_rank = None if action is Action.clear else rank
            events.append(
                AlertEvent(
                    action=action,
                    slot="haze.regional",
                    kind="haze.regional",
                    category="haze",
                    device_id=f"haze:{name}",
                    device_index=-1,
                    ts_ms=now,
                    severity=HAZE_SEVERITY[shown],
                    reason=f"{name}: ISPU {index} (PM2.5 {pm25} ug/m3), by {source}",
                    values={"ispu": float(index)},
                )
            )
        return events

    def haze_learnt(self, index: int) -> tuple[float, float]:
        """A fire detector's learnt haze ratio and clear-air base (%/m)."""
        state = self.states[index]
        return state.ratio, state.base

    def _fault(
        self, state: DeviceState, ts: int, values: dict[str, float], events: list[AlertEvent]
    ) -> None:
        p = state.spec.params
        temp, distance = values.get("temp_c"), values.get("distance_mm")
        causes = []
        if temp is not None:
            if temp < p.temp_min_plausible_c:
                causes.append(
                    f"temp_c {_g(temp)} < temp_min_plausible_c {_g(p.temp_min_plausible_c)}"
                )
            if temp == state.stuck_value:
                state.stuck_count += 1
            else:
                state.stuck_value, state.stuck_since, state.stuck_count = temp, ts, 1
            stuck_s = (ts - state.stuck_since) / 1000
            if state.stuck_count >= p.stuck_min_readings and stuck_s >= p.stuck_min_span_s:
                causes.append(
                    f"temp_c stuck at {_g(temp)}: {state.stuck_count} readings in a row over "
                    f"{stuck_s:g} s (stuck_min_readings {p.stuck_min_readings}, "
                    f"stuck_min_span_s {_g(p.stuck_min_span_s)})"
                )
        if state.spec.kind == "fire" and state.base >= p.drift_fault_pct_m:
            causes.append(
                f"maintenance: clear-air smoke base {_g(state.base)} >= drift_fault_pct_m "
                f"{_g(p.drift_fault_pct_m)}"
            )
        depth = state.spec.depth_mm
        if state.spec.kind == "bin" and distance is not None and depth is not None:
            limit = depth * p.distance_max_ratio
            if distance > limit:
                causes.append(f"distance_mm {_g(distance)} > depth_mm x ratio {_g(limit)}")
        shown = {k: v for k, v in (("temp_c", temp), ("distance_mm", distance)) if v is not None}
        if causes:
            state.good = 0
            if not state.fault:
                state.fault = True
                self._emit(
                    events,
                    state,
                    Action.raise_,
                    "device.fault",
                    "device.fault",
                    ts,
                    "; ".join(causes),
                    shown,
                )
        elif temp is not None or distance is not None:
            state.good += 1
            if state.fault and state.good >= p.fault_clear_readings:
                state.fault = False
                reason = (
                    f"{state.good} good readings (fault_clear_readings {p.fault_clear_readings})"
                )
                self._emit(
                    events, state, Action.clear, "device.fault", "device.fault", ts, reason, shown
                )

    # ------------------------------------------------------------------ events
    def _level_event(
        self,
        events: list[AlertEvent],
        state: DeviceState,
        slot: str,
        kinds: dict[int, str],
        old: int,
        new: int,
        ts: int,
        reason: str,
        values: dict[str, float],
        partners: tuple[str, ...] = (),
        zone: str | None = None,
    ) -> None:
        """raise from 0, clear to 0 (with the kind being cleared), update in between."""
        if old == new:
            return
        if slot == "fire":
            if new >= 1:
                self.alarming.add(state.spec.index)
            else:
                self.alarming.discard(state.spec.index)
        if old == 0:
            action, kind = Action.raise_, kinds[new]
        elif new == 0:
            action, kind = Action.clear, kinds[old]
        else:
            action, kind = Action.update, kinds[new]
        self._emit(events, state, action, slot, kind, ts, reason, values, partners, zone)

    @staticmethod
    def _emit(
        events: list[AlertEvent],
        state: DeviceState,
        action: Action,
        slot: str,
        kind: str,
        ts: int,
        reason: str,
        values: dict[str, float],
        partners: tuple[str, ...] = (),
        zone: str | None = None,
    ) -> None:
        spec = state.spec
        events.append(
            AlertEvent(
                action=action,
                slot=slot,
                kind=kind,
                category=category_of(kind),
                device_id=spec.id,
                device_index=spec.index,
                ts_ms=int(ts),
                severity=severity_of(kind, spec.kind),
                reason=reason,
                values=dict(values),
                partners=partners,
                zone=zone,
            )
        )
