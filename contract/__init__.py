"""Sigap's wire and domain contract: what every stage and the simulator agree on.

Device kinds, reading quantities with their units and ranges, alert kinds and slots,
per-device rule thresholds, bin status, MQTT topic shapes and event-time conventions.
This package is the bottom of the import graph: it imports nothing of Sigap's own
(tests/unit/test_layout.py checks it), so the simulator can speak the contract without
knowing anything of the service.
"""

from contract.alerts import (
    ALERT_KINDS,
    AlertKind,
    Category,
    Severity,
)
from contract.bins import BinStatus
from contract.readings import (
    KIND_CODES,
    KIND_NAMES,
    Q_INDEX,
    QUANTITIES,
    RANGES,
    UNITS,
    DeviceKind,
)
from contract.thresholds import EN54_5_CLASSES, PARAM_NAMES, RuleParams, RulesConfigError

__all__ = [
    "ALERT_KINDS",
    "EN54_5_CLASSES",
    "KIND_CODES",
    "KIND_NAMES",
    "PARAM_NAMES",
    "QUANTITIES",
    "Q_INDEX",
    "RANGES",
    "UNITS",
    "AlertKind",
    "BinStatus",
    "Category",
    "DeviceKind",
    "RuleParams",
    "RulesConfigError",
    "Severity",
]
