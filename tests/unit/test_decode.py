"""Decoding at the edge: every accepted shape, and every rejection with its reason."""

from __future__ import annotations

import math

import orjson
import pytest

from ingest.batch import Q_INDEX
from ingest.decode import (
    DecodeError,
    Limits,
    Reason,
    device_payload,
    gateway_item,
    gateway_items,
    parse_ts,
)

NOW = 1_790_000_000_000  # 2026-09-21, epoch ms
LIMITS = Limits()


def decode(payload: bytes | dict[str, object], device: str = "d1") -> object:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return device_payload(device, data, NOW, LIMITS)


def reason_of(payload: bytes | dict[str, object]) -> str:
    with pytest.raises(DecodeError) as info:
        decode(payload)
    assert str(info.value)  # every rejection explains itself
    return info.value.reason


def test_full_reading() -> None:
    reading = device_payload(
        "d1",
        orjson.dumps(
            {
                "ts": NOW - 1000,
                "seq": 5,
                "temp_c": 31.5,
                "smoke_obs_pct_m": 0.2,
                "battery_v": 3.6,
                "rssi_dbm": -97,
                "firmware": "1.2",
            }
        ),
        NOW,
        LIMITS,
    )
    assert reading.device_id == "d1"
    assert reading.ts_ms == NOW - 1000 and not reading.ts_from_arrival
    assert reading.seq == 5
    assert reading.values[Q_INDEX["temp_c"]] == 31.5
    assert reading.values[Q_INDEX["rssi_dbm"]] == -97.0
    assert math.isnan(reading.values[Q_INDEX["fill_pct"]])


def test_missing_ts_is_arrival_time() -> None:
    reading = device_payload("d1", b'{"fill_pct": 40}', NOW, LIMITS)
    assert reading.ts_ms == NOW and reading.ts_from_arrival and reading.seq == -1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-09-21T10:00:00Z", 1_789_984_800_000),
        ("2026-09-21T17:00:00+07:00", 1_789_984_800_000),
        ("2026-09-21T10:00:00.250Z", 1_789_984_800_250),
        (1_789_984_800, 1_789_984_800_000),  # epoch seconds
        (1_789_984_800.5, 1_789_984_800_500),
        (1_789_984_800_000, 1_789_984_800_000),  # epoch milliseconds
    ],
)
def test_timestamp_forms(raw: object, expected: int) -> None:
    assert parse_ts(raw) == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", Reason.NOT_JSON),
        (b"", Reason.NOT_JSON),
        (b"\xff\xfe\x00garbage", Reason.NOT_JSON),
        (b"[" * 100_000 + b"]" * 100_000, Reason.NOT_JSON),  # nesting beyond any parser
        (b"[1, 2]", Reason.NOT_OBJECT),
        (b'"temp"', Reason.NOT_OBJECT),
        (b'{"temp_c": NaN}', Reason.NOT_FINITE),
        (b'{"temp_c": Infinity}', Reason.NOT_FINITE),
        (b'{"temp_c": 1e999}', Reason.NOT_FINITE),
        (b'{"temp_c": 123456789012345678901234567890}', Reason.OUT_OF_RANGE),
        (b'{"temp_c": "31"}', Reason.BAD_TYPE),
        (b'{"temp_c": true}', Reason.BAD_TYPE),
        (b'{"temp_c": [31]}', Reason.BAD_TYPE),
        (b'{"temp_c": {"v": 31}}', Reason.BAD_TYPE),
        (b'{"fill_pct": 140}', Reason.OUT_OF_RANGE),
        (b'{"smoke_obs_pct_m": -1}', Reason.OUT_OF_RANGE),
        (b'{"seq": 4}', Reason.NO_QUANTITY),
        (b'{"temp_c": null}', Reason.NO_QUANTITY),
        (b"{}", Reason.NO_QUANTITY),
        (b'{"temp_c": 30, "seq": -1}', Reason.BAD_TYPE),
        (b'{"temp_c": 30, "seq": 1.5}', Reason.BAD_TYPE),
        (b'{"temp_c": 30, "ts": "yesterday"}', Reason.BAD_TIMESTAMP),
        (b'{"temp_c": 30, "ts": "2026-09-21T10:00:00"}', Reason.BAD_TIMESTAMP),
        (b'{"temp_c": 30, "ts": -5}', Reason.BAD_TIMESTAMP),
        (b'{"temp_c": 30, "ts": true}', Reason.BAD_TYPE),
        (b'{"temp_c": 30, "ts": 4102444800000}', Reason.TS_IN_FUTURE),  # year 2100
        (b'{"temp_c": 30, "ts": 946684800}', Reason.TS_TOO_OLD),  # year 2000
        (b'{"temp_c": 30, "device_id": "d2"}', Reason.DEVICE_ID_MISMATCH),
    ],
)
def test_rejections(payload: bytes, reason: str) -> None:
    assert reason_of(payload) == reason


def test_oversized_payload_is_rejected_before_parsing() -> None:
    payload = b'{"temp_c": 30, "pad": "' + b"x" * LIMITS.max_payload_bytes + b'"}'
    assert reason_of(payload) == Reason.OVERSIZED


def test_gateway_batch() -> None:
    payload = orjson.dumps({"readings": [{"device_id": "a", "temp_c": 30}, "junk", {"temp_c": 30}]})
    items = gateway_items(payload, LIMITS)
    assert gateway_item(items[0], NOW, LIMITS).device_id == "a"
    for bad in items[1:]:
        with pytest.raises(DecodeError):
            gateway_item(bad, NOW, LIMITS)


@pytest.mark.parametrize("payload", [b'{"readings": {}}', b"[]", b'{"reading": []}'])
def test_gateway_batch_shape(payload: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        gateway_items(payload, LIMITS)
    assert info.value.reason == Reason.NOT_OBJECT


def test_gateway_batch_size_limit() -> None:
    items = [{"device_id": "a", "temp_c": 30}] * (LIMITS.max_gateway_readings + 1)
    with pytest.raises(DecodeError) as info:
        gateway_items(orjson.dumps({"readings": items}), LIMITS)
    assert info.value.reason == Reason.OVERSIZED


def test_an_empty_gateway_batch_is_rejected_not_dropped() -> None:
    with pytest.raises(DecodeError) as caught:
        gateway_items(b'{"readings": []}', LIMITS)
    assert caught.value.reason == Reason.NO_QUANTITY and "no readings" in caught.value.detail
