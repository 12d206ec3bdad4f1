"""Regional haze: a level per region from many detectors at once, what each detector learns
about the haze it lets in and its own drift, and the `haze.regional` alert (docs/rules.md,
"Haze").

The per-reading part (a detector's smoke judged on its excess over `base + ratio * level`)
is in rules/fire.py and costs a gather and three operations a round. Everything that looks
at every detector (the medians, the learning, the alert) runs here, on a timer, so that the
rounds that carry a fire alarm stay as short as they were.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from contract import optics
from contract.alerts import HAZE_SLOT
from contract.ispu import category, pm25_index
from contract.readings import KIND_CODES
from rules.events import Action, AlertEvent, Severity
from rules.state import EngineState

_FIRE = KIND_CODES["fire"]
_AIR = KIND_CODES["air"]
KIND = "haze.regional"
CATEGORY = "haze"
# By ISPU category rank (2 Tidak Sehat, 3 Sangat Tidak Sehat, 4 Berbahaya): an information
# alert that grows more urgent with the air.
SEVERITY: dict[int, Severity] = {
    0: Severity.info,
    1: Severity.info,
    2: Severity.info,
    3: Severity.minor,
    4: Severity.major,
}
DEVICE_PREFIX = "haze:"  # a regional alert's device id: haze:<region>

Trend = Literal["rising", "steady", "falling"]


@dataclass(frozen=True, slots=True)
class HazeConfig:
    """Engine-wide haze settings (SIGAP_RULES_HAZE_*); docs/rules.md "Haze" says what each
    does."""

    enabled: bool = True
    check_s: float = 60.0
    min_detectors: int = 8
    max_age_s: float = 900.0
    cell_deg: float = 0.1
    learn_min_pct_m: float = 0.5
    ratio_tau_s: float = 1800.0
    ratio_max: float = 3.0
    clear_max_pct_m: float = 0.2
    # The fire rules take off the haze a detector sees times (1 + margin): the level is a
    # minute old and the ratio an average, so what is left of a haze grows with the haze.
    # Clear air keeps the full sensitivity.
    margin: float = 0.5
    base_tau_s: float = 21600.0
    # Bases change over hours: they learn every this often, not at every check (a pass over
    # every detector); a detector without a base takes its first at any check.
    base_learn_s: float = 600.0
    base_max_rise_pct_m_per_day: float = 0.5
    typical_infiltration: float = 0.5
    detect_min_pct_m: float = 0.3
    base_first_max_pct_m: float = 0.5
    alert_index: int = 101
    clear_index: int = 80
    # An active alert changes category only this far (ISPU points) inside the new band: a
    # haze swinging about a band edge would otherwise update it every few minutes.
    category_margin: int = 10
    # With several ingest workers each estimates from its own share of the detectors (a
    # sample of every district); only one of them raises haze.regional.
    regional_alerts: bool = True
    trend_window_s: float = 3600.0


def region_name(district: str | None, lat: float, lon: float, cell_deg: float) -> str:
    """A device's region: its district, else its map cell (named by the south-west corner)."""
    if district:
        return district
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return "cell ?"
    south = math.floor(lat / cell_deg) * cell_deg
    west = math.floor(lon / cell_deg) * cell_deg
    return f"cell {south:.2f},{west:.2f}"


def category_moved(index: int, active_rank: int, margin: int) -> bool:
    """True when the index lies in another ISPU category than `active_rank`, and at least
    `margin` points inside it."""
    rank = category(index).rank
    if rank > active_rank:
        return category(max(index - margin, 0)).rank > active_rank
    if rank < active_rank:
        return category(index + margin).rank < active_rank
    return False


def outdoor_pm25(level: float, typical_infiltration: float) -> float:
    """PM2.5 outdoors (ug/m3) estimated from the region's median indoor haze (%/m)."""
    outdoor = min(level / typical_infiltration, 99.0)
    return optics.pm25_ugm3(optics.extinction_from_obscuration(outdoor))


@dataclass(frozen=True, slots=True)
class RegionHaze:
    """One region as GET /api/v1/haze shows it."""

    region: str
    detectors: int  # fresh detectors the level was estimated from
    stations: int  # fresh air-quality stations
    level_pct_m: float | None  # the median detector's haze (%/m); None: too few detectors
    pm25_ugm3: float | None
    pm25_source: Literal["stations", "detectors"] | None
    outdoor_obscuration_pct_m: float | None
    visibility_m: float | None
    ispu: int | None
    category: str | None  # ISPU category id (baik ... berbahaya)
    trend: Trend | None
    alert: bool  # a haze.regional alert is active
    checked_ms: int


