"""Values as codecs send them: numbers, numeric strings, units converted or refused."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.readings import QUANTITIES, UNITS
from contract.units import (
    BAD_TYPE,
    BAD_UNIT,
    NOT_FINITE,
    UNIT_SYNONYMS,
    Conversion,
    ValueRejected,
    to_number,
    unit_table,
)

README = Path(__file__).resolve().parents[2] / "contract" / "README.md"
REASONS = {BAD_TYPE, NOT_FINITE, BAD_UNIT}
FAHRENHEIT = {"°F", "F", "℉"}
# Written out independently of the module: what each non-identity unit means.
FACTORS = {"cm": 10.0, "m": 1000.0}


def expected(unit: str, x: float) -> float:
    """x in `unit`, by hand, in Sigap's unit."""
    if unit in FAHRENHEIT:
        return (x - 32) * 5 / 9
    if unit == "mV":
        return x / 1000
    return x * FACTORS.get(unit, 1.0)


def rejected(field: str, raw: object) -> ValueRejected:
    with pytest.raises(ValueRejected) as info:
        to_number(field, raw)
    error = info.value
    assert error.reason in REASONS
    assert str(error) == f"{error.reason}: {error.detail}"
    return error


def test_reason_codes_are_ingests() -> None:
    """The same strings as ingest.decode.Reason, so metrics and API filters line up."""
    from ingest.decode import Reason

    assert (BAD_TYPE, NOT_FINITE) == (Reason.BAD_TYPE, Reason.NOT_FINITE)
    assert BAD_UNIT == "bad_unit"
    assert issubclass(ValueRejected, ValueError)


def test_every_quantity_accepts_its_own_unit_and_the_required_synonyms() -> None:
    """UNIT_SYNONYMS covers QUANTITIES, each quantity's UNITS entry and the agreed spellings."""
    assert set(UNIT_SYNONYMS) == set(QUANTITIES)
    required = {
        "temp_c": {"°C", "C", "℃", "degC", "°F", "F", "℉"},
        "smoke_obs_pct_m": {"%/m"},
        "co_ppm": {"ppm"},
        "pm25_ugm3": {"\u00b5g/m³", "\u03bcg/m³", "ug/m3", "ug/m³", "\u00b5g/m3", "\u03bcg/m3"},
        "pm10_ugm3": {"\u00b5g/m³", "\u03bcg/m³", "ug/m3", "ug/m³", "\u00b5g/m3", "\u03bcg/m3"},
        "humidity_pct": {"%", "%RH"},
        "fill_pct": {"%"},
        "distance_mm": {"mm", "cm", "m"},
        "tilt_deg": {"°", "deg"},
        "battery_v": {"V", "mV"},
        "battery_pct": {"%"},
        "rssi_dbm": {"dBm"},
    }
    assert set(required) == set(QUANTITIES)
    for name in QUANTITIES:
        assert required[name] <= set(UNIT_SYNONYMS[name]), name
        assert UNITS[name] in UNIT_SYNONYMS[name], name
        assert UNIT_SYNONYMS[name][UNITS[name]] == Conversion(1.0), name


SYNONYMS = [(name, unit) for name, units in UNIT_SYNONYMS.items() for unit in units]


@pytest.mark.parametrize(("name", "unit"), SYNONYMS, ids=[f"{n}-{u}" for n, u in SYNONYMS])
def test_every_synonym_converts(name: str, unit: str) -> None:
    """Each spelling, with a space, without one, and with padding, gives the hand value."""
    for text in (f"12.5 {unit}", f"12.5{unit}", f"  12.5   {unit}  "):
        assert math.isclose(to_number(name, text), expected(unit, 12.5), rel_tol=1e-12), text


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("battery_v", "3384 mV", 3.384),
        ("battery_v", "3.384 V", 3.384),
        ("battery_v", "3.384V", 3.384),
        ("distance_mm", "12.5 cm", 125.0),
        ("distance_mm", "1.2 m", 1200.0),
        ("distance_mm", "1203 mm", 1203.0),
        ("temp_c", "98.6 °F", 37.0),
        ("temp_c", "-40 F", -40.0),
        ("temp_c", "212℉", 100.0),
        ("temp_c", "23.59 ℃", 23.59),
        ("pm25_ugm3", "35.5 μg/m³", 35.5),
        ("humidity_pct", "61 %RH", 61.0),
        ("tilt_deg", "12 deg", 12.0),
        ("rssi_dbm", "-117 dBm", -117.0),
    ],
)
def test_hand_computed_conversions(name: str, raw: str, value: float) -> None:
    assert math.isclose(to_number(name, raw), value, rel_tol=0, abs_tol=1e-9)


