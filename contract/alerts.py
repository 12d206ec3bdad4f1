"""Alert kinds, the slot each one lives in, their categories and severities.

A slot is what one alert tracks per device: a detector's `fire` slot goes pre-alarm ->
alarm -> confirmed as one alert, a bin's `bin.fill` slot nearly full -> full. The kind is
what people see. docs/rules.md is the specification of when each is raised and cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """Who an alert is for: the fire brigade, the waste crews, or the technicians."""

    fire = "fire"
    bin = "bin"
    device = "device"
    haze = "haze"  # regional smoke haze: information for everyone, not one device


class Severity(StrEnum):
    """How urgent an alert is (CAP-like scale)."""

    critical = "critical"
    major = "major"
    minor = "minor"
    info = "info"


FIRE_SLOT = "fire"
FIRE_KINDS: dict[int, str] = {1: "fire.pre_alarm", 2: "fire.alarm", 3: "fire.confirmed"}
BIN_FILL_SLOT = "bin.fill"
BIN_FILL_KINDS: dict[int, str] = {1: "bin.nearly_full", 2: "bin.full"}
BIN_FIRE_SLOT = "bin.fire"
BIN_TILT_SLOT = "bin.tilted"
BATTERY_SLOT = "device.battery_low"
OFFLINE_SLOT = "device.offline"
FAULT_SLOT = "device.fault"
HAZE_SLOT = "haze.regional"  # one per region (device id haze:<region>)


@dataclass(frozen=True, slots=True)
class AlertKind:
    """One kind of alert: its slot, its category, and its level within the slot."""

    name: str
    slot: str
    category: Category
    level: int = 1


def _kinds() -> dict[str, AlertKind]:
    kinds = [
        *(AlertKind(name, FIRE_SLOT, Category.fire, level) for level, name in FIRE_KINDS.items()),
        *(
            AlertKind(name, BIN_FILL_SLOT, Category.bin, level)
            for level, name in BIN_FILL_KINDS.items()
        ),
        # A burning bin is the fire brigade's business, not the waste crew's.
        AlertKind("bin.fire", BIN_FIRE_SLOT, Category.fire),
        AlertKind("bin.tilted", BIN_TILT_SLOT, Category.bin),
        AlertKind("device.battery_low", BATTERY_SLOT, Category.device),
        AlertKind("device.offline", OFFLINE_SLOT, Category.device),
        AlertKind("device.fault", FAULT_SLOT, Category.device),
        AlertKind("haze.regional", HAZE_SLOT, Category.haze),
    ]
    return {kind.name: kind for kind in kinds}


# Every alert kind Sigap raises, by name.
ALERT_KINDS: dict[str, AlertKind] = _kinds()
