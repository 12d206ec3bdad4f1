"""Decode MQTT payloads once, at the edge, into typed readings or rejections with a reason."""

from __future__ import annotations

import itertools
import json
import math
import operator
from dataclasses import dataclass
from datetime import datetime
from types import GenericAlias
from typing import Annotated, Any, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from contract import units
from contract.readings import QUANTITIES, RANGES

# Fields that are not quantities but are understood; anything else is ignored so that
# firmware may add fields without its readings being thrown away.
_META_FIELDS = frozenset({"ts", "seq", "device_id"})

# Numbers above this are epoch milliseconds, below it epoch seconds (1e11 s is year 5138).
_MS_THRESHOLD = 1e11


class Reason:
    """Stable rejection reason codes (API filter values and metric labels)."""

    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_TYPE = "bad_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    NO_QUANTITY = "no_quantity"
    BAD_TIMESTAMP = "bad_timestamp"
    TS_IN_FUTURE = "ts_in_future"
    TS_TOO_OLD = "ts_too_old"
    OVERSIZED = "oversized"
    BAD_TOPIC = "bad_topic"
    DEVICE_ID_MISMATCH = "device_id_mismatch"
    UNKNOWN_DEVICE = "unknown_device"
    WRONG_GATEWAY = "wrong_gateway"
    DEVICE_RETIRED = "device_retired"
    # LoRaWAN network server envelopes (ingest.lorawan).
    BAD_ENVELOPE = "bad_envelope"
    NO_DECODED_PAYLOAD = "no_decoded_payload"
    # A message on another worker's partition topic that is not a forwarded batch.
    BAD_FORWARD = "bad_forward"
    # A number sent with a unit that does not fit its field ("12 kg" for distance_mm).
    BAD_UNIT = units.BAD_UNIT


class DecodeError(ValueError):
    """A payload or reading that cannot be accepted; `reason` is a Reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class DecodedReading(NamedTuple):
    """One reading after decoding; values are in QUANTITIES order, NaN where absent."""

    device_id: str
    ts_ms: int
    seq: int
    values: tuple[float, ...]
    ts_from_arrival: bool
    # What the sensor says is wrong with it (a device profile's status string, e.g.
    # "distance: No Sensor"): device.fault. Such a reading may carry no quantity at all.
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Validation limits for one decode call."""

    max_payload_bytes: int = 256 * 1024
    max_future_ms: int = 300_000
    max_age_ms: int = 7 * 24 * 3600 * 1000
    max_gateway_readings: int = 1000


def load_json(payload: bytes) -> Any:
    """Parse JSON strictly and fast; fall back to the stdlib only to explain a failure."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as fast_error:
        # orjson refuses NaN/Infinity and integers beyond 64 bits; the stdlib accepts them,
        # so the value checks below can name the field instead of just saying "not JSON".
        try:
            return json.loads(payload)
        except (ValueError, RecursionError):
            raise DecodeError(Reason.NOT_JSON, f"not valid JSON: {fast_error}") from None


def check_size(payload: bytes, limits: Limits) -> None:
    """Refuse a payload over the size limit before parsing it."""
    if len(payload) > limits.max_payload_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
        )


def _number(name: str, value: Any) -> float:
    if isinstance(value, str):
        # Codecs send "23.59" and "3.384 V" (contract/units.py: the units and synonyms).
        try:
            return units.to_number(name, value)
        except units.ValueRejected as exc:
            raise DecodeError(exc.reason, exc.detail) from None
    # bool is an int subclass, but `true` is not a temperature.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(
            Reason.BAD_TYPE, f"{name} must be a number, got {type(value).__name__} {value!r:.40}"
        )
    try:
        number = float(value)
    except OverflowError:
        raise DecodeError(Reason.NOT_FINITE, f"{name} is too large: {value!r:.40}") from None
    if not math.isfinite(number):
        raise DecodeError(Reason.NOT_FINITE, f"{name} must be finite, got {value!r}")
    return number


def parse_ts(value: Any) -> int:
    """Event time in epoch ms from an RFC 3339 string or epoch seconds / milliseconds."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise DecodeError(Reason.BAD_TIMESTAMP, f"ts is not RFC 3339: {text[:40]!r}...")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise DecodeError(Reason.BAD_TIMESTAMP, f"ts is not RFC 3339: {text!r}") from None
        if parsed.tzinfo is None:
            raise DecodeError(
                Reason.BAD_TIMESTAMP, f"ts {text!r} has no UTC offset (RFC 3339 needs one)"
            )
        return int(parsed.timestamp() * 1000)
    number = _number("ts", value)
    if number <= 0:
        raise DecodeError(Reason.BAD_TIMESTAMP, f"ts must be positive, got {value!r}")
    return int(number) if number >= _MS_THRESHOLD else int(number * 1000)


