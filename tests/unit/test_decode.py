"""Decoding at the edge: every accepted shape, and every rejection with its reason."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.readings import Q_INDEX, RANGES
from ingest import decode as decode_module
from ingest.decode import (
    DecodeError,
    Limits,
    Reason,
    _checked,
    decode_reading,
    device_payload,
    gateway_item,
    gateway_items,
    gateway_rows,
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


def test_an_air_quality_station_s_reading() -> None:
    # Issue #19: PM2.5 and, where the station has them, PM10 and CO; nothing else needed.
    payload: dict[str, object] = {
        "pm25_ugm3": 182.5,
        "pm10_ugm3": 240,
        "co_ppm": 4.2,
        "humidity_pct": 88,
    }
    reading = decode(payload)
    assert isinstance(reading, decode_module.DecodedReading)
    values = {name: reading.values[Q_INDEX[name]] for name in payload}
    assert values == {"pm25_ugm3": 182.5, "pm10_ugm3": 240.0, "co_ppm": 4.2, "humidity_pct": 88.0}
    assert math.isnan(reading.values[Q_INDEX["temp_c"]])
    only_pm10 = decode({"pm10_ugm3": 35})
    assert isinstance(only_pm10, decode_module.DecodedReading)  # PM10 alone is a quantity too
    assert only_pm10.values[Q_INDEX["pm10_ugm3"]] == 35.0
    assert reason_of({"pm10_ugm3": -3}) == Reason.OUT_OF_RANGE
    assert reason_of({"pm25_ugm3": 20, "pm10_ugm3": "tinggi"}) == Reason.BAD_TYPE


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
        (b'{"temp_c": "31 kg"}', Reason.BAD_UNIT),
        (b'{"temp_c": "hot"}', Reason.BAD_TYPE),
        (b'{"battery_v": "3,384 V"}', Reason.BAD_TYPE),
        (b'{"battery_v": "NaN V"}', Reason.NOT_FINITE),
        (b'{"battery_v": "9 kV"}', Reason.BAD_UNIT),
        (b'{"distance_mm": "30 m"}', Reason.OUT_OF_RANGE),  # 30,000 mm: beyond 20 m
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


@pytest.mark.parametrize(
    ("payload", "field", "value"),
    [
        (b'{"temp_c": "31"}', "temp_c", 31.0),
        (b'{"temp_c": " 23.59 "}', "temp_c", 23.59),
        (b'{"temp_c": "98.6 \xc2\xb0F"}', "temp_c", 37.0),
        (b'{"battery_v": "3.384 V"}', "battery_v", 3.384),
        (b'{"battery_v": "3384mV"}', "battery_v", 3.384),
        (b'{"distance_mm": "120.5 cm"}', "distance_mm", 1205.0),
        (b'{"pm25_ugm3": "35 \xc2\xb5g/m\xc2\xb3"}', "pm25_ugm3", 35.0),
    ],
)
def test_numbers_as_codecs_send_them(payload: bytes, field: str, value: float) -> None:
    reading = device_payload("d1", payload, NOW, LIMITS)
    assert math.isclose(reading.values[Q_INDEX[field]], value, rel_tol=1e-12)


def test_a_unit_that_does_not_fit_names_the_field_the_value_and_the_units() -> None:
    with pytest.raises(DecodeError) as caught:
        device_payload("d1", b'{"distance_mm": "12 kg"}', NOW, LIMITS)
    assert caught.value.reason == Reason.BAD_UNIT
    assert caught.value.detail == (
        "distance_mm='12 kg': unit 'kg' does not fit distance_mm (mm; also cm, m)"
    )


def test_a_decimal_comma_is_refused_not_misread() -> None:
    with pytest.raises(DecodeError) as caught:
        device_payload("d1", b'{"battery_v": "3,384 V"}', NOW, LIMITS)
    assert caught.value.reason == Reason.BAD_TYPE and "decimal comma" in caught.value.detail


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


# -- the fast path and the checked path agree ------------------------------------------

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 1500, 1500.0001, 100, 20_000, -200, 2**63, 2**64]),
    st.sampled_from([NOW, NOW / 1000, NOW + 300_000, NOW + 300_001, NOW - 7 * 86_400_000]),
    st.sampled_from([NOW - 7 * 86_400_000 - 1, 1e11, 1e16, 10**400]),
    st.text(max_size=5),
    st.sampled_from(["2026-09-21T10:00:00Z", "2026-09-21T10:00:00", "  ", "1"]),
    st.lists(st.integers(), max_size=2),
)


def _outcome(decoder: Any, obj: object) -> tuple[object, ...]:
    try:
        reading = decoder(obj, "d1", NOW, LIMITS)
    except DecodeError as exc:
        return ("rejected", exc.reason, str(exc))
    # repr: NaN (an absent quantity) compares unequal to itself.
    return ("accepted", repr(reading))


def _edge_list(low: float, high: float) -> list[object]:
    """A quantity's range limits, just inside and just outside, as floats and ints."""
    return [
        low,
        high,
        math.nextafter(low, -math.inf),
        math.nextafter(high, math.inf),
        int(low),
        int(high),
        int(low) - 1,
        int(high) + 1,
        (low + high) / 2,
    ]


