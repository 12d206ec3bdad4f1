"""InfluxDB line protocol encoding (escaping rules of the official line-protocol corpus)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal

_MEASUREMENT_ESCAPES = str.maketrans(
    {",": r"\,", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
)
_KEY_ESCAPES = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
)


class LineProtocolError(ValueError):
    """A point that line protocol cannot represent (empty key, empty tag value, NaN...)."""


FieldValue = float | int | bool | str


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and whitespace)."""
    if not name:
        raise LineProtocolError("empty measurement name")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs and whitespace)."""
    return key.translate(_KEY_ESCAPES)


def format_field_value(value: FieldValue) -> str:
    """Format a field value: floats plain, integers with an `i`, strings quoted and escaped."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field value {value!r} is not finite")
        return _format_float(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise LineProtocolError(f"unsupported field type {type(value).__name__}")


def _format_float(value: float) -> str:
    """Shortest round-trip form in Go's strconv 'g' style (the reference encoder's output)."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits))
    exponent = int(digits_tuple.exponent)
    point = len(digits) + exponent  # position of the decimal point within `digits`
    exp10 = point - 1
    # strconv.FormatFloat(v, 'g', -1, 64): exponent form when exp < -4 or exp >= 6.
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def tag_prefix(measurement: str, tags: Iterable[tuple[str, str]]) -> str:
    """The `measurement,tag=value...` part followed by a space, tags sorted by key."""
    parts = [escape_measurement(measurement)]
    for key, value in sorted(tags):
        if not key:
            raise LineProtocolError("empty tag key")
        if not value:
            raise LineProtocolError(f'invalid tag value {key}=""')
        parts.append(f"{escape_key(key)}={escape_key(value)}")
    return ",".join(parts) + " "


def encode_fields(fields: Iterable[tuple[str, FieldValue]]) -> str:
    """The field set `k=v,k2=v2`; at least one field is required."""
    encoded = []
    for key, value in fields:
        if not key:
            raise LineProtocolError("empty field key")
        encoded.append(f"{escape_key(key)}={format_field_value(value)}")
    if not encoded:
        raise LineProtocolError("a point needs at least one field")
    return ",".join(encoded)


def encode_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time_ns: int | None = None,
) -> str:
    """One line of line protocol (no trailing newline)."""
    line = tag_prefix(measurement, tags.items()) + encode_fields(fields.items())
    return line if time_ns is None else f"{line} {time_ns}"
