"""Fire family (detectors): pre-alarm, verified alarm, confirmed fire (docs/rules.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract import alerts
from contract.readings import KIND_CODES
from rules.core import F64, Bool, Intp, Round, fmt, quantities, transition
from rules.events import Action, AlertEvent, Severity
from rules.heat import Heat
from rules.partners import Partners
from rules.state import NEVER, EngineState

SLOT = alerts.FIRE_SLOT
KINDS = alerts.FIRE_KINDS
SEVERITY = {1: Severity.major, 2: Severity.critical, 3: Severity.critical}
_FIRE = KIND_CODES["fire"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What cross-device confirmation needs from a round's fire detectors."""

    alarm: Bool  # per row: an alarm-level reading
    alarming: Intp  # rows whose detector is at level 1 or more after the round


def excess(r: Round, haze_level: F64 | None) -> F64:
    """Smoke above each detector's clear-air base and its share of the regional haze
    (docs/rules.md "Haze"); NaN where the reading has no smoke. Also notes the reading's
    smoke as the detector's newest, for the haze timer."""
    raw = r.col("smoke_obs_pct_m")
    has = ~np.isnan(raw)
    if has.all():
        r.s.last_haze[:] = raw
    elif has.any():
        r.s.last_haze[has] = raw[has]
    above: F64 = raw - r.s.smoke_base
    if haze_level is not None:
        above = above - r.s.haze_ratio * haze_level
    return above


def corroborated(r: Round, heat: Heat, smoke: F64) -> Bool:
    """Faint smoke (`smoke_corroborated_pct_m`) with a warming of `corroborate_rise_c` above
    the detector's coolest recent sample, or with `corroborate_co_ppm` of carbon monoxide:
    a pre-alarm (False where the smoke, or both corroborations, are missing)."""
    # Faint smoke is rare (clear air reads about its base): the corroborations are read
    # for those rows only.
    rows = np.flatnonzero(smoke >= r.p("smoke_corroborated_pct_m"))
    out: Bool = np.zeros(len(smoke), bool)
    if len(rows):
        warmed = heat.rise[rows] >= r.p("corroborate_rise_c", rows)
        with_co = r.col_at("co_ppm", rows) >= r.p("corroborate_co_ppm", rows)
        out[rows] = warmed | with_co
    return out


def evaluate(r: Round, heat: Heat) -> Verdict:
    """Advance each detector's fire level (every row of `r` is a fire detector: the engine
    splits rounds by kind); smoke is judged on its excess over base and haze."""
    smoke = excess(r, r.haze_level)
    smoke_alarm = smoke >= r.p("smoke_alarm_pct_m")
    alarm: Bool = heat.heat | smoke_alarm
    # Only alarm and pre-alarm readings raise a level and only detectors above level 0 can
    # clear. A quiet detector at level 0 changes nothing that matters: its normal-since
    # time is read only once a level is raised, and raising resets it.
    pre = (smoke >= r.p("smoke_prealarm_pct_m")) | corroborated(r, heat, smoke)
    active = np.flatnonzero(alarm | pre | (r.s.fire_level != 0))
    if not len(active):
        return Verdict(alarm, active)
    level = _advance(r, active, heat, smoke, alarm[active], smoke_alarm[active], pre[active])
    return Verdict(alarm, active[level >= 1])