def _edges(low: float, high: float) -> st.SearchStrategy[object]:
    return st.sampled_from(_edge_list(low, high))


_MAX_AGE, _MAX_AHEAD = LIMITS.max_age_ms, LIMITS.max_future_ms
_TS_EDGE_LIST: list[object] = [
    NOW,
    NOW + _MAX_AHEAD,
    NOW + _MAX_AHEAD + 1,
    NOW - _MAX_AGE,
    NOW - _MAX_AGE - 1,
    NOW / 1000,
    (NOW + _MAX_AHEAD) / 1000,
    (NOW + _MAX_AHEAD + 1000) / 1000,
    (NOW - _MAX_AGE - 1000) / 1000,
    1e11,
    1e16,
]
_TS_EDGES = st.sampled_from(_TS_EDGE_LIST)
# Any subset of the fields a reading may have, each near its limits or anything at all.
_READINGS = st.fixed_dictionaries(
    {},
    optional={
        **{name: st.one_of(_edges(*RANGES[name]), _VALUES) for name in RANGES},
        "ts": st.one_of(_TS_EDGES, _VALUES),
        "seq": st.one_of(st.sampled_from([-1, 0, 2**63 - 1, 2**63, 2**64]), _VALUES),
        "device_id": _VALUES,
        "firmware": _VALUES,
    },
)


# A valid reading (any subset of in-range quantities, a timestamp within the limits or
# none, a sequence number or none), then one field set near its limits or to anything.
_VALID = st.fixed_dictionaries(
    {"temp_c": st.floats(-50, 1500)},
    optional={
        **{
            name: st.floats(*RANGES[name]) | st.integers(*map(int, RANGES[name]))
            for name in RANGES
            if name != "temp_c"
        },
        "ts": st.integers(NOW - _MAX_AGE, NOW + _MAX_AHEAD) | st.none(),
        "seq": st.integers(0, 2**64) | st.none(),
    },
)
_PROBES = {
    **{name: st.one_of(_edges(*RANGES[name]), _VALUES) for name in RANGES},
    "ts": st.one_of(_TS_EDGES, _VALUES),
    "seq": st.one_of(st.sampled_from([-1, 0, 2**63 - 1, 2**63, 2**64]), _VALUES),
    "device_id": _VALUES,
}
_PROBED = (
    st.sampled_from(sorted(_PROBES))
    .flatmap(lambda key: st.tuples(_VALID, st.just(key), _PROBES[key]))
    .map(lambda probe: {**probe[0], probe[1]: probe[2]})
)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_PROBED, _READINGS, _VALUES))
def test_fast_path_gives_the_checked_outcome(obj: object) -> None:
    assert _outcome(decode_reading, obj) == _outcome(_checked, obj)


_ODD: list[object] = [
    None,
    True,
    False,
    "",
    "1",
    "2026-09-21T10:00:00Z",
    [],
    {},
    math.nan,
    math.inf,
    -math.inf,
    10**400,
    2**63 - 1,
    2**63,
    2**64,
    -1,
    0,
    -0.0,
    1e16,
]
_EDGE_VALUES: dict[str, list[object]] = {
    **{name: _edge_list(*RANGES[name]) for name in RANGES},
    "ts": _TS_EDGE_LIST,
    "seq": [],
    "device_id": ["d1", "d2"],
}


