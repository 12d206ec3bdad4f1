"""Alert events: what the rule engine hands to dispatch (see docs/rules.md, "Alerts")."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from contract.alerts import Severity

__all__ = ["Action", "AlertEvent", "Severity"]


class Action(StrEnum):
    """What happened to a (device, slot)."""

    raise_ = "raise"  # the slot became active
    update = "update"  # the active slot changed kind (escalation) or details
    clear = "clear"  # the slot is no longer active


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building events about a tenth of the rule engine's time. Nothing changes an event once
# built.
@dataclass(slots=True)
class AlertEvent:
    """A rule's verdict about one device at one event time."""

    action: Action
    slot: str  # what one alert tracks per device, e.g. "fire", "bin.fill"
    kind: str  # what people see, e.g. "fire.confirmed", "bin.full"
    category: str  # "fire", "bin" or "device"
    device_id: str
    device_index: int
    ts_ms: int  # event time of the reading that caused it (now, for offline)
    severity: Severity
    reason: str  # readable, names the values that triggered it
    values: dict[str, float] = field(default_factory=dict)
    partners: tuple[str, ...] = ()  # fire.confirmed: the other detectors that agreed
    zone: str | None = None  # fire.confirmed by detectors in one zone: that zone

    def key(self) -> tuple[str, str, str, str, int]:
        """Identity for comparing engines: (device, slot, action, kind, ts)."""
        return (self.device_id, self.slot, self.action.value, self.kind, self.ts_ms)