def _advance(
    r: Round,
    rows: Intp,
    heat: Heat,
    excess_all: F64,
    alarm: Bool,
    smoke_alarm: Bool,
    smoke_pre: Bool,
) -> npt.NDArray[np.uint8]:
    """docs/rules.md "Fire" steps 1..5 for the given rows (`alarm`, `smoke_alarm` and
    `smoke_pre` are already taken at `rows`; `heat` and `excess_all` are the whole
    round's); returns their new levels."""
    smoke = excess_all[rows]
    ts = r.ts[rows]
    old = r.s.fire_level[rows]
    first = r.s.first_alarm[rows]
    normal_since = r.s.fire_normal_since[rows]
    has_temp, heat_normal = heat.has_temp[rows], heat.normal[rows]
    has_smoke = ~np.isnan(smoke)
    pre = ~alarm & smoke_pre
    has_any = has_temp | has_smoke
    smoke_low = ~has_smoke | (
        smoke < r.p("smoke_prealarm_pct_m", rows) * r.p("smoke_clear_ratio", rows)
    )
    normal = ~alarm & ~pre & has_any & (~has_temp | heat_normal) & smoke_low
    band = has_any & ~alarm & ~pre & ~normal

    level: npt.NDArray[np.uint8] = old.copy()
    # 1. alarm-level readings
    both = alarm & heat.heat[rows] & smoke_alarm
    keep = alarm & ~both & (old >= 2)
    verified = (
        alarm
        & ~both
        & ~keep
        & (first != NEVER)
        & (ts - first <= r.p("verify_window_s", rows) * 1000.0)
    )
    starts = alarm & ~both & ~keep & ~verified
    level[both] = 3
    level[verified] = 2
    level[starts] = np.maximum(old[starts], 1)
    first = np.where(starts, ts, first)
    # 2. pre-alarm smoke
    level[pre] = np.maximum(old[pre], 1)
    normal_since = np.where(alarm | pre | band, NEVER, normal_since)
    # 3. normal readings: clear after the hold time
    normal_since = np.where(normal & (normal_since == NEVER), ts, normal_since)
    clears = normal & (old > 0) & (ts - normal_since >= r.p("fire_clear_hold_s", rows) * 1000.0)
    level[clears] = 0
    first = np.where(clears, NEVER, first)

    r.s.fire_level[rows] = level
    r.s.first_alarm[rows] = first
    r.s.fire_normal_since[rows] = normal_since
    r.s.last_alarm[rows[alarm]] = ts[alarm]
    changed = np.flatnonzero(old != level)
    if len(changed):
        _emit_changes(
            r, rows[changed], old[changed].tolist(), level[changed].tolist(), heat, excess_all
        )
    return level


def _emit_changes(
    r: Round, rows: Intp, old: list[int], new: list[int], heat: Heat, smoke: F64
) -> None:
    before: dict[int, int] = dict(zip(rows.tolist(), old, strict=True))
    after: dict[int, int] = dict(zip(rows.tolist(), new, strict=True))
    raw = r.col("smoke_obs_pct_m")
    base = r.s.smoke_base.astype(np.float64)
    # `smoke` is the excess the rules judged; reasons show the raw reading too (what people
    # compare with the detector's own display) and what was taken off it.

    def reason(row: int) -> str:
        level = after[row]
        if level == 0:
            shown = ", ".join(
                f"{k} {fmt(v)}" for k, v in quantities(r, row, "temp_c", "smoke_obs_pct_m").items()
            )
            return f"back to normal for {r.at('fire_clear_hold_s', row):g} s: {shown}"
        causes = []
        if heat.fixed[row]:
            causes.append(
                f"temp_c {fmt(float(r.col('temp_c')[row]))} >= {r.at('heat_fixed_c', row):g}"
            )
        if heat.ror[row]:
            causes.append(
                f"rate of rise {heat.rate[row]:.1f} C/min >= {r.at('ror_c_per_min', row):g}"
            )
        s, measured = float(smoke[row]), float(raw[row])
        # "12 (9.6 above base 0.4 and haze 2)": only when something was taken off.
        shown = fmt(measured)
        if s != measured:
            taken = measured - s - float(base[row])
            off = [f"base {fmt(float(base[row]))}"] if base[row] else []
            off += [f"haze {fmt(taken)}"] if round(taken, 1) else []
            shown += f" ({fmt(s)} above {' and '.join(off) or 'base 0'})"
        if s >= r.at("smoke_alarm_pct_m", row):
            causes.append(f"smoke_obs_pct_m {shown} >= {r.at('smoke_alarm_pct_m', row):g}")
        elif s >= r.at("smoke_prealarm_pct_m", row):
            causes.append(
                f"smoke_obs_pct_m {shown} >= pre-alarm {r.at('smoke_prealarm_pct_m', row):g}"
            )
        elif s >= r.at("smoke_corroborated_pct_m", row) and heat.rise[row] >= r.at(
            "corroborate_rise_c", row
        ):
            causes.append(
                f"smoke_obs_pct_m {shown} >= {r.at('smoke_corroborated_pct_m', row):g} "
                f"with temp_c {heat.rise[row]:.1f} C above its recent low "
                f"(>= {r.at('corroborate_rise_c', row):g})"
            )
        elif s >= r.at("smoke_corroborated_pct_m", row):
            co = float(r.col_at("co_ppm", np.array([row]))[0])
            if co >= r.at("corroborate_co_ppm", row):
                causes.append(
                    f"smoke_obs_pct_m {shown} >= {r.at('smoke_corroborated_pct_m', row):g} "
                    f"with co_ppm {co:g} (>= {r.at('corroborate_co_ppm', row):g})"
                )
        what = "; ".join(causes) or "earlier alarm-level reading"
        if level == 1:
            return f"{what} (unverified: waiting for a second reading)"
        if level == 2:
            return (
                f"{what} (verified by a second reading within {r.at('verify_window_s', row):g} s)"
            )
        return f"{what} (heat and smoke agree)"

    def shown(row: int) -> int:
        return after[row] or before[row]

    r.emit(
        rows,
        lambda row: transition(before[row], after[row]),
        SLOT,
        lambda row: KINDS[shown(row)],
        "fire",
        lambda row: SEVERITY[shown(row)],
        reason,
        ("temp_c", "smoke_obs_pct_m"),
    )


