"""The rule engine: admission (duplicates, late readings, reorder window) and rounds over
every rule family, vectorised across devices (docs/rules.md is the specification)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract.bins import BinStatus
from contract.readings import KIND_CODES, QUANTITIES
from contract.thresholds import RuleParams
from ingest.batch import ReadingBatch
from rules import bins, fire, haze, health, heat
from rules.core import ParamTable, Round
from rules.events import Action, AlertEvent
from rules.params import DeviceSpec
from rules.partners import Partners
from rules.state import EngineState

_FIRE = KIND_CODES["fire"]
_BIN = KIND_CODES["bin"]
_AIR = KIND_CODES["air"]


@dataclass(frozen=True, slots=True)
class Family:
    """A rule family: the device kinds it applies to and its evaluate(part, heat) function,
    which may return what cross-device work needs (fire confirmation)."""

    name: str
    kinds: frozenset[int]
    evaluate: Callable[[Round, heat.Heat], fire.Verdict | None]


def _health(part: Round, _heat: heat.Heat) -> None:
    health.evaluate(part)


ALL_KINDS = frozenset(KIND_CODES.values())

# The explicit registry of rule families, in evaluation order within a round. Before them:
# device.offline clears and the heat verdict; after them: fire confirmation across devices
# (docs/rules.md). A family for one kind sees that kind's part of the round (fire detectors
# first, then the rest); a family for every kind sees the whole round.
FAMILIES: tuple[Family, ...] = (
    Family("fire", frozenset({KIND_CODES["fire"]}), fire.evaluate),
    Family("bins", frozenset({KIND_CODES["bin"]}), bins.evaluate),
    Family("health", ALL_KINDS, _health),
)

# Slots whose state can be seeded from alerts still open after a restart.
SLOT_KIND_LEVELS: dict[str, dict[str, int]] = {
    fire.SLOT: {kind: level for level, kind in fire.KINDS.items()},
    bins.FILL_SLOT: {kind: level for level, kind in bins.FILL_KINDS.items()},
}


@dataclass(slots=True)
class _Pending:
    """Readings admitted but held by the reorder window (columnar)."""

    device: npt.NDArray[np.intp]
    ts: npt.NDArray[np.int64]
    arrival: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @staticmethod
    def empty() -> _Pending:
        return _Pending(
            np.empty(0, np.intp),
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty((len(QUANTITIES), 0), np.float64),
        )


class RuleEngine:
    """Per-device state arrays and the families that read and advance them."""

    def __init__(
        self,
        devices: Iterable[DeviceSpec] = (),
        reorder_window_ms: int = 0,
        capacity: int = 1024,
        haze_config: haze.HazeConfig | None = None,
    ) -> None:
        self.reorder_window_ms = int(reorder_window_ms)
        self.haze = haze.HazeTracker(haze_config)
        # The highest clear-air base (set by the haze timer) and the lowest drift limit of
        # any profile registered: while the first is below the second no round tests drift.
        self._max_base = 0.0
        self._min_drift_limit = float("inf")
        devices = list(devices)
        # Size the arrays for the fleet at once: growing by doubling would leave up to half
        # of them unused.
        needed = max((spec.index for spec in devices), default=-1) + 1
        self.state = EngineState(needed if needed > 0 else capacity)
        self.table = ParamTable()
        self.device_ids: list[str] = []
        self._zones: dict[str, int] = {}
        self._zone_names: list[str | None] = []
        self._alarming: dict[int, None] = {}  # fire devices with level >= 1
        self._partners = Partners(self.state, self.table)
        # How many devices of each kind have each parameter profile: when a kind has one,
        # a round's part of that kind needs no scan of its devices' profiles.
        self._kind_profiles: dict[int, dict[int, int]] = {}
        self._pending = _Pending.empty()
        # Scratch arrays (one slot per device) for finding repeated devices in a batch.
        self._mark = np.zeros(0, np.int64)
        self._flag = np.zeros(0, bool)
        self.late_readings = 0
        self.duplicate_readings = 0
        # Devices whose sensor reported a fault (a device profile's status string), and the
        # event time of the latest report: the first reading after it clears device.fault.
        self._reported: dict[int, int] = {}
        for spec in devices:
            self.upsert_device(spec)
        if devices:
            self._partners.prepare()  # now, rather than during the first alarm

    # -- devices -------------------------------------------------------------------------

    def upsert_device(self, spec: DeviceSpec) -> None:
        """Add a device or refresh its attributes and parameters (its state is kept)."""
        st = self.state
        self._ensure(spec.index)
        if st.kind[spec.index]:  # registered before (kind 0: never): its old profile goes
            old = self._kind_profiles[int(st.kind[spec.index])]
            was = int(st.profile[spec.index])
            old[was] -= 1
            if not old[was]:
                del old[was]
        self.device_ids[spec.index] = spec.id
        self._zone_names[spec.index] = spec.zone
        st.kind[spec.index] = KIND_CODES[spec.kind]
        st.profile[spec.index] = profile = self.table.profile(spec.params)
        self._min_drift_limit = min(self._min_drift_limit, spec.params.drift_fault_pct_m)
        counts = self._kind_profiles.setdefault(KIND_CODES[spec.kind], {})
        counts[profile] = counts.get(profile, 0) + 1
        st.zone[spec.index] = (
            self._zones.setdefault(spec.zone, len(self._zones)) if spec.zone else -1
        )
        st.lat[spec.index] = spec.lat
        st.lon[spec.index] = spec.lon
        region = haze.region_name(spec.district, spec.lat, spec.lon, self.haze.config.cell_deg)
        st.region[spec.index] = self.haze.code(region)
        st.depth[spec.index] = spec.depth_mm if spec.depth_mm else np.nan
        st.offline_after_ms[spec.index] = int(
            spec.interval_s * spec.params.offline_intervals * 1000
        )
        self._partners.changed(spec.index, len(self.device_ids))

    def params(self, index: int) -> RuleParams:
        """The parameters a device is evaluated with."""
        return self.table.profiles[int(self.state.profile[index])]

    def seed(self, slot: str, index: int, kind: str) -> None:
        """Restore an active slot after a restart, from an alert still open in the database."""
        st = self.state
        st.ensure(index + 1)
        if slot == fire.SLOT:
            st.fire_level[index] = SLOT_KIND_LEVELS[slot][kind]
            self._alarming[index] = None
        elif slot == bins.FILL_SLOT:
            st.fill_level[index] = SLOT_KIND_LEVELS[slot][kind]
        elif slot == bins.FIRE_SLOT:
            st.binfire[index] = True
        elif slot == bins.TILT_SLOT:
            st.tilted[index] = True
        elif slot == health.BATTERY_SLOT:
            st.battery_low[index] = True
        elif slot == health.OFFLINE_SLOT:
            st.offline[index] = True
        elif slot == health.FAULT_SLOT:
            st.fault[index] = True

    def seed_haze(self, device_id: str, ispu_rank: int) -> None:
        """Restore an active haze.regional alert (device id haze:<region>) after a restart."""
        if device_id.startswith(haze.DEVICE_PREFIX):
            self.haze.seed(device_id.removeprefix(haze.DEVICE_PREFIX), ispu_rank)

    def state_nbytes(self) -> int:
        """Memory held by the per-device arrays and the confirmation partners' index."""
        return self.state.nbytes() + self._partners.nbytes()

    def bin_status(self, index: int) -> BinStatus | None:
        """Fill, rate and time to full of a bin (None before its first fill reading)."""
        if index >= len(self.device_ids) or self.state.kind[index] != KIND_CODES["bin"]:
            return None
        p = self.params(index)
        found = bins.status(
            self.state,
            p.bin_full_pct,
            index,
            {
                "fill_rate_min_span_s": p.fill_rate_min_span_s,
                "fill_rate_horizon_s": p.fill_rate_horizon_s,
            },
        )
        return None if found is None else BinStatus(*found)

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, batch: ReadingBatch, now_ms: int) -> list[AlertEvent]:
        """Admit a batch, evaluate what is released, and return the alert events."""
        # What sensors report about themselves is current: raised before any reordering.
        reported = self._report_faults(batch) if batch.faults else []
        if self.reorder_window_ms <= 0 and not len(self._pending.device):
            return reported + self._evaluate_now(batch, now_ms)
        if len(batch):
            self._admit(batch, now_ms)
        return reported + self._release(now_ms, event_time=True)

    def _report_faults(self, batch: ReadingBatch) -> list[AlertEvent]:
        """device.fault for each sensor that reports one ("distance: No Sensor"), raised at
        once; the first reading after the report clears it (rules/health.py)."""
        st = self.state
        self._ensure(int(batch.device.max()), batch)
        events = []
        for row, text in sorted(batch.faults.items()):
            d, ts = int(batch.device[row]), int(batch.ts_ms[row])
            if ts < self._reported.get(d, ts):
                continue  # an older report, arriving late: the newer one stands
            self._reported[d] = ts
            if st.fault[d]:
                continue  # already raised (by this report's predecessors or another cause)
            st.fault[d] = True
            st.fault_good[d] = 0
            events.append(
                AlertEvent(
                    action=Action.raise_,
                    slot=health.FAULT_SLOT,
                    kind="device.fault",
                    category="device",
                    device_id=self.device_ids[d],
                    device_index=d,
                    ts_ms=ts,
                    severity=health.severity_of(int(st.kind[d])),
                    reason=f"the sensor reports {text}",
                )
            )
        return events

    def release(self, now_ms: int) -> list[AlertEvent]:
        """Evaluate readings the reorder window has held long enough (a timer calls this)."""
        return self._release(now_ms, event_time=False)

    def check_offline(self, now_ms: int) -> list[AlertEvent]:
        """device.offline for devices silent past their allowance."""
        # The periodic sweep also builds the confirmation index ahead of the first alarm
        # (at start-up, or after many registrations): it takes ~0.1 s at 1M devices.
        self._partners.prepare()
        return health.check_offline(self.state, len(self.device_ids), now_ms, self.device_ids)

    def check_haze(self, now_ms: int) -> list[AlertEvent]:
        """Regional haze levels, what detectors learn from them, and haze.regional (a timer
        calls this every HazeConfig.check_s)."""
        events = self.haze.check(self.state, len(self.device_ids), now_ms, self.state.fire_level)
        n = len(self.device_ids)
        self._max_base = float(self.state.smoke_base[:n].max()) if n else 0.0
        return events

    def haze_learnt(self, index: int) -> tuple[float, float]:
        """A fire detector's learnt haze ratio and clear-air base (%/m)."""
        return float(self.state.haze_ratio[index]), float(self.state.smoke_base[index])

    def haze_regions(self) -> list[haze.RegionHaze]:
        """Every region's haze as of the last check_haze."""
        return self.haze.summary()

    def _evaluate_now(self, batch: ReadingBatch, now: int) -> list[AlertEvent]:
        """The path without a reorder window: no buffering, and no sort unless a device
        appears more than once in the batch (then only its rows are sorted)."""
        n = len(batch)
        if not n:
            return []
        st = self.state
        # Indices as intp once: numpy would convert an int32 index array at every gather.
        device, ts, values = batch.device.astype(np.intp), batch.ts_ms, batch.values
        self._ensure(int(device.max()), batch)
        live = ts > st.last_ts[device]
        n_live = int(np.count_nonzero(live))
        if n_live < n:
            self.late_readings += n - n_live
            if not n_live:
                return []
        # Every gather costs about as much as an arithmetic pass over the batch, so each
        # round's rows are chosen as indices into the batch and gathered once, by kind.
        is_fire = st.kind[device] == _FIRE
        events: list[AlertEvent] = []
        rows = np.arange(n)
        if len(self._mark) < st.capacity:
            self._mark = np.zeros(st.capacity, np.int64)
            self._flag = np.zeros(st.capacity, bool)
        mark = self._mark
        mark[device] = rows
        repeated = mark[device] != rows  # not the last row of its device
        if not repeated.any():
            every = None if n_live == n else live
            self._round(device, ts, values, now, events, _by_kind(None, is_fire, every))
            return events
        # Rows of devices seen more than once: sort those alone, by (device, ts).
        flag = self._flag
        flag[device[repeated]] = True
        multi = flag[device]
        flag[device[repeated]] = False
        several = np.flatnonzero(multi & live)
        several = several[np.lexsort((ts[several], device[several]))]
        dup = _duplicates(device[several], ts[several])
        if dup.any():  # the first arrival wins (the sort is stable)
            self.duplicate_readings += int(dup.sum())
            several = several[~dup]
        position = _positions(device[several])
        # Round 0: every live row of a device seen once, then each other device's first
        # (in device order, as in every later round).
        first = np.concatenate([np.flatnonzero(live & ~multi), several[position == 0]])
        self._round(device, ts, values, now, events, _by_kind(first, is_fire))
        for k in range(1, int(position.max(initial=0)) + 1):
            take = several[position == k]
            self._round(device, ts, values, now, events, _by_kind(take, is_fire))
        return events

    def _ensure(self, top: int, batch: ReadingBatch | None = None) -> None:
        """Room for device indices up to `top`. A device that was never registered takes
        its id from the batch that brings its reading, so that its events name it."""
        self.state.ensure(top + 1)
        names = batch.device_ids if batch is not None else ()
        while len(self.device_ids) <= top:
            index = len(self.device_ids)
            # A gap below a registration stays unnamed until it is registered itself.
            unnamed = "" if batch is None else f"#{index}"
            self.device_ids.append(names[index] if index < len(names) else unnamed)
            self._zone_names.append(None)

    def _admit(self, batch: ReadingBatch, now: int) -> None:
        st = self.state
        self._ensure(int(batch.device.max()), batch)
        fresh = batch.ts_ms > st.last_ts[batch.device]
        self.late_readings += int(len(batch) - np.count_nonzero(fresh))
        device, ts = batch.device[fresh].astype(np.intp), batch.ts_ms[fresh]
        values = batch.values[:, fresh]
        pending = self._pending
        if len(pending.device):
            device = np.concatenate([pending.device, device])
            ts = np.concatenate([pending.ts, ts])
            values = np.concatenate([pending.values, values], axis=1)
            arrival = np.concatenate([pending.arrival, np.full(int(fresh.sum()), now, np.int64)])
        else:
            arrival = np.full(len(device), now, np.int64)
        # Sort by (device, ts), stable: among duplicates the first arrival comes first.
        order = np.lexsort((ts, device))
        device, ts, arrival, values = device[order], ts[order], arrival[order], values[:, order]
        dup = _duplicates(device, ts)
        if dup.any():
            self.duplicate_readings += int(dup.sum())
            keep = ~dup
            device, ts, arrival, values = device[keep], ts[keep], arrival[keep], values[:, keep]
        np.maximum.at(st.max_ts, device, ts)
        self._pending = _Pending(device, ts, arrival, values)

    def _release(self, now: int, event_time: bool) -> list[AlertEvent]:
        pending = self._pending
        if not len(pending.device):
            return []
        window = self.reorder_window_ms
        if window <= 0:
            ready = np.ones(len(pending.device), bool)
        else:
            ready = pending.arrival <= now - window
            if event_time:
                ready |= pending.ts <= self.state.max_ts[pending.device] - window
            ready = _with_earlier(pending.device, ready)
        if ready.all():
            self._pending = _Pending.empty()
            device, ts, values = pending.device, pending.ts, pending.values
        else:
            hold = ~ready
            self._pending = _Pending(
                pending.device[hold],
                pending.ts[hold],
                pending.arrival[hold],
                pending.values[:, hold],
            )
            device, ts, values = pending.device[ready], pending.ts[ready], pending.values[:, ready]
        if not len(device):
            return []
        return self._evaluate_sorted(device, ts, values, now)

    def _evaluate_sorted(
        self,
        device: npt.NDArray[np.intp],
        ts: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        now: int,
    ) -> list[AlertEvent]:
        # Rows are sorted by (device, ts). Round k takes each device's k-th row.
        position = _positions(device)
        events: list[AlertEvent] = []
        if not position.any():
            is_fire = self.state.kind[device] == _FIRE
            self._round(device, ts, values, now, events, _by_kind(None, is_fire))
            return events
        order = np.argsort(position, kind="stable")  # stable: devices stay in index order
        bounds = np.cumsum(np.bincount(position))
        is_fire = self.state.kind[device] == _FIRE
        lo = 0
        for hi in bounds.tolist():
            self._round(device, ts, values, now, events, _by_kind(order[lo:hi], is_fire))
            lo = hi
        return events

    def _round(
        self,
        device: npt.NDArray[np.intp],
        ts: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        now: int,
        events: list[AlertEvent],
        chosen: tuple[npt.NDArray[np.intp] | None, int],
    ) -> None:
        """Evaluate one round: `chosen` is the rows of device, ts and values that take part
        (at most one per device; None: all of them), fire detectors first, and how many of
        those there are."""
        st = self.state
        rows, n_fire = chosen
        # Fire detectors first, then bins: each family then works on a contiguous part
        # of the round instead of masking every array by kind.
        devs = device if rows is None else device[rows]
        ts = ts if rows is None else ts[rows]
        local = st.gather(devs)
        kinds = st.kind[devs]
        n = len(devs)
        r = Round(
            devs,
            ts,
            values,
            kinds,
            local.profile,
            self.table,
            self.device_ids,
            now,
            events,
            local,
            rows,
            split=n_fire,
            _pair=self._sides(kinds, n_fire),
            drift_possible=self._max_base >= self._min_drift_limit,
            reported=self._reported or None,
        )
        health.back_online(r)
        # A family for every kind runs once over the round: each numpy call costs a few
        # microseconds whatever its length, so one call beats one per part. The others run
        # on their kind's part, where thresholds are usually scalars.
        verdict = heat.evaluate(r)
        fire_part = r.part(0, n_fire)
        if n_fire and self.haze.any_level:
            fire_part.haze_level = self.haze.taken[st.region[fire_part.devs]]
        if n_fire < n and _AIR in self._kind_profiles:
            # An air station's newest PM2.5, for the haze timer.
            air = np.flatnonzero(kinds == _AIR)
            if len(air):
                pm25 = r.col("pm25_ugm3")[air]
                has = ~np.isnan(pm25)
                local.last_haze[air[has]] = pm25[has]
        found: fire.Verdict | None = None
        for family in FAMILIES:
            if family.kinds == ALL_KINDS:
                family.evaluate(r, verdict)
                continue
            for kind, lo, hi in ((_FIRE, 0, n_fire), (_BIN, n_fire, n)):
                if hi > lo and kind in family.kinds:
                    part = fire_part if kind == _FIRE else r.part(lo, hi)
                    given = family.evaluate(part, verdict.part(lo, hi))
                    if kind == _FIRE and given is not None:
                        found = given
        local.last_arrival[:] = now
        local.last_ts[:] = ts
        st.scatter(devs, local)
        # Cross-device confirmation reads other devices' state: after the write-back. Every
        # detector at level 1 or more may be a partner, also one raised by pre-alarm smoke.
        if found is not None and len(found.alarming):
            for d in fire_part.devs[found.alarming].tolist():
                self._alarming[d] = None
            if found.alarm.any():
                fire.confirm(
                    fire_part, st, found.alarm, self._alarming, self._zone_names, self._partners
                )
        if self._alarming:
            alarming = np.fromiter(self._alarming, np.int64, len(self._alarming))
            for d in alarming[st.fire_level[alarming] == 0].tolist():
                del self._alarming[d]

    def _sides(self, kinds: npt.NDArray[np.uint8], n_fire: int) -> tuple[int, int] | None:
        """The profile of each side of a round's split (fire detectors, then the others),
        when each side's kind has a single profile; else None (the round scans them)."""
        n = len(kinds)
        fire_side = bin_side = None
        if n_fire:
            detectors = self._kind_profiles.get(_FIRE, {})
            if len(detectors) != 1:
                return None
            fire_side = next(iter(detectors))
        if n_fire < n:
            bins_ = self._kind_profiles.get(_BIN, {})
            # The other side may hold devices that are not registered (kind 0): then scan.
            if len(bins_) != 1 or np.count_nonzero(kinds[n_fire:] == _BIN) < n - n_fire:
                return None
            bin_side = next(iter(bins_))
        if fire_side is None:
            return None if bin_side is None else (bin_side, bin_side)
        return fire_side, fire_side if bin_side is None else bin_side