# Each quantity's column and range, for the fast path below.
_SPECS: dict[str, tuple[int, float, float]] = {
    name: (index, *RANGES[name]) for index, name in enumerate(QUANTITIES)
}
_SEQ_MAX = 2**63 - 1


def decode_reading(
    obj: Any, device_id: str, now_ms: int, limits: Limits, fault: str | None = None
) -> DecodedReading:
    """Validate one reading object (already parsed JSON) for the given device; with a
    `fault` (what the sensor reports about itself) it may carry no quantity."""
    if fault is not None:
        return _checked(obj, device_id, now_ms, limits, fault)
    # The fast path takes the common, valid reading in one pass over its own fields. Any
    # doubt (a type, a range, a string timestamp) goes to `_checked`, which applies every
    # check in a fixed order and so gives the same reason for the same bad reading.
    if type(obj) is not dict:
        return _checked(obj, device_id, now_ms, limits)
    values = [math.nan] * len(QUANTITIES)
    present = False
    for name, raw in obj.items():
        spec = _SPECS.get(name)
        if spec is None or raw is None:
            continue
        kind = type(raw)
        if kind is not float and kind is not int:
            return _checked(obj, device_id, now_ms, limits)
        index, low, high = spec
        if not low <= raw <= high:  # also false for NaN; an infinity is out of every range
            return _checked(obj, device_id, now_ms, limits)
        values[index] = float(raw)
        present = True
    seq = obj.get("seq")
    if seq is None:  # absent (or null): no sequence number
        seq = -1
    elif type(seq) is not int or seq < 0:
        return _checked(obj, device_id, now_ms, limits)
    elif seq > _SEQ_MAX:
        seq = _SEQ_MAX
    raw_ts = obj.get("ts")
    if not present:
        return _checked(obj, device_id, now_ms, limits)
    if raw_ts is None:
        return DecodedReading(device_id, now_ms, seq, tuple(values), True)
    if (type(raw_ts) is not int and type(raw_ts) is not float) or not 0 < raw_ts < 1e16:
        return _checked(obj, device_id, now_ms, limits)  # a string, or far out of range
    number = float(raw_ts)
    ts_ms = int(number) if number >= _MS_THRESHOLD else int(number * 1000)
    if not now_ms - limits.max_age_ms <= ts_ms <= now_ms + limits.max_future_ms:
        return _checked(obj, device_id, now_ms, limits)
    return DecodedReading(device_id, ts_ms, seq, tuple(values), False)