@pytest.mark.parametrize("base", [{}, {"temp_c": 30.0}, {"humidity_pct": 80, "seq": 3, "ts": NOW}])
def test_fast_path_edges(base: dict[str, object]) -> None:
    # Every field at each of its limits and with every odd value, on a valid reading.
    for key, edges in _EDGE_VALUES.items():
        for value in edges + _ODD:
            obj = {**base, key: value}
            assert _outcome(decode_reading, obj) == _outcome(_checked, obj), obj


@pytest.mark.parametrize(
    "obj",
    [
        {"temp_c": 31.5},
        {"temp_c": 31, "seq": 7, "ts": NOW - 1_000},
        {"ts": (NOW - 1_000) / 1000, "seq": 2**64, "fill_pct": 80.0, "device_id": "d1"},
        {"distance_mm": 900, "battery_pct": 91, "rssi_dbm": -97.0, "seq": None, "ts": None},
        {"smoke_obs_pct_m": 0.4, "humidity_pct": 88, "firmware": "1.2.0"},
    ],
)
def test_valid_readings_take_the_fast_path(monkeypatch: pytest.MonkeyPatch, obj: object) -> None:
    def not_expected(*_: object) -> object:
        raise AssertionError("a valid reading went through the checked path")

    expected = _checked(obj, "d1", NOW, LIMITS)
    monkeypatch.setattr(decode_module, "_checked", not_expected)
    assert repr(decode_reading(obj, "d1", NOW, LIMITS)) == repr(expected)


# -- gateway batches: the fast path (msgspec, all or nothing) and the careful path agree --


def _careful_batch(payload: bytes) -> object:
    """What gateway_items and gateway_item make of a batch, reading by reading."""
    try:
        items = gateway_items(payload, LIMITS)
    except DecodeError as exc:
        return ("rejected", exc.reason)
    out: list[object] = []
    for item in items:
        try:
            reading = gateway_item(item, NOW, LIMITS)
        except DecodeError as exc:
            out.append(("rejected", exc.reason))
            continue
        # repr: NaN (an absent quantity) compares unequal to itself.
        out.append(
            ("accepted", reading.device_id, reading.ts_ms, reading.seq, repr(reading.values))
        )
    return out


def _fast_batch(payload: bytes) -> object:
    rows = gateway_rows(payload, NOW, LIMITS)
    if rows is None:
        return None
    columns = zip(
        rows.device_ids, rows.ts_ms.tolist(), rows.seq.tolist(), rows.values.tolist(), strict=True
    )
    return [("accepted", d, ts, seq, repr(tuple(values))) for d, ts, seq, values in columns]


def _as_json(value: object) -> bytes:
    # The stdlib writes what orjson refuses (integers past 64 bits, NaN, Infinity): such
    # payloads must reach the careful path, which names them.
    return json.dumps(value, allow_nan=True).encode()


# A reading both paths should take (numbers in range, a timestamp within the limits or
# none), then, in _GATEWAY_PROBED, one field set near its limits or to anything at all.
_PLAIN = st.fixed_dictionaries(
    {"device_id": st.sampled_from(["d1", "d2", "gw-7/x"]), "temp_c": st.floats(-50, 1500)},
    optional={
        **{
            name: st.floats(*RANGES[name]) | st.integers(*map(int, RANGES[name]))
            for name in RANGES
            if name != "temp_c"
        },
        "ts": st.integers(NOW - _MAX_AGE, NOW + _MAX_AHEAD)
        | st.floats((NOW - _MAX_AGE) / 1000, (NOW + _MAX_AHEAD) / 1000),
        "seq": st.integers(0, 2**63 - 1),
        "firmware": st.text(max_size=5),
    },
)
_GATEWAY_PROBED = (
    st.sampled_from(sorted(_PROBES))
    .flatmap(lambda key: st.tuples(_PLAIN, st.just(key), _PROBES[key]))
    .map(lambda probe: {**probe[0], probe[1]: probe[2]})
)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(_PLAIN, max_size=4),
    st.one_of(_GATEWAY_PROBED, _GATEWAY_PROBED, _READINGS, _VALUES),
    st.integers(0, 4),
    st.booleans(),
)
def test_the_fast_gateway_path_gives_the_careful_outcome_or_none(
    plain: list[object], probe: object, at: int, wrapped: bool
) -> None:
    # Plain readings with one probe among them: the fast path must take the batch as the
    # careful path would, or leave it to the careful path (None).
    items = [*plain[:at], probe, *plain[at:]]
    payload = _as_json({"readings": items} if wrapped else items)
    fast = _fast_batch(payload)
    assert fast is None or fast == _careful_batch(payload), payload


