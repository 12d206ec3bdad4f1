"""In-memory device directory: what ingest needs per device, with dense indices for rules."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from contract.readings import KIND_CODES
from devices import profiles
from devices.profiles import Profile, StatusAction
from devices.schemas import DeviceCreate

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The registry facts ingest and rules need about one device."""

    index: int
    id: str
    kind: str
    kind_code: int
    gateway_id: str | None
    depth_mm: float | None
    zone: str | None
    lat: float
    lon: float
    reporting_interval_s: float | None = None
    district: str | None = None  # the rule engine's haze region
    rule_class: str | None = None
    thresholds: dict[str, Any] | None = None
    status: str = "active"
    network_server: str | None = None
    ns_device_id: str | None = None
    # Decoded payload key -> Sigap field name or {"field": ..., "scale": ...} (ingest.lorawan):
    # the device profile's map with the device's own entries over it.
    field_map: dict[str, Any] | None = None
    sensor_offsets: dict[str, float] | None = None
    profile: str | None = None
    # Decoded payload key -> status string -> its meaning (the device profile's).
    status_map: Mapping[str, Mapping[str, StatusAction]] | None = None

    @property
    def retired(self) -> bool:
        """True when ingest must refuse this device's readings (Reason.DEVICE_RETIRED)."""
        return self.status == "retired"


def _merged(defaults: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> Any:
    """A profile's defaults with the device's own entries over them (None if both empty)."""
    merged = {**(defaults or {}), **(own or {})}
    return merged or None


def _mounting(profile: Profile | None) -> dict[str, float] | None:
    """A bin sensor's mounting offset, as the distance offset it adds to every reading."""
    if profile is None or not profile.mounting_offset_mm:
        return None
    return {"distance_mm": profile.mounting_offset_mm}


# A reading's gateway code when no gateway check applies (it came on its own topic), and
# the code of a gateway the directory has never seen (no device is behind it).
NO_GATEWAY_CHECK = -1
UNKNOWN_GATEWAY = -2


class DeviceTable:
    """What ingest checks for every reading, as numpy columns by device index: a batch's
    registry checks and columns are then array look-ups, not a Python step per reading."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}  # device id -> index
        self.kind = np.zeros(1, np.uint8)  # never empty: index 0 stands in for unknown ids
        self.depth_mm = np.full(1, np.nan)
        self.retired = np.zeros(1, bool)
        self.has_offsets = np.zeros(1, bool)
        self.gateway = np.zeros(1, np.int32)  # 0: reports directly, else a gateway's code
        self._gateway_codes: dict[str, int] = {}

    def gateway_code(self, gateway_id: str | None) -> int:
        """The code a reading that came through this gateway is checked with."""
        if gateway_id is None:
            return NO_GATEWAY_CHECK
        return self._gateway_codes.get(gateway_id, UNKNOWN_GATEWAY)

    def set(self, info: DeviceInfo) -> None:
        """Record a device's facts at its index."""
        if info.index >= len(self.kind):
            size = max(info.index + 1, 2 * len(self.kind))
            self.kind = _grown(self.kind, size, 0)
            self.depth_mm = _grown(self.depth_mm, size, np.nan)
            self.retired = _grown(self.retired, size, False)
            self.has_offsets = _grown(self.has_offsets, size, False)
            self.gateway = _grown(self.gateway, size, 0)
        at = info.index
        self.index[info.id] = at
        self.kind[at] = info.kind_code
        self.depth_mm[at] = info.depth_mm if info.depth_mm else np.nan
        self.retired[at] = info.retired
        self.has_offsets[at] = bool(info.sensor_offsets)
        if info.gateway_id is None:
            self.gateway[at] = 0
        else:
            code = self._gateway_codes.setdefault(info.gateway_id, len(self._gateway_codes) + 1)
            self.gateway[at] = code


def _grown(column: npt.NDArray[Any], size: int, fill: Any) -> npt.NDArray[Any]:
    grown = np.full(size, fill, column.dtype)
    grown[: len(column)] = column
    return grown


class DeviceDirectory:
    """Device id -> DeviceInfo, with a stable dense index per device for the rule state arrays.

    Indices are never reused within a process, so state arrays indexed by them stay valid.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, DeviceInfo] = {}
        self._by_ns: dict[tuple[str, str], str] = {}  # (network server, ns device id) -> id
        self.ids: list[str] = []  # index -> device id; shared with every ReadingBatch
        self._listeners: list[Callable[[DeviceInfo], object]] = []
        self.table = DeviceTable()

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, device_id: str) -> DeviceInfo | None:
        """The device's info, or None when it is not registered (as far as we know)."""
        return self._by_id.get(device_id)

    def find_lorawan(self, network_server: str, keys: Iterable[str]) -> DeviceInfo | None:
        """The device registered with one of these network server ids (tried in order)."""
        for key in keys:
            # DevEUIs are stored lowercased and TTS device ids are lowercase by definition.
            device_id = self._by_ns.get((network_server, key.lower()))
            if device_id is not None:
                return self._by_id.get(device_id)
        return None

    def upsert(self, device: DeviceCreate) -> DeviceInfo:
        """Add or refresh a device, keeping its index if it is already known."""
        known = self._by_id.get(device.id)
        index = known.index if known else len(self.ids)
        own_map = device.model_dump(include={"field_map"})["field_map"]
        profile = profiles.library().get(device.profile) if device.profile else None
        if device.profile and profile is None:
            # Registered with a profile whose file has been removed since: its own settings
            # still apply; the codec's names and status strings no longer do.
            log.warning(
                "device %s: profile %r is not installed; its defaults are not applied",
                device.id,
                device.profile,
            )
        info = DeviceInfo(
            index=index,
            id=device.id,
            kind=device.kind.value,
            kind_code=KIND_CODES[device.kind.value],
            gateway_id=device.gateway_id,
            depth_mm=device.depth_mm,
            zone=device.zone,
            lat=device.lat,
            lon=device.lon,
            reporting_interval_s=device.reporting_interval_s
            or (profile.reporting_interval_s if profile else None),
            district=device.district,
            rule_class=device.rule_class,
            thresholds=device.thresholds,
            status=device.status.value,
            network_server=device.network_server.value if device.network_server else None,
            ns_device_id=device.ns_device_id,
            field_map=_merged(profile.fields if profile else None, own_map),
            sensor_offsets=_merged(_mounting(profile), device.sensor_offsets),
            profile=device.profile,
            status_map=profile.status if profile and profile.status else None,
        )
        if known is None:
            self.ids.append(device.id)
        elif known.network_server and known.ns_device_id:
            self._by_ns.pop((known.network_server, known.ns_device_id), None)
        if info.network_server and info.ns_device_id:
            self._by_ns[(info.network_server, info.ns_device_id)] = info.id
        self._by_id[device.id] = info
        self.table.set(info)
        for listener in self._listeners:
            listener(info)
        return info

    def listen(self, callback: Callable[[DeviceInfo], object]) -> None:
        """Call back on every upsert (the rule engine keeps its device table in step)."""
        self._listeners.append(callback)