def _checked(
    obj: Any, device_id: str, now_ms: int, limits: Limits, fault: str | None = None
) -> DecodedReading:
    """decode_reading, every check in order: the first failing one names the reason."""
    if not isinstance(obj, dict):
        raise DecodeError(
            Reason.NOT_OBJECT, f"a reading must be a JSON object, got {type(obj).__name__}"
        )
    values = [math.nan] * len(QUANTITIES)
    present = 0
    for index, name in enumerate(QUANTITIES):
        raw = obj.get(name)
        if raw is None:
            continue
        number = _number(name, raw)
        low, high = RANGES[name]
        if not low <= number <= high:
            raise DecodeError(
                Reason.OUT_OF_RANGE, f"{name}={number:g} is outside [{low:g}, {high:g}]"
            )
        values[index] = number
        present += 1
    if present == 0 and fault is None:
        raise DecodeError(
            Reason.NO_QUANTITY, "a reading needs at least one of: " + ", ".join(QUANTITIES)
        )

    seq = -1
    raw_seq = obj.get("seq")
    if raw_seq is not None:
        if isinstance(raw_seq, bool) or not isinstance(raw_seq, int) or raw_seq < 0:
            raise DecodeError(
                Reason.BAD_TYPE, f"seq must be a non-negative integer, got {raw_seq!r:.40}"
            )
        seq = raw_seq if raw_seq < 2**63 else 2**63 - 1

    raw_ts = obj.get("ts")
    if raw_ts is None:
        ts_ms, from_arrival = now_ms, True
    else:
        ts_ms, from_arrival = parse_ts(raw_ts), False
        if ts_ms > now_ms + limits.max_future_ms:
            raise DecodeError(
                Reason.TS_IN_FUTURE,
                f"ts is {(ts_ms - now_ms) / 1000:.0f} s ahead of the server clock "
                f"(limit {limits.max_future_ms / 1000:.0f} s)",
            )
        if ts_ms < now_ms - limits.max_age_ms:
            raise DecodeError(
                Reason.TS_TOO_OLD,
                f"ts is {(now_ms - ts_ms) / 86_400_000:.1f} days old "
                f"(limit {limits.max_age_ms / 86_400_000:.1f} days)",
            )
    return DecodedReading(device_id, ts_ms, seq, tuple(values), from_arrival, fault)


def device_payload(device_id: str, payload: bytes, now_ms: int, limits: Limits) -> DecodedReading:
    """Decode a `sigap/devices/{id}/up` payload (one reading)."""
    if len(payload) > limits.max_payload_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
        )
    obj = load_json(payload)
    if isinstance(obj, dict):
        claimed = obj.get("device_id")
        if claimed is not None and claimed != device_id:
            raise DecodeError(
                Reason.DEVICE_ID_MISMATCH,
                f"payload says device_id={claimed!r:.80} but the topic is for {device_id!r}",
            )
    return decode_reading(obj, device_id, now_ms, limits)


def gateway_items(payload: bytes, limits: Limits) -> list[Any]:
    """Unpack a `sigap/gateways/{id}/up` batch into its reading objects (not yet validated)."""
    if len(payload) > limits.max_payload_bytes:
        raise DecodeError(
            Reason.OVERSIZED, f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
        )
    obj = load_json(payload)
    if not isinstance(obj, dict) or not isinstance(obj.get("readings"), list):
        raise DecodeError(
            Reason.NOT_OBJECT, 'a gateway batch must be {"readings": [{"device_id": ...}, ...]}'
        )
    items: list[Any] = obj["readings"]
    if not items:
        # Nothing to store, but a gateway sending empty batches is worth seeing.
        raise DecodeError(Reason.NO_QUANTITY, "the gateway batch has no readings")
    if len(items) > limits.max_gateway_readings:
        raise DecodeError(
            Reason.OVERSIZED, f"{len(items)} readings, limit {limits.max_gateway_readings}"
        )
    return items


def gateway_item(item: Any, now_ms: int, limits: Limits) -> DecodedReading:
    """Decode one reading of a gateway batch (it names its device)."""
    if not isinstance(item, dict):
        raise DecodeError(
            Reason.NOT_OBJECT, f"a reading must be a JSON object, got {type(item).__name__}"
        )
    device_id = item.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise DecodeError(Reason.BAD_TYPE, "each gateway reading needs a device_id string")
    return decode_reading(item, device_id, now_ms, limits)