def test_millivolts_and_volts_give_the_same_float() -> None:
    """Dividing by 1000 rounds once, so the two spellings of one reading agree exactly."""
    for mv in range(0, 5001, 7):
        assert to_number("battery_v", f"{mv} mV") == to_number("battery_v", repr(mv / 1000))


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (23.59, 23.59),
        (7, 7.0),
        (-0.0, 0.0),
        ("23.59", 23.59),
        (" 7 ", 7.0),
        ("+5", 5.0),
        ("-3.5e2", -350.0),
        ("1E3", 1000.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("007", 7.0),
        ("3.384\u00a0V", 3.384),  # a no-break space between number and unit
    ],
)
def test_plain_numbers_and_numeric_strings(raw: object, value: float) -> None:
    result = to_number("battery_v", raw)
    assert type(result) is float
    assert result == value


def test_a_field_outside_the_contract_takes_numbers_but_no_unit() -> None:
    """An unknown field is no KeyError: numbers pass, a unit cannot fit it."""
    assert to_number("firmware_build", "42") == 42.0
    assert to_number("firmware_build", 42) == 42.0
    error = rejected("firmware_build", "42 V")
    assert error.reason == BAD_UNIT
    assert "firmware_build" in error.detail


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("battery_v", "3.3.3 V", BAD_TYPE),
        ("battery_v", "3 4 V", BAD_TYPE),
        ("battery_v", "1_000", BAD_TYPE),
        ("battery_v", "0x10", BAD_UNIT),
        ("temp_c", "NaN", NOT_FINITE),
        ("temp_c", "nan V", NOT_FINITE),
        ("temp_c", "-inf", NOT_FINITE),
        ("temp_c", "+Infinity °C", NOT_FINITE),
        ("temp_c", "infC", NOT_FINITE),
        ("temp_c", "information", BAD_TYPE),
        ("temp_c", "1e309", NOT_FINITE),
        ("distance_mm", "1e308 m", NOT_FINITE),  # finite as sent, not once in millimetres
        ("temp_c", "", BAD_TYPE),
        ("temp_c", "   ", BAD_TYPE),
        ("battery_v", "V", BAD_TYPE),
        ("temp_c", "°F", BAD_TYPE),
        ("battery_v", "3,384 V", BAD_TYPE),
        ("battery_v", "3,384", BAD_TYPE),
        ("distance_mm", "1,000", BAD_TYPE),
        ("distance_mm", "12 kg", BAD_UNIT),
        ("distance_mm", "12 M", BAD_UNIT),  # case matters: not guessed as metres
        ("temp_c", "3 V", BAD_UNIT),
        ("battery_v", "3 v", BAD_UNIT),
        ("fill_pct", "50 %RH", BAD_UNIT),
        ("temp_c", True, BAD_TYPE),
        ("temp_c", False, BAD_TYPE),
        ("temp_c", None, BAD_TYPE),
        ("temp_c", [1], BAD_TYPE),
        ("temp_c", {"v": 1}, BAD_TYPE),
        ("temp_c", b"23", BAD_TYPE),
        ("temp_c", 10**400, NOT_FINITE),
        ("temp_c", math.nan, NOT_FINITE),
        ("temp_c", -math.inf, NOT_FINITE),
    ],
)
def test_rejections_have_a_reason_and_name_the_field(name: str, raw: object, reason: str) -> None:
    error = rejected(name, raw)
    assert error.reason == reason, error.detail
    assert name in error.detail
    assert len(error.detail) < 160, error.detail


