"""Scenario files (TOML): a timeline of events and the alerts they should raise, validated.

The format is documented in simulators/README.md ("Scenario files"). Errors name the file,
the line and the field, e.g. `fire.toml:14: event 2 (fire): growth: Input should be ...`.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from contract.ispu import CategoryId
from contract.optics import CLEAR_VISIBILITY_M
from simulators.errors import SimulatorError

SHIPPED_DIR = Path(__file__).resolve().parent / "scenarios"

_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(value: Any) -> float:
    """Seconds from a number or a text like "30s", "2m", "1h30m", "1.5h"."""
    if isinstance(value, bool):
        raise ValueError(f"a duration must be a number of seconds or like '2m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if value.strip() == "" or match is None or not any(match.groups()):
            raise ValueError(f"a duration looks like '30s', '2m' or '1h30m', got {value!r}")
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = h * 3600 + m * 60 + s
    else:
        raise ValueError(f"a duration must be a number of seconds or like '2m', got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Growth = Literal["slow", "medium", "fast", "ultrafast"]
FaultKind = Literal["duplicate", "out_of_order", "clock_skew", "stuck", "malformed", "burst"]
AlertKind = Literal[
    "fire.pre_alarm",
    "fire.alarm",
    "fire.confirmed",
    "bin.nearly_full",
    "bin.full",
    "bin.fire",
    "bin.tilted",
    "device.battery_low",
    "device.offline",
    "device.fault",
    # Region-wide, one per district (expected with `districts`): smoke haze, not fire.
    "haze.regional",
]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Selection(_Strict):
    """Which devices an event hits: named ones, or picked (seeded) by district/kind/building."""

    devices: tuple[str, ...] = ()
    district: str | None = None
    building: str | None = None
    count: int | None = Field(default=None, ge=1)


class _Event(Selection):
    at: Duration
    label: str | None = Field(default=None, description="Names the devices for [[expect]].")


class FireSpec(_Event):
    """A t-squared fire next to a detector: in a building ("auto" = a seeded pick) or a device."""

    do: Literal["fire"]
    growth: Growth = "medium"
    distance_m: float | None = Field(default=None, gt=0, le=50)

    @model_validator(mode="after")
    def _one_place(self) -> FireSpec:
        if (self.building is None) == (not self.devices):
            raise ValueError("a fire needs exactly one of building (or 'auto') or devices")
        if len(self.devices) > 1:
            raise ValueError("a fire starts next to one device: give one id in devices")
        return self


class BinsFillSpec(_Event):
    """Bins start filling fast and are not emptied ("bins in Baamang reach 95 %")."""

    do: Literal["bins_fill"]
    reach_pct: float = Field(default=98.0, gt=0, le=100)
    rate_pct_s: float = Field(default=2.0, gt=0)


class BinFireSpec(_Event):
    """A fire inside bins."""

    do: Literal["bin_fire"]
    growth: Growth = "fast"


class KnockOverSpec(_Event):
    """Bins knocked over (tilt 80..95 deg), for a while or for good."""

    do: Literal["knock_over"]
    for_: Duration | None = Field(default=None, alias="for")


class BatterySpec(_Event):
    """Batteries that run down to a level over some time."""

    do: Literal["battery_drain"]
    to_pct: float | None = Field(default=None, ge=0, le=100)  # bins
    to_v: float | None = Field(default=None, ge=0, le=15)  # fire detectors (9 V)
    over: Duration = 0.0

    @model_validator(mode="after")
    def _level(self) -> BatterySpec:
        if self.to_pct is None and self.to_v is None:
            raise ValueError("battery_drain needs to_pct (bins) and/or to_v (fire detectors)")
        return self


class SilentSpec(_Event):
    """Devices that stop reporting, for a while or for good."""

    do: Literal["silent"]
    for_: Duration | None = Field(default=None, alias="for")


class GatewayOfflineSpec(_Event):
    """A gateway goes offline: every device behind it falls silent."""

    do: Literal["gateway_offline"]
    gateway: str
    for_: Duration | None = Field(default=None, alias="for")


class FaultSpec(_Event):
    """Faults on demand, on the selected devices, for a while or for good."""

    do: Literal["fault"]
    fault: FaultKind
    for_: Duration | None = Field(default=None, alias="for")
    skew_s: float = 600.0  # clock_skew: added to ts (negative: a clock behind)
    size: int = Field(default=5, ge=2, le=1000)  # burst: readings per burst


class HazeSpec(_Strict):
    """A regional smoke haze (peat fires): builds up, worst in the mornings, until rain.

    See simulators/haze.py. `at` is model time; `build`, `shift` are haze-clock time, which
    runs `compression` times faster than model time.
    """

    do: Literal["haze"]
    at: Duration
    label: str | None = Field(default=None, description="Names the devices for [[expect]].")
    districts: tuple[str, ...] = ()  # default: every district of the fleet
    compression: float = Field(default=1.0, gt=0, le=100_000)
    start_hour: float = Field(default=0.0, ge=0, lt=24)  # WIB, of the haze clock at `at`
    build: Duration = 2 * 86400.0
    peak_visibility_m: float = Field(default=50.0, ge=10, lt=CLEAR_VISIBILITY_M)
    afternoon: float = Field(default=0.25, ge=0, le=1)
    weakest: float = Field(default=0.6, gt=0, le=1)
    shift: Duration = 7200.0
    variability: float = Field(default=0.3, ge=0, lt=1)


class RainSpec(_Strict):
    """Rain that washes the haze out over `over` (haze-clock time), in some or all districts."""

    do: Literal["rain"]
    at: Duration
    label: str | None = Field(default=None, description="Names the devices for [[expect]].")
    districts: tuple[str, ...] = ()  # default: everywhere
    over: Duration = 3600.0


class DriftSpec(_Event):
    """Dust in detectors' optical chambers: the clean-air reading creeps up, linearly."""

    do: Literal["drift"]
    rate_pct_m_per_day: float = Field(default=0.1, gt=0, le=100)
    # Drift-clock days per model day: 168 puts a week of dust into one model hour.
    compression: float = Field(default=1.0, gt=0, le=100_000)