def confirm(
    r: Round,
    st: EngineState,
    alarm: Bool,
    alarming: dict[int, None],
    zones: list[str | None],
    partners: Partners,
) -> None:
    """Cross-device confirmation at the end of a round (see docs/rules.md)."""
    rows = np.flatnonzero(alarm)
    if not len(rows):
        return
    # Plain Python from here: a round has a few alarm rows, and each detector a few possible
    # partners (`Partners`), so numpy calls would cost more than the work they do. Levels
    # and last alarms are read once per detector into dicts: reading numpy scalars costs
    # more than the rest of the work.
    level, last = st.fire_level, st.last_alarm
    level_of: dict[int, int] = {}
    last_of: dict[int, int] = {}

    def read(e: int) -> int:
        """e's level, reading its level and last alarm the first time."""
        found = level_of.get(e)
        if found is None:
            found = level_of[e] = int(level[e])
            last_of[e] = int(last[e])
        return found

    alarms = sorted(zip(r.devs[rows].tolist(), rows.tolist(), r.ts[rows].tolist(), strict=True))
    for d, row, t in alarms:  # by device index: each sees the levels left by those before
        mates = partners.of(d)
        # Only alarming detectors can be partners: look through the smaller set.
        if len(mates) <= len(alarming):
            near = [e for e in mates if e in alarming]
        else:
            near = [e for e in alarming if e in mates]
        if read(d) >= 3 and all(read(e) >= 3 or last_of[e] == NEVER for e in near):
            # At level 3, and every partner either is too or never alarmed (pre-alarm smoke
            # only): nothing can change.
            continue
        window = r.at("confirm_window_s", row) * 1000.0
        group = [d]
        for e in sorted(near):
            if read(e) >= 1 and last_of[e] != NEVER and abs(t - last_of[e]) <= window:
                group.append(e)
        if len(group) == 1:
            continue
        stamp = max(t, *(last_of[e] for e in group[1:]))
        reach = r.at("confirm_distance_m", row)
        # The zone, when the whole group is in d's zone (bench/rules/README.md).
        zone = int(st.zone[d])
        shared = zone >= 0 and all(int(st.zone[y]) == zone for y in group)
        where = zones[d] if shared else None
        place = f"in zone {where}" if where else f"within {reach:g} m"
        for x in group:
            before = level_of[x]
            if before >= 3:
                continue
            level[x] = level_of[x] = 3
            names = tuple(r.device_ids[y] for y in group if y != x)
            r.events.append(
                AlertEvent(
                    action=Action.raise_ if before == 0 else Action.update,
                    slot=SLOT,
                    kind=KINDS[3],
                    category="fire",
                    device_id=r.device_ids[x],
                    device_index=x,
                    ts_ms=stamp,
                    severity=SEVERITY[3],
                    reason=(
                        f"confirmed by {len(names)} other detector(s) alarming within "
                        f"{window / 1000:g} s {place}: {', '.join(names)}"
                    ),
                    partners=names,
                    zone=where,
                )
            )