def test_huge_numbers_are_not_finite() -> None:
    """Beyond a float, whether sent as digits or as an int too long even to repr."""
    assert rejected("temp_c", "1" + "0" * 400).reason == NOT_FINITE
    error = rejected("temp_c", 10**5000)
    assert error.reason == NOT_FINITE
    assert "temp_c" in error.detail


def test_a_decimal_comma_is_explained_not_guessed() -> None:
    error = rejected("battery_v", "3,384 V")
    assert "decimal comma" in error.detail
    assert "point" in error.detail
    assert "'3,384 V'" in error.detail


def test_a_misfitting_unit_names_field_value_and_accepted_units() -> None:
    error = rejected("distance_mm", "12 kg")
    assert (
        error.detail == "distance_mm='12 kg': unit 'kg' does not fit distance_mm (mm; also cm, m)"
    )


def test_echoed_values_are_short() -> None:
    error = rejected("battery_v", "3 " + "x" * 10_000)
    assert len(error.detail) < 160
    error = rejected("battery_v", "y" * 10_000)
    assert len(error.detail) < 160


MODERATE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(x=MODERATE, name=st.sampled_from(QUANTITIES))
def test_repr_of_a_float_reads_back_exactly(x: float, name: str) -> None:
    assert to_number(name, repr(x)) == x
    assert to_number(name, x) == x


@given(x=MODERATE)
def test_every_unit_converts_like_its_definition(x: float) -> None:
    for name, unit in SYNONYMS:
        for text in (f"{x!r} {unit}", f"{x!r}{unit}"):
            got = to_number(name, text)
            assert math.isclose(got, expected(unit, x), rel_tol=1e-12, abs_tol=1e-12), text


JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from([*QUANTITIES, "not_a_quantity"])
# Text made of the characters numbers and units are made of, so that most examples get
# past the first check (st.text() alone is rarely near a number).
NUMBERISH = st.text(alphabet="0123456789.,+-eE VmCF°%µμg/³naifNI\u00a0", max_size=16)


def _only_value_rejected(name: str, raw: object) -> None:
    try:
        result = to_number(name, raw)
    except ValueRejected as error:
        assert error.reason in REASONS
        assert name in error.detail
    else:
        assert type(result) is float
        assert math.isfinite(result)


@settings(max_examples=300)
@given(name=FIELDS, raw=st.text() | NUMBERISH)
def test_any_text_is_a_number_or_a_value_rejected(name: str, raw: str) -> None:
    _only_value_rejected(name, raw)


@settings(max_examples=300)
@given(name=FIELDS, raw=JSON_LIKE)
def test_any_json_value_is_a_number_or_a_value_rejected(name: str, raw: object) -> None:
    _only_value_rejected(name, raw)


def _readme_rows() -> list[tuple[str, str, list[str]]]:
    """The table under "## Units a codec may send" in contract/README.md."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Units a codec may send\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0].replace(" ", "") == "|quantity|Sigapunit|alsoaccepted|"
    rows = []
    for line in lines[2:]:  # after the header and the |---| line
        name, unit, also = (cell.strip() for cell in line.strip().strip("|").split("|"))
        synonyms = [] if also == "—" else [item.strip().strip("`") for item in also.split(",")]
        rows.append((name.strip("`"), unit.strip("`"), synonyms))
    return rows


def test_readme_table_is_unit_table() -> None:
    """The README lists exactly what the module accepts, in the same order."""
    assert _readme_rows() == unit_table()


def test_unit_table_rows() -> None:
    table = unit_table()
    assert [row[0] for row in table] == list(QUANTITIES)
    for name, unit, also in table:
        assert unit == UNITS[name]
        assert [unit, *also] == list(UNIT_SYNONYMS[name])