# -- gateway batches, the fast way ------------------------------------------------------
#
# A gateway batch of plain readings (numbers in range, numeric timestamps, nothing null)
# is decoded by msgspec straight into typed records, their ranges checked in C: under half
# the CPU of parsing into dicts and checking each field in Python (bench.ingest_path).
# Anything else makes `gateway_rows` return None, and the batch takes the careful path
# above, which names the reason of each bad reading; so the fast path changes no outcome,
# only its cost (tests/unit/test_decode.py checks both paths against each other).


def _plain_decoder() -> msgspec.json.Decoder[Any]:
    """msgspec's decoder of a batch of plain gateway readings; absent quantities are NaN."""
    fields: list[tuple[str, Any, Any]] = [
        ("device_id", Annotated[str, msgspec.Meta(min_length=1)], msgspec.NODEFAULT),
        ("ts", int | float | None, None),
        ("seq", Annotated[int, msgspec.Meta(ge=0)], -1),  # -1: no sequence number
    ]
    # A JSON document cannot hold NaN, so the NaN default always means "not sent".
    for name in QUANTITIES:
        low, high = RANGES[name]
        fields.append((name, Annotated[float, msgspec.Meta(ge=low, le=high)], math.nan))
    reading = msgspec.defstruct("PlainReading", fields, gc=False)
    batch = msgspec.defstruct("PlainBatch", [("readings", GenericAlias(list, (reading,)))])
    return msgspec.json.Decoder(batch)


_PLAIN_DECODER = _plain_decoder()
_NQ = len(QUANTITIES)
# One reading's quantities as a tuple, in QUANTITIES order (attrgetter runs in C).
_QUANTITIES_OF = operator.attrgetter(*QUANTITIES)
# orjson reads integers of 2**64 and beyond as floats (a bad seq); msgspec as ints.
_U64_MAX = 2**64 - 1


@dataclass(slots=True)
class GatewayRows:
    """A gateway batch of plain readings, as columns (rows in the batch's order)."""

    device_ids: list[str]
    ts_ms: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # shape (rows, len(QUANTITIES)); NaN = not reported

    def __len__(self) -> int:
        return len(self.device_ids)


def gateway_rows(payload: bytes, now_ms: int, limits: Limits) -> GatewayRows | None:
    """A gateway batch whose every reading is plain and valid, as columns; None when
    any reading needs the careful path (gateway_items and gateway_item)."""
    if len(payload) > limits.max_payload_bytes:
        return None
    try:
        items: list[Any] = _PLAIN_DECODER.decode(payload).readings
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    n = len(items)
    if not 0 < n <= limits.max_gateway_readings:
        return None
    values = np.fromiter(
        itertools.chain.from_iterable(map(_QUANTITIES_OF, items)), np.float64, n * _NQ
    ).reshape(n, _NQ)
    if np.isnan(values).all(axis=1).any():
        return None  # a reading with no quantity: no_quantity
    oldest, newest = now_ms - limits.max_age_ms, now_ms + limits.max_future_ms
    ts_ms: list[int] = []
    for raw_ts in [item.ts for item in items]:
        if raw_ts is None:
            ts_ms.append(now_ms)
            continue
        if not 0 < raw_ts < 1e16:
            return None
        number = float(raw_ts)  # as decode_reading does: the same ms for the same ts
        ts = int(number) if number >= _MS_THRESHOLD else int(number * 1000)
        if not oldest <= ts <= newest:
            return None
        ts_ms.append(ts)
    seq = [item.seq for item in items]
    if max(seq) > _SEQ_MAX:
        if max(seq) > _U64_MAX:
            return None
        seq = [min(s, _SEQ_MAX) for s in seq]
    return GatewayRows(
        [item.device_id for item in items],
        np.array(ts_ms, np.int64),
        np.array(seq, np.int64),
        values,
    )
