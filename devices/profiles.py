"""Device profiles: what a model of sensor sends and what Sigap should make of it.

A profile is a TOML file (devices/profiles/*.toml, and any in the directory named by
SIGAP_DEVICES_PROFILES_DIR, which win by name) that a technician can add to without code:
vendor and model, the codec's field names mapped to Sigap fields (with their units),
status strings mapped to Sigap meaning (a fault, values to set, or nothing), the expected
reporting interval and a bin sensor's mounting offset. A device registered with a profile
takes these as defaults; its own field map, interval and offsets win. devices/README.md
has the format and a worked example per shipped profile.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from contract import units
from contract.readings import QUANTITIES, RANGES, DeviceKind

SHIPPED = Path(__file__).with_name("profiles")
ENV_DIR = "SIGAP_DEVICES_PROFILES_DIR"
PROFILE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_KEYS = frozenset(
    {
        "vendor",
        "model",
        "kind",
        "description",
        "codec",
        "reporting_interval_s",
        "mounting_offset_mm",
        "fields",
        "status",
    }
)


class ProfileError(ValueError):
    """A profile file that Sigap cannot use; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class StatusAction:
    """What a status string means: a device fault, readings to set, or nothing."""

    action: Literal["fault", "ignore", "set"]
    values: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """One model of sensor, as its profile file describes it."""

    id: str
    vendor: str
    model: str
    kind: str | None  # the device kind it is for (None: any)
    description: str
    codec: str  # where its payload formatter comes from
    reporting_interval_s: float | None
    mounting_offset_mm: float | None  # added to each distance_mm it reports
    # Decoded payload key -> Sigap field, or {"field": ..., "scale": ...} or
    # {"field": ..., "unit": ...} (the unit a bare number of that key is in).
    fields: Mapping[str, str | Mapping[str, Any]] = field(default_factory=dict)
    # Decoded payload key -> status string -> what it means.
    status: Mapping[str, Mapping[str, StatusAction]] = field(default_factory=dict)

    @property
    def maps_codec(self) -> bool:
        """Whether it reads a codec's own field names (a LoRaWAN device's decoded payload)."""
        return bool(self.fields or self.status)

    def public(self) -> dict[str, Any]:
        """The profile as GET /api/v1/profiles shows it."""
        return {
            "id": self.id,
            "vendor": self.vendor,
            "model": self.model,
            "kind": self.kind,
            "description": self.description,
            "codec": self.codec,
            "reporting_interval_s": self.reporting_interval_s,
            "mounting_offset_mm": self.mounting_offset_mm,
            "fields": {key: _plain(target) for key, target in self.fields.items()},
            "status": {
                key: {
                    text: (dict(a.values) if a.action == "set" else a.action)
                    for text, a in table.items()
                }
                for key, table in self.status.items()
            },
        }


def _plain(target: str | Mapping[str, Any]) -> str | dict[str, Any]:
    return target if isinstance(target, str) else dict(target)


def load_profile(path: Path) -> Profile:
    """Read and check one profile file (its name without .toml is its id)."""
    name = path.stem
    where = f"profile {path}"
    if not PROFILE_ID.match(name):
        raise ProfileError(f"{where}: the file name must be lowercase letters, digits and dashes")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{where}: cannot read it: {exc}") from None
    try:
        return _profile(name, data)
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None


def _profile(name: str, data: dict[str, Any]) -> Profile:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ProfileError(f"unknown keys {unknown} (known: {', '.join(sorted(_KEYS))})")
    vendor, model = _text(data, "vendor", required=True), _text(data, "model", required=True)
    kind = data.get("kind")
    if kind is not None and kind not in {k.value for k in DeviceKind}:
        raise ProfileError(f"kind must be one of {[k.value for k in DeviceKind]}, got {kind!r}")
    interval = _number(data, "reporting_interval_s", low=1.0, high=7 * 86400.0)
    offset = _number(data, "mounting_offset_mm", low=-1000.0, high=1000.0)
    if offset is not None and kind != DeviceKind.bin.value:
        raise ProfileError('mounting_offset_mm applies only to bin sensors (kind = "bin")')
    fields = _fields(data.get("fields", {}))
    status = _status(data.get("status", {}))
    return Profile(
        id=name,
        vendor=vendor,
        model=model,
        kind=kind,
        description=_text(data, "description"),
        codec=_text(data, "codec"),
        reporting_interval_s=interval,
        mounting_offset_mm=offset,
        fields=fields,
        status=status,
    )


def _text(data: Mapping[str, Any], key: str, required: bool = False) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ProfileError(f"{key} must be {'a non-empty' if required else 'a'} string")
    return value.strip()


