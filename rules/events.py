"""Alert events: what the rule engine hands to dispatch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """Whether a condition began or ended."""

    raise_ = "raise"
    clear = "clear"


class Severity(StrEnum):
    """How urgent an alert is (CAP-like scale)."""

    critical = "critical"
    major = "major"
    minor = "minor"
    info = "info"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A rule's verdict about one device at one reading's event time."""

    action: Action
    kind: str  # e.g. "fire.alarm", "bin.full"
    device_id: str
    device_index: int
    ts_ms: int  # event time of the reading that caused it
    severity: Severity
    reason: str  # readable, names the values that triggered it
    values: dict[str, float] = field(default_factory=dict)
