"""In-memory device directory: what ingest needs per device, with dense indices for rules."""

from __future__ import annotations

from dataclasses import dataclass

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


class DeviceDirectory:
    """Device id -> DeviceInfo, with a stable dense index per device for the rule state arrays.

    Indices are never reused within a process, so state arrays indexed by them stay valid.
    """

    def __init__(self) -> None:
        self._by_id: dict[str, DeviceInfo] = {}
        self.ids: list[str] = []  # index -> device id; shared with every ReadingBatch

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
        )
        if known is None:
            self.ids.append(device.id)
        self._by_id[device.id] = info
        return info