Event = Annotated[
    FireSpec
    | BinsFillSpec
    | BinFireSpec
    | KnockOverSpec
    | BatterySpec
    | SilentSpec
    | GatewayOfflineSpec
    | FaultSpec
    | HazeSpec
    | RainSpec
    | DriftSpec,
    Field(discriminator="do"),
]


class FleetSpec(_Strict):
    """The fleet a scenario is written for; command-line options override these."""

    devices: int = Field(default=300, ge=1)
    fire_share: float = Field(default=0.6, ge=0, le=1)
    gateways: int = Field(default=0, ge=0)
    file: str | None = None  # CSV/JSON fleet file, relative to the scenario file
    air_stations: int = Field(default=0, ge=0, le=1000)  # PM2.5 stations, round the districts
    # Haze: the share of buildings letting in 80..100 % of the outdoor haze, and fixed
    # factors (0.1..1.0) for buildings named by zone or by an event's label (its buildings).
    leaky_share: float = Field(default=0.2, ge=0, le=1)
    infiltration: dict[str, Annotated[float, Field(ge=0.1, le=1.0)]] = Field(default_factory=dict)


class RunSpec(_Strict):
    """How the scenario is meant to be run (tests and `sigap demo` use these)."""

    until: Duration | None = None  # model time by which every expectation holds
    interval_s: float = Field(default=10.0, gt=0)
    speed: float = Field(default=1.0, gt=0)
    event_time: Literal["wall", "model"] = "wall"


class ExpectSpec(_Strict):
    """Alerts the devices an event (label) or a list names must end up with, and no others.

    `districts` expects region-wide alerts instead (one per district, e.g. `haze.regional`;
    "*" = every district a haze covers that has detectors or air stations), optionally with
    the ISPU `category` they report and whether they have `cleared` by `until`. `forbid`
    names alert kinds (or patterns, "fire.*") the targets must never raise; without a
    target it covers every device no expectation gives alerts to.
    """

    label: str | None = None
    devices: tuple[str, ...] = ()
    districts: tuple[str, ...] = ()
    alerts: tuple[AlertKind, ...] = ()
    rejected: tuple[str, ...] = ()  # ingest rejection reasons that must appear for them
    forbid: tuple[str, ...] = ()
    category: CategoryId | None = None  # ISPU (contract.ispu): baik ... berbahaya
    cleared: bool = False

    @model_validator(mode="after")
    def _target(self) -> ExpectSpec:
        targets = sum((self.label is not None, bool(self.devices), bool(self.districts)))
        if targets > 1 or (targets == 0 and not self.forbid):
            raise ValueError(
                "an expectation names either a label or devices (or districts, for "
                "region-wide alerts; or nothing but forbid, for the whole fleet)"
            )
        if not self.districts and (self.category is not None or self.cleared):
            raise ValueError("category and cleared are for region-wide alerts: name districts")
        if self.districts and (self.forbid or self.rejected):
            raise ValueError("forbid and rejected are per device: name a label or devices")
        for pattern in self.forbid:
            if not fnmatch.filter(ALERT_KINDS, pattern):
                raise ValueError(f"forbid: {pattern!r} matches no alert kind")
        return self


