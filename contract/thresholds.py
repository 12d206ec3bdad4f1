"""Per-device rule thresholds: their names, types and defaults, and EN 54-5 presets.

A device's registration may carry `thresholds` (and a rules file sets them per class):
the names here are the contract between the registry, the rules file and the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

# EN 54-5 heat detector classes: the lower bound of the static response temperature (C).
EN54_5_CLASSES: dict[str, float] = {
    "A1": 54.0,
    "A2": 54.0,
    "B": 69.0,
    "C": 84.0,
    "D": 99.0,
    "E": 114.0,
    "F": 129.0,
    "G": 144.0,
}


class RulesConfigError(ValueError):
    """A rules file or a threshold override that cannot be used (unknown name, wrong type...)."""


@dataclass(frozen=True, slots=True)
class RuleParams:
    """Every threshold of every family, for one device (see docs/rules.md)."""

    heat_fixed_c: float = 57.0
    heat_clear_margin_c: float = 5.0
    ror_enabled: bool = True
    ror_c_per_min: float = 8.3
    ror_window_s: float = 60.0
    ror_min_span_s: float = 20.0
    smoke_prealarm_pct_m: float = 2.0
    smoke_alarm_pct_m: float = 8.0
    smoke_clear_ratio: float = 0.5
    # Faint smoke with a warming at the same detector is a pre-alarm too: a fire heats the
    # air it smokes, dust and haze do not (docs/rules.md "Fire").
    smoke_corroborated_pct_m: float = 0.5
    corroborate_rise_c: float = 3.0
    # ... and so is faint smoke with carbon monoxide at the detector: 50 ppm is where EN
    # 50291 CO alarms start counting; peat haze brings some CO indoors, but tens of ppm
    # at most (docs/rules.md "Fire").
    corroborate_co_ppm: float = 50.0
    verify_window_s: float = 60.0
    confirm_window_s: float = 120.0
    confirm_distance_m: float = 100.0
    fire_clear_hold_s: float = 60.0
    bin_nearly_full_pct: float = 75.0
    bin_full_pct: float = 90.0
    bin_full_hysteresis_pct: float = 10.0
    bin_emptied_pct: float = 30.0
    bin_confirm_readings: int = 2
    fill_smoothing_s: float = 900.0
    fill_emptied_drop_pct: float = 20.0
    fill_rate_min_span_s: float = 1800.0
    fill_rate_horizon_s: float = 21600.0
    tilt_alarm_deg: float = 45.0
    tilt_clear_deg: float = 30.0
    battery_low_pct: float = 15.0
    battery_low_v: float = 3.3
    battery_clear_pct_margin: float = 10.0
    battery_clear_v_margin: float = 0.2
    reporting_interval_s: float = 60.0
    offline_intervals: float = 3.0
    stuck_min_readings: int = 20
    stuck_min_span_s: float = 21600.0
    temp_min_plausible_c: float = -20.0
    distance_max_ratio: float = 1.05
    fault_clear_readings: int = 3
    # A fire detector's learnt clear-air reading (docs/rules.md "Haze") at or above this is
    # a dirty chamber: device.fault for maintenance (five times what a clean one reads).
    drift_fault_pct_m: float = 2.5

    def override(self, values: Mapping[str, Any]) -> RuleParams:
        """A copy with the given names changed; `heat_class` applies an EN 54-5 preset first."""
        values = dict(values)
        preset = values.pop("heat_class", None)
        base = self
        if preset is not None:
            base = base.with_heat_class(str(preset))
        known = {f.name: f for f in fields(RuleParams)}
        changes: dict[str, Any] = {}
        for name, value in values.items():
            spec = known.get(name)
            if spec is None:
                raise RulesConfigError(f"unknown rule parameter {name!r}")
            changes[name] = _coerce(name, spec.type, value)
        return replace(base, **changes)

    def with_heat_class(self, name: str) -> RuleParams:
        """Apply an EN 54-5 class preset (A1..G, optional suffix R or S)."""
        code = name.strip().upper()
        suffix = code[-1] if code[-1:] in ("R", "S") and code[:-1] in EN54_5_CLASSES else ""
        base = code[:-1] if suffix else code
        if base not in EN54_5_CLASSES:
            raise RulesConfigError(
                f"unknown EN 54-5 class {name!r}; use one of {', '.join(EN54_5_CLASSES)} "
                "with an optional R (rate-of-rise) or S (static) suffix"
            )
        ror = self.ror_enabled if not suffix else suffix == "R"
        return replace(self, heat_fixed_c=EN54_5_CLASSES[base], ror_enabled=ror)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind_name == "bool":
        if not isinstance(value, bool):
            raise RulesConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RulesConfigError(f"{name} must be a number, got {value!r}")
    if value != value:  # NaN: every comparison with it is false, so no rule could fire
        raise RulesConfigError(f"{name} must be a number, got NaN")
    if kind_name == "int":
        if int(value) != value:
            raise RulesConfigError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    return float(value)


# Every name a `thresholds` object or a rules-file class may set.
PARAM_NAMES = frozenset(f.name for f in fields(RuleParams)) | {"heat_class"}