def _by_kind(
    rows: npt.NDArray[np.intp] | None,
    is_fire: npt.NDArray[np.bool_],
    mask: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.intp] | None, int]:
    """A round's rows (these indices; else the rows where `mask` is set; else all rows),
    fire detectors first, and how many of them are fire detectors. None stands for all
    rows when they are in that order already: then nothing needs to be gathered."""
    if rows is not None:
        kind = is_fire[rows]
        fire_rows = rows[kind]
        return np.concatenate([fire_rows, rows[~kind]]), len(fire_rows)
    if mask is None:
        n_fire = int(np.count_nonzero(is_fire))
        if is_fire[:n_fire].all():
            return None, n_fire
        fire, other = is_fire, ~is_fire
    else:
        fire, other = mask & is_fire, mask & ~is_fire
    fire_rows = np.flatnonzero(fire)
    return np.concatenate([fire_rows, np.flatnonzero(other)]), len(fire_rows)


def _positions(device: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Each row's position within its device's run (rows sorted by device): its round."""
    n = len(device)
    first = np.ones(n, bool)
    first[1:] = device[1:] != device[:-1]
    position: npt.NDArray[np.intp] = np.arange(n) - np.maximum.accumulate(
        np.where(first, np.arange(n), 0)
    )
    return position


def _duplicates(device: npt.NDArray[np.intp], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Rows (sorted by device, then ts) that repeat the row before them."""
    dup = np.zeros(len(device), bool)
    dup[1:] = (device[1:] == device[:-1]) & (ts[1:] == ts[:-1])
    return dup


def _with_earlier(
    device: npt.NDArray[np.intp], ready: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Also release every earlier pending reading of a device whose later one is released
    (pending rows are sorted by device, then ts), so none is left to arrive late."""
    if ready.all() or not ready.any():
        return ready
    n = len(device)
    first = np.ones(n, bool)
    first[1:] = device[1:] != device[:-1]
    group = np.cumsum(first) - 1
    last_ready = np.full(int(group[-1]) + 1, -1, np.int64)
    np.maximum.at(last_ready, group[ready], np.flatnonzero(ready))
    result: npt.NDArray[np.bool_] = np.arange(n) <= last_ready[group]
    return result