class ScenarioSpec(_Strict):
    """A whole scenario file."""

    name: str
    description: str = ""
    seed: int | None = None
    fleet: FleetSpec = FleetSpec()
    run: RunSpec = RunSpec()
    event: tuple[Event, ...] = ()
    expect: tuple[ExpectSpec, ...] = ()
    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _labels(self) -> ScenarioSpec:
        labels = [e.label for e in self.event if e.label is not None]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ValueError(f"labels must be unique, repeated: {sorted(dupes)}")
        for i, want in enumerate(self.expect, start=1):
            if want.label is not None and want.label not in labels:
                raise ValueError(f"expect {i}: no event has label {want.label!r}")
        return self


class ScenarioFileError(SimulatorError):
    """A scenario file that cannot be used, with the file, line and field at fault."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
        self.path = path
        self.line = line
        self.message = message


def _table_lines(text: str, header: str) -> list[int]:
    """1-based line numbers of each `[[header]]` (or `[header]`) in the file."""
    pattern = re.compile(rf"^\s*\[\[?\s*{re.escape(header)}\s*\]\]?\s*(#.*)?$")
    return [no for no, line in enumerate(text.splitlines(), start=1) if pattern.match(line)]


def _locate(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line of a pydantic error location in the TOML text."""
    lines = text.splitlines()
    start, end = 1, len(lines)
    rest = list(loc)
    if rest and rest[0] in ("event", "expect", "fleet", "run"):
        header = str(rest.pop(0))
        starts = _table_lines(text, header)
        index = 0
        if header in ("event", "expect") and rest and isinstance(rest[0], int):
            index = rest.pop(0)
        if index < len(starts):
            start = starts[index]
            later = [
                n
                for n, line in enumerate(lines, start=1)
                if n > start and line.lstrip().startswith("[")
            ]
            end = (later[0] - 1) if later else len(lines)
            if header == "event" and rest and isinstance(rest[0], str) and rest[0] in _KINDS:
                rest.pop(0)  # the discriminator's branch name
    for part in rest:
        if not isinstance(part, str):
            continue
        key = re.compile(rf"^\s*{re.escape(part.rstrip('_'))}\s*=")
        for no in range(start, end + 1):
            if key.match(lines[no - 1]):
                return no
    return start if start > 1 or loc else None


_KINDS = frozenset(
    {
        "fire",
        "bins_fill",
        "bin_fire",
        "knock_over",
        "battery_drain",
        "silent",
        "gateway_offline",
        "fault",
        "haze",
        "rain",
        "drift",
    }
)


def _describe(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    items = list(loc)
    while items:
        part = str(items.pop(0))
        if part in ("event", "expect") and items and isinstance(items[0], int):
            parts.append(f"{part} {int(items.pop(0)) + 1}")
            if part == "event" and items and str(items[0]) in _KINDS:
                parts[-1] += f" ({items.pop(0)})"
        else:
            parts.append(str(part).rstrip("_"))
    return ": ".join(parts)


def parse_scenario(text: str, source: str = "scenario", path: Path | None = None) -> ScenarioSpec:
    """Validate a scenario file's text; ScenarioFileError names the line and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ScenarioFileError(
            source, int(match.group(1)) if match else None, f"not valid TOML: {exc}"
        ) from None
    try:
        return ScenarioSpec.model_validate(data | {"path": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = _locate(text, loc)
        where = _describe(loc)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = first["msg"].removeprefix("Value error, ")
        raise ScenarioFileError(
            source, line, f"{where}: {message}{more}" if where else message
        ) from None


def shipped_scenarios() -> tuple[str, ...]:
    """Names of the scenario files that ship with Sigap (simulators/scenarios/*.toml)."""
    return tuple(sorted(p.stem for p in SHIPPED_DIR.glob("*.toml")))


def scenario_path(name_or_path: str | Path) -> Path:
    """The file for a shipped scenario name, or the given path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return candidate
    shipped = SHIPPED_DIR / f"{name_or_path}.toml"
    if shipped.exists():
        return shipped
    raise ValueError(
        f"unknown scenario {str(name_or_path)!r}; choose one of "
        f"{', '.join(shipped_scenarios())} or give a .toml file"
    )


def load_scenario_spec(name_or_path: str | Path) -> ScenarioSpec:
    """Read and validate a shipped scenario (by name) or a scenario file (by path)."""
    path = scenario_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioFileError(str(path), None, f"cannot read: {exc}") from None
    return parse_scenario(text, str(path), path)
