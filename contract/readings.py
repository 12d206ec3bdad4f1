"""Device kinds and the quantities a reading may carry, with their units and ranges."""

from __future__ import annotations

from enum import StrEnum


class DeviceKind(StrEnum):
    """What a registered device is."""

    fire = "fire"
    bin = "bin"
    air = "air"  # an air-quality station: PM2.5 (and PM10, CO), the regional haze's witness


# Kinds as small integer codes, so that rules can mask numpy columns by kind.
KIND_CODES: dict[str, int] = {
    DeviceKind.fire.value: 1,
    DeviceKind.bin.value: 2,
    DeviceKind.air.value: 3,
}
KIND_NAMES: dict[int, str] = {code: name for name, code in KIND_CODES.items()}

# Quantities a reading may carry, in column order (ReadingBatch rows, InfluxDB fields);
# units are in the names, spelled out in UNITS.
QUANTITIES: tuple[str, ...] = (
    "temp_c",
    "smoke_obs_pct_m",
    "co_ppm",
    "pm25_ugm3",
    "humidity_pct",
    "fill_pct",
    "distance_mm",
    "tilt_deg",
    "battery_v",
    "battery_pct",
    "rssi_dbm",
    # New quantities go last: the ingest spool on disk keeps columns in this order.
    "pm10_ugm3",
)
Q_INDEX: dict[str, int] = {name: i for i, name in enumerate(QUANTITIES)}

# The unit of each quantity, as people read it (chart axes, docs, converting what
# codecs send with a unit attached).
UNITS: dict[str, str] = {
    "temp_c": "°C",
    "smoke_obs_pct_m": "%/m",
    "co_ppm": "ppm",
    "pm25_ugm3": "µg/m³",
    "pm10_ugm3": "µg/m³",
    "humidity_pct": "%",
    "fill_pct": "%",
    "distance_mm": "mm",
    "tilt_deg": "°",
    "battery_v": "V",
    "battery_pct": "%",
    "rssi_dbm": "dBm",
}

# Physical ranges; anything outside is a broken sensor or a broken payload (`out_of_range`).
RANGES: dict[str, tuple[float, float]] = {
    "temp_c": (-50.0, 1500.0),
    "smoke_obs_pct_m": (0.0, 100.0),
    "co_ppm": (0.0, 100_000.0),
    "pm25_ugm3": (0.0, 100_000.0),
    "pm10_ugm3": (0.0, 100_000.0),
    "humidity_pct": (0.0, 100.0),
    "fill_pct": (0.0, 100.0),
    "distance_mm": (0.0, 20_000.0),
    "tilt_deg": (0.0, 180.0),
    "battery_v": (0.0, 60.0),
    "battery_pct": (0.0, 100.0),
    "rssi_dbm": (-200.0, 0.0),
}
