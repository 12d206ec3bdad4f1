"""Rule classes and the rules file: class defaults, per-device overrides, DeviceSpec.

The thresholds themselves (names, types, defaults, EN 54-5 presets) are part of the
contract (contract/thresholds.py): the registry validates a device's `thresholds` with
them too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.thresholds import RuleParams, RulesConfigError

# Class defaults per device kind; a rules file may refine them and add named classes.
KIND_DEFAULTS: dict[str, RuleParams] = {
    "fire": RuleParams(),
    "bin": RuleParams(heat_fixed_c=60.0),
    "air": RuleParams(),  # device health only: air stations feed the haze level
}


@dataclass(frozen=True)
class RulesConfig:
    """Classes and per-device overrides, as read from a rules file."""

    classes: dict[str, RuleParams] = field(default_factory=lambda: dict(KIND_DEFAULTS))
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def params_for(
        self,
        device_id: str,
        kind: str,
        rule_class: str | None = None,
        registry_overrides: Mapping[str, Any] | None = None,
    ) -> RuleParams:
        """Class defaults, then the file's per-device overrides, then the registry's."""
        name = rule_class or kind
        if name not in self.classes:
            raise RulesConfigError(f"device {device_id!r}: unknown rule class {name!r}")
        params = self.classes[name]
        if device_id in self.devices:
            params = params.override(self.devices[device_id])
        if registry_overrides:
            params = params.override(registry_overrides)
        return params


def load_rules(path: Path | None) -> RulesConfig:
    """Read a TOML rules file (see rules/README.md); None gives the built-in defaults."""
    if path is None:
        return RulesConfig()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulesConfigError(f"cannot read rules file {path}: {exc}") from None
    return parse_rules(data, source=str(path))


def parse_rules(data: Mapping[str, Any], source: str = "rules") -> RulesConfig:
    """Build a RulesConfig from parsed TOML: [classes.NAME] (with `extends`) and [devices.ID]."""
    unknown = set(data) - {"classes", "devices"}
    if unknown:
        raise RulesConfigError(f"{source}: unknown sections {sorted(unknown)}")
    classes = dict(KIND_DEFAULTS)
    raw_classes: dict[str, dict[str, Any]] = dict(data.get("classes", {}))
    pending = dict(raw_classes)
    # Resolve `extends` chains in dependency order; kind names are roots.
    while pending:
        progressed = False
        for name, body in list(pending.items()):
            parent = body.get("extends", name if name in KIND_DEFAULTS else None)
            if parent is None:
                raise RulesConfigError(
                    f"{source}: class {name!r} needs `extends` (fire, bin or another class)"
                )
            if parent != name and parent in pending:
                continue
            if parent not in classes:
                raise RulesConfigError(f"{source}: class {name!r} extends unknown {parent!r}")
            values = {k: v for k, v in body.items() if k != "extends"}
            try:
                classes[name] = classes[parent].override(values)
            except RulesConfigError as exc:
                raise RulesConfigError(f"{source}: class {name!r}: {exc}") from None
            del pending[name]
            progressed = True
        if not progressed:
            raise RulesConfigError(f"{source}: circular `extends` among {sorted(pending)}")
    devices: dict[str, dict[str, Any]] = {}
    for device_id, body in dict(data.get("devices", {})).items():
        try:
            RuleParams().override(body)  # validate names and types now, not at first use
        except RulesConfigError as exc:
            raise RulesConfigError(f"{source}: device {device_id!r}: {exc}") from None
        devices[str(device_id)] = dict(body)
    return RulesConfig(classes, devices)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """What the rule engine knows about one device."""

    index: int
    id: str
    kind: str  # "fire", "bin" or "air"
    params: RuleParams = field(default_factory=RuleParams)
    zone: str | None = None
    lat: float = 0.0
    lon: float = 0.0
    depth_mm: float | None = None
    reporting_interval_s: float | None = None
    district: str | None = None  # the haze region; without one, the map cell

    @property
    def interval_s(self) -> float:
        """The registered reporting interval, or the class default."""
        return self.reporting_interval_s or self.params.reporting_interval_s
