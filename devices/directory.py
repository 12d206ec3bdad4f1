"""In-memory device directory: what ingest needs per device, with dense indices for rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devices.schemas import KIND_CODES, DeviceCreate


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
    rule_class: str | None = None
    thresholds: dict[str, Any] | None = None


class DeviceDirectory:
    """Device id -> DeviceInfo, with a stable dense index per device for the rule state arrays.

    Indices are never reused within a process, so state arrays indexed by them stay valid.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, DeviceInfo] = {}
        self.ids: list[str] = []  # index -> device id; shared with every ReadingBatch
        self._listeners: list[Callable[[DeviceInfo], object]] = []

    def __len__(self) -> int:
        return len(self.ids)

    def get(self, device_id: str) -> DeviceInfo | None:
        """The device's info, or None when it is not registered (as far as we know)."""
        return self._by_id.get(device_id)

    def upsert(self, device: DeviceCreate) -> DeviceInfo:
        """Add or refresh a device, keeping its index if it is already known."""
        known = self._by_id.get(device.id)
        index = known.index if known else len(self.ids)
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
            reporting_interval_s=device.reporting_interval_s,
            rule_class=device.rule_class,
            thresholds=device.thresholds,
        )
        if known is None:
            self.ids.append(device.id)
        self._by_id[device.id] = info
        for listener in self._listeners:
            listener(info)
        return info

    def listen(self, callback: Callable[[DeviceInfo], object]) -> None:
        """Call back on every upsert (the rule engine keeps its device table in step)."""
        self._listeners.append(callback)
