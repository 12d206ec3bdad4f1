"""Line protocol encoding against the official influxdata/line-protocol-corpus encode cases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingest.lineprotocol import FieldValue, LineProtocolError, encode_point, tag_prefix
from tests.conftest import shared_data


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
        shared_data("line-protocol", "encode_cases.json").read_text()
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
