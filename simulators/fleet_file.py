"""Load a fleet from a CSV or JSON file in the registry's device format (DeviceCreate fields)."""

from __future__ import annotations

import csv
import math
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from simulators.errors import SimulatorError
from simulators.fleet import METRES_PER_DEG_LAT, Building, Fleet, Kind, SimDevice
from simulators.models import random_air_params, random_bin_params, random_detector_params

# The same rule as devices.schemas.DEVICE_ID_PATTERN (not imported: simulators stay a client).
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Rows of these kinds describe gateways; the registry extension lists them with the devices.
_GATEWAY_KINDS = frozenset({"gateway"})


class FleetFileError(SimulatorError):
    """A fleet file that cannot be used; names the file, the row and the field."""

    def __init__(self, path: str, row: int | None, field: str | None, reason: str) -> None:
        where = path + (f", row {row}" if row is not None else "")
        where += f", field {field!r}" if field else ""
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.row = row
        self.field = field
        self.reason = reason


def _rows(path: Path) -> list[tuple[int, Mapping[str, Any]]]:
    """(row number as a person counts it, mapping) for each device of a CSV or JSON file."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FleetFileError(str(path), None, None, f"not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = data.get("devices")
        if not isinstance(data, list):
            raise FleetFileError(
                str(path), None, None, 'expected a list of devices or {"devices": [...]}'
            )
        out: list[tuple[int, Mapping[str, Any]]] = []
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise FleetFileError(str(path), i, None, "each device must be a JSON object")
            out.append((i, item))
        return out
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or "id" not in reader.fieldnames:
        raise FleetFileError(str(path), 1, "id", "the CSV header must have an id column")
    # Line 1 is the header, so the first device is on line 2.
    return [(i, row) for i, row in enumerate(reader, start=2)]


def _text(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _number(path: str, no: int, row: Mapping[str, Any], name: str) -> float | None:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise FleetFileError(path, no, name, f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FleetFileError(path, no, name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise FleetFileError(path, no, name, f"must be finite, got {value!r}")
    return number


def parse_fleet_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]], seed: int = 7, source: str = "fleet"
) -> Fleet:
    """Build a Fleet from registry-shaped rows; unknown columns are ignored."""
    devices: list[SimDevice] = []
    gateways: list[str] = []
    seen: set[str] = set()
    for no, row in rows:
        dev_id = _text(row, "id")
        if dev_id is None or not _ID_RE.match(dev_id):
            raise FleetFileError(source, no, "id", f"missing or not a valid device id: {dev_id!r}")
        if dev_id in seen:
            raise FleetFileError(source, no, "id", f"{dev_id!r} appears twice")
        seen.add(dev_id)
        kind = (_text(row, "kind") or "").lower()
        if kind in _GATEWAY_KINDS:
            gateways.append(dev_id)
            continue
        if kind not in ("fire", "bin", "air"):
            raise FleetFileError(source, no, "kind", f"must be fire, bin or air, got {kind!r}")
        lat = _number(source, no, row, "lat")
        lon = _number(source, no, row, "lon")
        if lat is None or not -90 <= lat <= 90:
            raise FleetFileError(source, no, "lat", "required, within -90..90")
        if lon is None or not -180 <= lon <= 180:
            raise FleetFileError(source, no, "lon", "required, within -180..180")
        depth = _number(source, no, row, "depth_mm")
        if kind == "bin" and (depth is None or depth <= 0):
            raise FleetFileError(source, no, "depth_mm", "required (> 0) for a bin")
        interval = _number(source, no, row, "reporting_interval_s")
        if interval is not None and interval <= 0:
            raise FleetFileError(source, no, "reporting_interval_s", "must be positive")
        gateway = _text(row, "gateway_id")
        if gateway is not None and gateway not in gateways:
            gateways.append(gateway)
        # Traits from the seed and the id, so reordering the file changes nothing.
        rng = random.Random(f"sigap-fleet-file:{seed}:{dev_id}")
        typed_kind: Kind = "fire" if kind == "fire" else "air" if kind == "air" else "bin"
        devices.append(
            SimDevice(
                id=dev_id,
                kind=typed_kind,
                name=_text(row, "name") or dev_id,
                lat=lat,
                lon=lon,
                district=_text(row, "district") or "",
                zone=_text(row, "zone") if kind == "fire" else None,
                depth_mm=depth if kind == "bin" else None,
                gateway_id=gateway,
                interval_s=interval,
                detector=random_detector_params(rng) if kind == "fire" else None,
                bin=random_bin_params(rng, depth) if kind == "bin" and depth else None,
                air=random_air_params(rng) if kind == "air" else None,
            )
        )
    devices, buildings = _place_in_buildings(devices)
    return Fleet(tuple(devices), tuple(buildings), tuple(gateways))


def _place_in_buildings(devices: list[SimDevice]) -> tuple[list[SimDevice], list[Building]]:
    """Group fire detectors by zone and give each its position (m) from the zone's centre."""
    by_zone: dict[str, list[SimDevice]] = {}
    for device in devices:
        if device.kind == "fire" and device.zone is not None:
            by_zone.setdefault(device.zone, []).append(device)
    placed: dict[str, SimDevice] = {}
    buildings: list[Building] = []
    for zone, members in by_zone.items():
        lat0 = sum(d.lat for d in members) / len(members)
        lon0 = sum(d.lon for d in members) / len(members)
        m_per_deg_lon = METRES_PER_DEG_LAT * math.cos(math.radians(lat0))
        for d in members:
            placed[d.id] = replace(
                d,
                x_m=round((d.lon - lon0) * m_per_deg_lon, 2),
                y_m=round((d.lat - lat0) * METRES_PER_DEG_LAT, 2),
            )
        buildings.append(
            Building(zone, members[0].district, lat0, lon0, tuple(d.id for d in members))
        )
    # Fire detectors first, as in a generated fleet (then the rest in file order).
    ordered = [placed.get(d.id, d) for d in devices]
    ordered.sort(key=lambda d: d.kind != "fire")
    return ordered, buildings


def load_fleet_file(path: str | Path, seed: int = 7) -> Fleet:
    """Read a fleet from CSV or JSON (id, kind, name, lat, lon, district, zone, depth_mm, ...)."""
    file = Path(path)
    try:
        rows = _rows(file)
    except OSError as exc:
        raise FleetFileError(str(file), None, None, f"cannot read: {exc}") from None
    if not rows:
        raise FleetFileError(str(file), None, None, "no devices")
    return parse_fleet_rows(rows, seed, str(file))
