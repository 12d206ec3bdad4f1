"""Numbers as codecs send them ("3.384 V", "23.59", "1203 mm") turned into Sigap's units.

A LoRaWAN codec often sends a value as a string, with or without a unit. `to_number`
accepts a plain number, a numeric string, or a number followed by the field's unit or one
of its synonyms (converted, e.g. "3384 mV" -> 3.384 for battery_v), and rejects anything
else with a reason code ingest already uses (or `bad_unit`). It never guesses: a decimal
comma ("3,384") is rejected, not read as 3 or 3384. Ranges are checked by ingest after
conversion, not here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from contract.readings import QUANTITIES, UNITS

# The same strings as ingest.decode.Reason (the contract cannot import ingest).
BAD_TYPE = "bad_type"
NOT_FINITE = "not_finite"
BAD_UNIT = "bad_unit"


class ValueRejected(ValueError):
    """A value that cannot be read as a number in Sigap's unit; `reason` is a reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Conversion:
    """From one unit to Sigap's: sigap = value * scale + offset."""

    scale: float
    offset: float = 0.0

    def apply(self, value: float) -> float:
        """The value in Sigap's unit."""
        # Dividing by 1000 rounds once; multiplying by 0.001 (itself a rounded float) can be
        # an ulp off, and "3384 mV" should give the same float as "3.384 V".
        if self.scale < 1:
            inverse = 1 / self.scale
            if inverse.is_integer():
                return value / inverse + self.offset
        return value * self.scale + self.offset


_SAME = Conversion(1.0)
# (x - 32) * 5/9 = x * 5/9 - 160/9.
_FAHRENHEIT = Conversion(5 / 9, -160 / 9)
# Micro sign (U+00B5, what UNITS uses) and Greek mu (U+03BC) look alike and both occur.
_MICROGRAMS = dict.fromkeys(("µg/m³", "μg/m³", "ug/m3", "ug/m³", "µg/m3", "μg/m3"), _SAME)

# Every accepted spelling per quantity, Sigap's own unit (UNITS) first. Matching is exact:
# case matters ("m" is metres, "M" would be a guess), so a unit is never half-recognised.
UNIT_SYNONYMS: dict[str, dict[str, Conversion]] = {
    "temp_c": {
        "°C": _SAME,
        "C": _SAME,
        "℃": _SAME,
        "degC": _SAME,
        "°F": _FAHRENHEIT,
        "F": _FAHRENHEIT,
        "℉": _FAHRENHEIT,
    },
    "smoke_obs_pct_m": {"%/m": _SAME},
    "co_ppm": {"ppm": _SAME},
    "pm25_ugm3": dict(_MICROGRAMS),
    "humidity_pct": {"%": _SAME, "%RH": _SAME},
    "fill_pct": {"%": _SAME},
    "distance_mm": {"mm": _SAME, "cm": Conversion(10.0), "m": Conversion(1000.0)},
    "tilt_deg": {"°": _SAME, "deg": _SAME},
    "battery_v": {"V": _SAME, "mV": Conversion(0.001)},
    "battery_pct": {"%": _SAME},
    "rssi_dbm": {"dBm": _SAME},
    "pm10_ugm3": dict(_MICROGRAMS),
}

# Every unit any quantity accepts: tells "nan V" (a non-finite value) from "nano" (text).
_ALL_UNITS = frozenset(unit for units in UNIT_SYNONYMS.values() for unit in units)

# A plain decimal number, ASCII digits only (\d would take other scripts' digits, and
# float() would take "1_000"): optional sign, digits with at most one point, exponent.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:infinity|inf|nan)", re.IGNORECASE)
# What follows a number and makes it malformed rather than a number with a unit.
_NUMBER_CHARS = frozenset("0123456789.,+-_")


def _echo(value: object) -> str:
    """The value as sent, short, like ingest's `{value!r:.40}`."""
    try:
        return f"{value!r:.40}"
    except ValueError:  # an int beyond sys.get_int_max_str_digits() has no repr
        return f"<{type(value).__name__}>"


def _expected(field: str) -> str:
    """The units a field accepts, for a detail: "mm; also cm, m"."""
    units = list(UNIT_SYNONYMS.get(field, ()))
    if not units:
        return "it takes no unit"
    if len(units) == 1:
        return units[0]
    return f"{units[0]}; also {', '.join(units[1:])}"


def to_number(field: str, raw: object) -> float:
    """The value of `field` in Sigap's unit, from a number or a numeric string with a unit."""
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueRejected(NOT_FINITE, f"{field} must be finite, got {raw!r}")
        return float(raw)
    # bool is an int subclass, but `true` is not a temperature.
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return float(raw)
        except OverflowError:
            raise ValueRejected(NOT_FINITE, f"{field} is too large: {_echo(raw)}") from None
    if isinstance(raw, str):
        return _from_text(field, raw)
    raise ValueRejected(
        BAD_TYPE, f"{field} must be a number, got {type(raw).__name__} {_echo(raw)}"
    )


def _from_text(field: str, raw: str) -> float:
    text = raw.strip()
    if not text:
        suffix = f" ({_echo(raw)})" if raw else ""
        raise ValueRejected(BAD_TYPE, f"{field} is an empty string{suffix}")
    sent = f"{field}={_echo(raw)}"
    match = _NUMBER.match(text)
    if match is None:
        special = _NON_FINITE.match(text)
        if special is not None:
            after = text[special.end() :]
            # "nan", "NaN V", "infmm" are non-finite values; "information" is just text.
            if not after or after[0].isspace() or after in _ALL_UNITS:
                raise ValueRejected(NOT_FINITE, f"{sent}: must be finite")
        if text in _ALL_UNITS:
            raise ValueRejected(BAD_TYPE, f"{sent}: a unit without a number")
        raise ValueRejected(BAD_TYPE, f"{sent}: not a number")
    unit = text[match.end() :].strip()
    if unit[:1] == "," and unit[1:2].isdigit():
        # "3,384" could mean 3.384 or 3384; guessing would store a wrong reading silently.
        raise ValueRejected(
            BAD_TYPE,
            f"{sent}: uses a decimal comma; Sigap needs a decimal point "
            "and no thousands separators",
        )
    if unit[:1] in _NUMBER_CHARS:  # "3.3.3", "3 4 V", "1_000": not one plain number
        raise ValueRejected(BAD_TYPE, f"{sent}: not a number (malformed)")
    value = float(match.group())
    if unit:
        conversion = UNIT_SYNONYMS.get(field, {}).get(unit)
        if conversion is None:
            raise ValueRejected(
                BAD_UNIT, f"{sent}: unit {unit!r:.24} does not fit {field} ({_expected(field)})"
            )
        value = conversion.apply(value)
    if not math.isfinite(value):
        raise ValueRejected(NOT_FINITE, f"{sent}: too large for a float")
    return value


def in_unit(field: str, value: float, unit: str) -> float:
    """A number known to be in `unit` (one of the field's spellings) in Sigap's unit."""
    return UNIT_SYNONYMS[field][unit].apply(value)


def plain_number(text: str) -> float | None:
    """The number a string holds when it is a number and nothing else ("3384"), else None."""
    match = _NUMBER.fullmatch(text.strip())
    return None if match is None else float(match.group())


def unit_table() -> list[tuple[str, str, list[str]]]:
    """(quantity, Sigap unit, other accepted spellings) per quantity, in QUANTITIES order."""
    return [
        (name, UNITS[name], [unit for unit in UNIT_SYNONYMS[name] if unit != UNITS[name]])
        for name in QUANTITIES
    ]