def _number(data: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{key} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ProfileError(f"{key} must be within [{low:g}, {high:g}], got {value:g}")
    return float(value)


def _quantity(what: str, name: Any) -> str:
    if name not in QUANTITIES:
        raise ProfileError(
            f"{what}: {name!r} is not a Sigap field (one of: {', '.join(QUANTITIES)})"
        )
    return str(name)


def _fields(table: Any) -> dict[str, str | Mapping[str, Any]]:
    if not isinstance(table, dict):
        raise ProfileError("[fields] must be a table of codec key = Sigap field")
    out: dict[str, str | Mapping[str, Any]] = {}
    for key, target in table.items():
        what = f"fields.{key}"
        if isinstance(target, str):
            out[key] = _quantity(what, target)
            continue
        if not isinstance(target, dict) or set(target) - {"field", "scale", "unit", "strip"}:
            raise ProfileError(
                f'{what} must be a Sigap field or {{field = "...", unit = "...", strip = [...]}}'
            )
        name = _quantity(what, target.get("field"))
        entry: dict[str, Any] = {"field": name}
        if "scale" in target:
            scale = target["scale"]
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale:
                raise ProfileError(f"{what}: scale must be a non-zero number")
            entry["scale"] = float(scale)
        if "unit" in target:
            unit = target["unit"]
            if unit not in units.UNIT_SYNONYMS[name]:
                raise ProfileError(
                    f"{what}: unit {unit!r} does not fit {name} "
                    f"({', '.join(units.UNIT_SYNONYMS[name])})"
                )
            if "scale" in entry:
                raise ProfileError(f"{what}: give a unit or a scale, not both")
            entry["unit"] = unit
        if "strip" in target:
            # Text a codec appends to the number that is not a unit ("2.9(low battery)").
            strip = target["strip"]
            if not isinstance(strip, list) or not all(isinstance(t, str) and t for t in strip):
                raise ProfileError(f"{what}: strip must be a list of non-empty strings")
            entry["strip"] = list(strip)
        out[key] = entry
    return out


def _status(table: Any) -> dict[str, dict[str, StatusAction]]:
    if not isinstance(table, dict):
        raise ProfileError("[status] must be a table of codec key -> {string = meaning}")
    out: dict[str, dict[str, StatusAction]] = {}
    for key, strings in table.items():
        if not isinstance(strings, dict) or not strings:
            raise ProfileError(f"status.{key} must be a table of status string = meaning")
        meanings: dict[str, StatusAction] = {}
        for text, meaning in strings.items():
            what = f"status.{key}.{text!r}"
            if meaning in ("fault", "ignore"):
                meanings[text] = StatusAction(meaning)
                continue
            if not isinstance(meaning, dict) or not meaning:
                raise ProfileError(
                    f'{what} must be "fault", "ignore" or a table of Sigap field = value'
                )
            values = []
            for name, value in meaning.items():
                _quantity(what, name)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ProfileError(f"{what}: {name} must be a number, got {value!r}")
                low, high = RANGES[name]
                if not low <= value <= high:
                    raise ProfileError(f"{what}: {name}={value:g} is outside [{low:g}, {high:g}]")
                values.append((name, float(value)))
            meanings[text] = StatusAction("set", tuple(values))
        out[key] = meanings
    return out


class ProfileLibrary:
    """Profiles by id: the shipped ones, then an operator's directory (which wins by id)."""

    def __init__(self, profiles: Mapping[str, Profile]) -> None:
        self._profiles = dict(sorted(profiles.items()))

    @classmethod
    def load(cls, *directories: Path) -> ProfileLibrary:
        """Every *.toml in these directories; a later directory's profile replaces an earlier
        one of the same id. A broken file is an error, not a silent gap."""
        found: dict[str, Profile] = {}
        for directory in directories:
            if not directory.is_dir():
                raise ProfileError(f"profile directory {directory} does not exist")
            for path in sorted(directory.glob("*.toml")):
                profile = load_profile(path)
                found[profile.id] = profile
        return cls(found)

    def get(self, profile_id: str) -> Profile | None:
        """The profile of this id, or None."""
        return self._profiles.get(profile_id)

    def ids(self) -> list[str]:
        """Every profile id, sorted."""
        return list(self._profiles)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def check(self, profile_id: str, kind: str, lorawan: bool) -> Profile:
        """The profile a device of this kind may be registered with; ValueError says why not."""
        profile = self._profiles.get(profile_id)
        if profile is None:
            raise ValueError(
                f"profile: unknown profile {profile_id!r} (known: {', '.join(self._profiles)})"
            )
        if profile.kind is not None and profile.kind != kind:
            raise ValueError(
                f"profile: {profile_id!r} ({profile.vendor} {profile.model}) is for {profile.kind} "
                f"devices, not {kind}"
            )
        if profile.maps_codec and not lorawan:
            raise ValueError(
                f"profile: {profile_id!r} maps a LoRaWAN codec's fields: set network_server "
                "(a device on Sigap's own topics sends Sigap field names: profile 'sigap')"
            )
        return profile


_installed: list[ProfileLibrary] = []


def install(extra: Path | None) -> ProfileLibrary:
    """Load the shipped profiles and those in `extra` (SIGAP_DEVICES_PROFILES_DIR) as the
    library every registration and ingest uses; a broken profile fails here, at start."""
    loaded = ProfileLibrary.load(SHIPPED, *([extra] if extra else []))
    _installed[:] = [loaded]
    return loaded


def library() -> ProfileLibrary:
    """The installed library (by default the shipped profiles and $SIGAP_DEVICES_PROFILES_DIR)."""
    if not _installed:
        extra = os.environ.get(ENV_DIR)
        install(Path(extra) if extra else None)
    return _installed[0]
