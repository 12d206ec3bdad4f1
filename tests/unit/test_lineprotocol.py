"""Line protocol encoding against the official influxdata/line-protocol-corpus encode cases."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from contract.readings import KIND_NAMES, Q_INDEX, QUANTITIES
from ingest.batch import ReadingBatch
from ingest.influx import LineEncoder
from ingest.lineprotocol import FieldValue, LineProtocolError, encode_point, tag_prefix
from tests.conftest import reference_data


def _field_value(value: dict[str, Any]) -> FieldValue:
    ((kind, raw),) = value.items()
    if kind == "float":
        return float(raw)
    if kind in ("int", "uint"):
        return int(raw)
    if kind == "bool":
        return bool(raw)
    return str(raw)


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        reference_data("line-protocol", "encode_cases.json").read_text()
    )
    return cases


def test_corpus_encode_cases() -> None:
    cases = _cases()
    assert len(cases) == 115
    failures: list[tuple[Any, ...]] = []
    for case in cases:
        point = case["input"]["point"]
        tags = {t["key"]: t["value"] for t in point["tags"]}
        fields = {f["key"]: _field_value(f["value"]) for f in point["fields"]}
        expected = case["output"]
        try:
            got = encode_point(point["name"], tags, fields, point["time"])
        except LineProtocolError as exc:
            if "error" not in expected:
                failures.append((case["input"]["key"], f"raised {exc}"))
            continue
        if got != expected.get("result"):
            failures.append((case["input"]["key"], got, expected))
    assert not failures, failures[:5]


@pytest.mark.parametrize(
    ("device_id", "expected"),
    [
        ("plain", "readings,device_id=plain,kind=fire "),
        ("with space", r"readings,device_id=with\ space,kind=fire "),
        ("a,b", r"readings,device_id=a\,b,kind=fire "),
        ("k=v", r"readings,device_id=k\=v,kind=fire "),
        ('say "hi"', r'readings,device_id=say\ "hi",kind=fire '),
    ],
)
def test_device_tags_are_escaped(device_id: str, expected: str) -> None:
    assert tag_prefix("readings", [("kind", "fire"), ("device_id", device_id)]) == expected


def test_string_field_quotes_and_backslashes() -> None:
    line = encode_point("m", {}, {"note": 'a "b" \\ c'}, 1)
    assert line == r'm note="a \"b\" \\ c" 1'


@pytest.mark.parametrize("fields", [{"x": float("nan")}, {"x": float("inf")}, {}, {"": 1.0}])
def test_unrepresentable_points_raise(fields: dict[str, FieldValue]) -> None:
    with pytest.raises(LineProtocolError):
        encode_point("m", {}, fields, 1)


# -- LineEncoder: whole batches, against the plain per-reading loop --------------------


def _loop_encode(batch: ReadingBatch, measurement: str = "readings") -> bytes:
    """The encoder as the clearest loop: a line per reading, its fields in QUANTITIES order."""
    lines = []
    for row in range(len(batch)):
        device = int(batch.device[row])
        kind = KIND_NAMES.get(int(batch.kind[row]), "unknown")
        prefix = tag_prefix(measurement, [("device_id", batch.device_ids[device]), ("kind", kind)])
        fields = [
            f"{name}={float(v)!r}"
            for name, v in zip(QUANTITIES, batch.values[:, row], strict=True)
            if not np.isnan(v)
        ]
        if batch.seq[row] >= 0:
            fields.append(f"seq={int(batch.seq[row])}i")
        lines.append(f"{prefix}{','.join(fields)} {int(batch.ts_ms[row])}")
    return "".join(line + "\n" for line in lines).encode()


_IDS = ["d0", "bin 1", "a,b=c", "sensor-3", "d4"]


@st.composite
def _batches(draw: st.DrawFn) -> ReadingBatch:
    n = draw(st.integers(1, 30))
    device = draw(st.lists(st.integers(0, len(_IDS) - 1), min_size=n, max_size=n))
    value = st.one_of(
        st.just(math.nan),
        st.floats(-1e6, 1e6),
        st.sampled_from([0.0, -0.0, 1e-7, 123456789.0, 2.5e17, 31.5]),
    )
    values = draw(hnp.arrays(np.float64, (len(QUANTITIES), n), elements=value))
    seq = draw(st.lists(st.sampled_from([-1, 0, 5, 2**63 - 1]), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 2**53), min_size=n, max_size=n))
    return ReadingBatch(
        device=np.array(device, np.int32),
        kind=np.array([1 if d % 2 else 2 for d in device], np.uint8),
        ts_ms=np.array(ts, np.int64),
        seq=np.array(seq, np.int64),
        values=values,
        device_ids=_IDS,
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_batches(), min_size=1, max_size=3))
def test_line_encoder_matches_the_loop(batches: list[ReadingBatch]) -> None:
    encoder = LineEncoder("readings")  # one encoder for several batches: its caches carry over
    for batch in batches:
        assert encoder.encode(batch) == _loop_encode(batch)


def test_line_encoder_keeps_batch_order_across_field_shapes() -> None:
    values = np.full((len(QUANTITIES), 3), np.nan)
    values[0] = [30.0, 31.0, 32.0]
    values[5, 1] = 80.0  # the middle reading alone also carries fill_pct
    batch = ReadingBatch(
        device=np.array([2, 0, 1], np.int32),
        kind=np.array([1, 2, 1], np.uint8),
        ts_ms=np.array([3, 1, 2], np.int64),
        seq=np.array([-1, 7, 8], np.int64),
        values=values,
        device_ids=["b", "c", "a"],
    )
    assert LineEncoder("r").encode(batch).decode().splitlines() == [
        "r,device_id=a,kind=fire temp_c=30.0 3",
        "r,device_id=b,kind=bin temp_c=31.0,fill_pct=80.0,seq=7i 1",
        "r,device_id=c,kind=fire temp_c=32.0,seq=8i 2",
    ]


def test_a_reported_fault_is_stored_as_a_string_field_with_or_without_a_reading() -> None:
    values = np.full((len(QUANTITIES), 3), np.nan)
    values[Q_INDEX["distance_mm"], 0] = 800.0
    values[Q_INDEX["rssi_dbm"], 1] = -97.0
    batch = ReadingBatch(
        device=np.array([0, 1, 2], np.int32),
        kind=np.array([2, 2, 2], np.uint8),
        ts_ms=np.array([1, 2, 3], np.int64),
        seq=np.array([5, 6, -1], np.int64),
        values=values,
        device_ids=["a", "b", "c"],
        faults={1: "distance: No Sensor", 2: 'say "hi"'},
    )
    assert LineEncoder("r").encode(batch).decode().splitlines() == [
        "r,device_id=a,kind=bin distance_mm=800.0,seq=5i 1",
        'r,device_id=b,kind=bin rssi_dbm=-97.0,seq=6i,fault="distance: No Sensor" 2',
        'r,device_id=c,kind=bin fault="say \\"hi\\"" 3',
    ]