@pytest.mark.parametrize(
    "base", [{"temp_c": 30.0}, {"humidity_pct": 80, "seq": 3, "ts": NOW}, {"co_ppm": 0}]
)
def test_the_fast_gateway_path_at_every_edge(base: dict[str, object]) -> None:
    # Every field at each of its limits and with every odd value, beside a plain reading.
    edges: dict[str, list[object]] = {
        **_EDGE_VALUES,
        "seq": [-1, 0, 2**63 - 1, 2**63, 2**64 - 1, 2**64],
    }
    taken = 0
    for key, values in edges.items():
        for value in values + _ODD:
            payload = _as_json(
                {
                    "readings": [
                        {"device_id": "d2", "temp_c": 20},
                        {"device_id": "d1", **base, key: value},
                    ]
                }
            )
            fast = _fast_batch(payload)
            assert fast is None or fast == _careful_batch(payload), payload
            taken += fast is not None
    assert taken > 100  # most edges are plain readings: the fast path is what is tested


@settings(max_examples=300, deadline=None)
@given(st.lists(_PLAIN, min_size=1, max_size=LIMITS.max_gateway_readings))
def test_plain_gateway_batches_take_the_fast_path(items: list[dict[str, object]]) -> None:
    payload = _as_json({"readings": items, "gateway": "gw-7"})
    fast = _fast_batch(payload)
    assert fast is not None and fast == _careful_batch(payload)


@pytest.mark.parametrize(
    "item",
    [
        {"device_id": "d1", "temp_c": None},  # null is "not sent": no quantity left
        {"device_id": "d1", "temp_c": 30, "seq": None},
        {"device_id": "d1", "temp_c": "30.5"},
        {"device_id": "d1", "temp_c": 30, "ts": "2026-09-21T10:00:00Z"},
        {"device_id": "d1", "temp_c": 30, "seq": 2**64},  # orjson: a float, so bad_type
        {"device_id": "d1", "temp_c": 30, "seq": 5.0},
        {"device_id": "", "temp_c": 30},
        {"device_id": "d1", "temp_c": 30, "ts": True},
        {"device_id": "d1", "humidity_pct": 101},
        {"device_id": "d1", "firmware": "1.2"},
    ],
)
def test_anything_but_plain_takes_the_careful_path(item: dict[str, object]) -> None:
    plain = {"device_id": "d2", "temp_c": 30.5, "seq": 1}
    payload = _as_json({"readings": [plain, item]})
    assert gateway_rows(payload, NOW, LIMITS) is None
    assert _careful_batch(payload)[0] == ("accepted", "d2", NOW, 1, repr(_fast_tuple(plain)))  # type: ignore[index]


def _fast_tuple(item: dict[str, object]) -> tuple[float, ...]:
    values = [math.nan] * len(Q_INDEX)
    for name, value in item.items():
        if name in Q_INDEX:
            values[Q_INDEX[name]] = float(value)  # type: ignore[arg-type]
    return tuple(values)


def test_the_fast_gateway_path_keeps_the_careful_limits() -> None:
    item = {"device_id": "d1", "temp_c": 30}
    assert gateway_rows(_as_json({"readings": []}), NOW, LIMITS) is None
    too_many = _as_json({"readings": [item] * (LIMITS.max_gateway_readings + 1)})
    assert gateway_rows(too_many, NOW, LIMITS) is None
    padded = _as_json({"readings": [item], "pad": "x" * LIMITS.max_payload_bytes})
    assert gateway_rows(padded, NOW, LIMITS) is None
    clamped = gateway_rows(_as_json({"readings": [item | {"seq": 2**64 - 1}]}), NOW, LIMITS)
    assert clamped is not None and clamped.seq.tolist() == [2**63 - 1]