@dataclass(slots=True)
class _Region:
    name: str
    level: float = 0.0
    known: bool = False
    active_rank: int | None = None  # the category rank of the active alert
    history: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=240))


class HazeTracker:
    """Per-region levels and alert state; learns per-detector ratios and baselines."""

    def __init__(self, config: HazeConfig | None = None) -> None:
        self.config = config or HazeConfig()
        self._codes: dict[str, int] = {}
        self._regions: list[_Region] = []
        # Per region code, read by every fire round; one more entry, always 0, is what a
        # device in no region (code -1: never registered) reads.
        self.level = np.zeros(1, np.float64)
        self.taken = np.zeros(1, np.float64)  # level * (1 + margin): what fire rules take off
        self.any_level = False  # False: every level is 0, the rounds skip the gather
        self._last_check: int | None = None
        self._last_base: int | None = None  # when the bases last learnt
        self._summary: list[RegionHaze] = []

    def code(self, name: str) -> int:
        """The region code of a name (a new code for a new name)."""
        found = self._codes.get(name)
        if found is None:
            found = self._codes[name] = len(self._regions)
            self._regions.append(_Region(name))
            self.level = np.append(self.level, 0.0)  # the new region's level is 0 for now
            self.taken = np.append(self.taken, 0.0)
        return found

    def seed(self, name: str, ispu_rank: int) -> None:
        """Restore an active haze.regional alert after a restart."""
        self._regions[self.code(name)].active_rank = ispu_rank

    def levels(self) -> dict[str, float]:
        """Each region's level (%/m) as of the last check, by name."""
        return {reg.name: float(self.level[code]) for code, reg in enumerate(self._regions)}

    def summary(self) -> list[RegionHaze]:
        """Every region with data at the last check, by name."""
        return sorted(self._summary, key=lambda r: r.region)

    def check(
        self,
        st: EngineState,
        n_devices: int,
        now: int,
        fire_level: npt.NDArray[np.uint8],
    ) -> list[AlertEvent]:
        """Levels, learning and haze.regional at `now` (docs/rules.md "Haze" steps 1..4)."""
        cfg = self.config
        events: list[AlertEvent] = []
        if not cfg.enabled or not self._regions:
            return events
        dt = 0.0 if self._last_check is None else max(now - self._last_check, 0) / 1000.0
        self._last_check = now
        n = n_devices
        kind = st.kind[:n]
        region = st.region[:n]
        # Compared this way round: NEVER minus anything would overflow. Whole fields at
        # once: converting a strided record field is cheaper than picking from it.
        age_ok = st.last_arrival[:n] >= now - int(cfg.max_age_s * 1000)
        last = st.last_haze[:n]  # smoke (detectors), PM2.5 (stations); float16
        # Not NaN, tested on the bits: numpy computes float16 in software, integers not.
        has = (region >= 0) & age_ok & ((last.view(np.uint16) & 0x7FFF) <= 0x7C00)
        fresh = np.flatnonzero(has & (kind == _FIRE))
        # Widened after the pick: converting all of float16 costs more than picking.
        smoke = last[fresh].astype(np.float64)
        base = st.smoke_base[fresh].astype(np.float64)
        # Only detectors with a learnt base count: before it, a clear-air reading would
        # pass for haze (they learn it below, at this very call).
        learnt = base > 0.0
        levels, counts = _medians(region[fresh[learnt]], (smoke - base)[learnt], len(self._regions))
        known = counts >= cfg.min_detectors
        # Below clear_max it is the detectors' noise, not haze: 0, and the rounds skip the
        # subtraction while every region is clear.
        hazy = known & (levels >= cfg.clear_max_pct_m)
        self.level = np.append(np.where(hazy, levels, 0.0), 0.0)
        self.taken = self.level * (1.0 + cfg.margin)
        self.any_level = bool(self.level.any())
        base_dt: float | None = None  # None: only detectors without a base learn now
        if self._last_base is None or now - self._last_base >= cfg.base_learn_s * 1000:
            base_dt = 0.0 if self._last_base is None else (now - self._last_base) / 1000.0
            self._last_base = now
        self._learn(st, fresh, region[fresh], smoke, base, known, fire_level, dt, base_dt)

        stations = np.flatnonzero(has & (kind == _AIR))
        station_pm25, station_counts = _medians(
            region[stations], last[stations].astype(np.float64), len(self._regions)
        )
        summary: list[RegionHaze] = []
        for code, reg in enumerate(self._regions):
            level = float(self.level[code])
            reg.known = bool(known[code])
            pm: float | None = None
            source: Literal["stations", "detectors"] | None = None
            if station_counts[code]:
                pm, source = float(station_pm25[code]), "stations"
            elif reg.known and (
                level >= cfg.detect_min_pct_m
                or (reg.active_rank is not None and level >= cfg.detect_min_pct_m / 2)
            ):
                # Detectors resolve a haze only well above their noise: below that, the
                # region is clear as far as they can tell (and an alert they raised clears).
                pm, source = outdoor_pm25(level, cfg.typical_infiltration), "detectors"
            elif not reg.known:
                if counts[code]:
                    summary.append(self._shown(reg, code, None, None, counts, 0, now))
                continue
            index = 0 if pm is None else pm25_index(pm)
            self._alert(reg, index, pm, level if reg.known else None, source, now, events)
            if pm is not None:
                reg.history.append((now, pm))
            summary.append(self._shown(reg, code, pm, source, counts, station_counts[code], now))
        self._summary = summary
        return events

    def _learn(
        self,
        st: EngineState,
        fresh: npt.NDArray[np.intp],
        region: npt.NDArray[np.int16],
        smoke: npt.NDArray[np.float64],
        base: npt.NDArray[np.float64],
        known: npt.NDArray[np.bool_],
        fire_level: npt.NDArray[np.uint8],
        dt: float,
        base_dt: float | None,
    ) -> None:
        cfg = self.config
        if base_dt is None and not self.any_level:
            # Clear air between the bases' learnings: only detectors without a base learn,
            # a few at most; picked first, so that the masks below run over those only.
            new = base == 0.0
            fresh, region, smoke, base = fresh[new], region[new], smoke[new], base[new]
        quiet = fire_level[fresh] == 0
        if not quiet.all():
            fresh, region, smoke, base = fresh[quiet], region[quiet], smoke[quiet], base[quiet]
        # Usually every region is clear: then every quiet detector learns its base, and the
        # masks below (a dozen passes over all detectors) would select them all.
        rows, s, b = fresh, smoke, base
        if self.any_level:
            level = self.level[region]
            learn_ratio = level >= cfg.learn_min_pct_m
            hazy = fresh[learn_ratio]
            if len(hazy):
                a = 1.0 - math.exp(-min(dt, cfg.ratio_tau_s) / cfg.ratio_tau_s)
                ratio = st.haze_ratio[hazy].astype(np.float64)
                sample = np.clip(
                    (smoke[learn_ratio] - base[learn_ratio]) / level[learn_ratio],
                    0.0,
                    cfg.ratio_max,
                )
                st.haze_ratio[hazy] = ratio + a * (sample - ratio)
            clear = ~learn_ratio & (~known[region] | (level < cfg.clear_max_pct_m))
            rows, s, b = fresh[clear], smoke[clear], base[clear]
        if base_dt is None:
            new = b == 0.0
            rows, s, b = rows[new], s[new], b[new]
            base_dt = 0.0  # (a = 0: only the first bases below)
        if len(rows):
            a = 1.0 - math.exp(-min(base_dt, cfg.base_tau_s) / cfg.base_tau_s)
            rise = cfg.base_max_rise_pct_m_per_day * base_dt / 86400.0
            # The typical clear-air reading: an average, followed down freely (a cleaned
            # chamber) and up at most `rise` (dust is slow; a smoulder is not dust).
            learnt = np.maximum(b + a * (s - b), 0.0)
            learnt = np.where(s > b, np.minimum(learnt, b + rise), learnt)
            # A base never learnt (0) takes the first clear reading at once, up to what a
            # clean chamber reads: else every region would look hazy for a day.
            first = np.minimum(np.maximum(s, 0.0), cfg.base_first_max_pct_m)
            st.smoke_base[rows] = np.where(b == 0.0, first, learnt)

    def _alert(
        self,
        reg: _Region,
        index: int,
        pm25: float | None,
        level: float | None,
        source: str | None,
        now: int,
        events: list[AlertEvent],
    ) -> None:
        cfg = self.config
        cat = category(index)
        action: Action | None = None
        if reg.active_rank is None and index >= cfg.alert_index:
            action = Action.raise_
        elif reg.active_rank is not None and index < cfg.clear_index:
            action = Action.clear
        elif reg.active_rank is not None and category_moved(
            index, reg.active_rank, cfg.category_margin
        ):
            action = Action.update
        if action is None or not cfg.regional_alerts:
            return
        shown_rank = cat.rank if action is not Action.clear else reg.active_rank
        assert shown_rank is not None
        reg.active_rank = None if action is Action.clear else cat.rank
        shown_level = "?" if level is None else f"{level:.2f}"
        if pm25 is None:
            reason = (
                f"haze lifted: {reg.name}: the detectors' median haze {shown_level} %/m is "
                f"below what they can measure ({cfg.detect_min_pct_m / 2:g} %/m)"
            )
        else:
            from_where = (
                "the air-quality stations"
                if source == "stations"
                else f"the detectors (median haze {shown_level} %/m)"
            )
            reason = (
                f"{reg.name}: ISPU {index} ({cat.name_id}) from PM2.5 {pm25:.0f} ug/m3, "
                f"by {from_where}"
            )
            if action is Action.clear:
                reason = f"haze lifted: {reason}, below {cfg.clear_index}"
        values = {"ispu": float(index)}
        if pm25 is not None:
            values["pm25_ugm3"] = round(pm25, 1)
        if level is not None:
            values["level_pct_m"] = round(level, 3)
        events.append(
            AlertEvent(
                action=action,
                slot=HAZE_SLOT,
                kind=KIND,
                category=CATEGORY,
                device_id=DEVICE_PREFIX + reg.name,
                device_index=-1,
                ts_ms=now,
                severity=SEVERITY[shown_rank],
                reason=reason,
                values=values,
            )
        )

    def _shown(
        self,
        reg: _Region,
        code: int,
        pm25: float | None,
        source: Literal["stations", "detectors"] | None,
        counts: npt.NDArray[np.int64],
        stations: int,
        now: int,
    ) -> RegionHaze:
        index = None if pm25 is None else pm25_index(pm25)
        extinction = None if pm25 is None else optics.extinction_from_pm25(pm25)
        return RegionHaze(
            region=reg.name,
            detectors=int(counts[code]),
            stations=int(stations),
            level_pct_m=float(self.level[code]) if reg.known else None,
            pm25_ugm3=None if pm25 is None else round(pm25, 1),
            pm25_source=source,
            outdoor_obscuration_pct_m=(
                None if extinction is None else round(optics.obscuration_pct_m(extinction), 3)
            ),
            visibility_m=(
                None
                if extinction is None or extinction <= 0
                else round(min(optics.visibility_m(extinction), optics.CLEAR_VISIBILITY_M))
            ),
            ispu=index,
            category=None if index is None else category(index).id.value,
            trend=self._trend(reg, now),
            alert=reg.active_rank is not None,
            checked_ms=now,
        )

    def _trend(self, reg: _Region, now: int) -> Trend | None:
        """Rising or falling when PM2.5 moved by a fifth or more over the trend window."""
        window = self.config.trend_window_s * 1000.0
        past = [pm for at, pm in reg.history if now - at >= window]
        if not past or not reg.history:
            return None
        before, current = past[-1], reg.history[-1][1]
        if current > before * 1.2 + 1.0:
            return "rising"
        if current < before / 1.2 - 1.0:
            return "falling"
        return "steady"


def _medians(
    groups: npt.NDArray[np.int16], values: npt.NDArray[np.float64], n_groups: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The median of `values` per group code, and each group's count (NaN where empty)."""
    counts = np.bincount(groups.astype(np.intp), minlength=n_groups).astype(np.int64)
    medians = np.full(n_groups, np.nan)
    if not len(values):
        return medians, counts
    # Grouped by a stable sort of the small integer codes (a radix sort: fast), then each
    # group's middle found by partition: a full sort of the values cost three times more.
    ordered = values[np.argsort(groups, kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for g in np.flatnonzero(counts).tolist():
        n = int(counts[g])
        a, b = (n - 1) // 2, n // 2
        middle = np.partition(ordered[starts[g] : starts[g] + n], (a, b))
        medians[g] = (middle[a] + middle[b]) / 2.0
    return medians, counts
