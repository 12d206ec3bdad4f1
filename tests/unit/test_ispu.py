"""ISPU from concentrations, against the table of P.14/MENLHK/SETJEN/KUM.1/7/2020
(contract/ispu.py; docs/rules.md, "Air quality (ISPU)", cites the sources)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import ispu
from contract.ispu import CategoryId, Pollutant

# The regulation's Lampiran, row by row, as the sources print it: ISPU, then PM10, PM2.5,
# SO2, CO, O3, NO2, HC in µg/m³ (24-hour averages). Typed again here, not read from the
# module, so that a typo in either is caught.
REGULATION = [
    (50, 50, 15.5, 52, 4000, 120, 80, 45),
    (100, 150, 55.4, 180, 8000, 235, 200, 100),
    (200, 350, 150.4, 400, 15000, 400, 1130, 215),
    (300, 420, 250.4, 800, 30000, 800, 2260, 432),
    (500, 500, 500, 1200, 45000, 1000, 3000, 648),
]
COLUMNS = [Pollutant.pm10, Pollutant.pm25, Pollutant.so2, Pollutant.co, Pollutant.o3]
COLUMNS += [Pollutant.no2, Pollutant.hc]
CELLS = [
    (row[0], pollutant, row[1 + i]) for row in REGULATION for i, pollutant in enumerate(COLUMNS)
]


@pytest.mark.parametrize("row", REGULATION, ids=[f"ispu-{r[0]}" for r in REGULATION])
def test_the_table_is_the_regulation_s_row_by_row(row: tuple[float, ...]) -> None:
    found = next(r for r in ispu.TABLE if r.index == row[0])
    assert tuple(found.limit(p) for p in COLUMNS) == row[1:]
    assert [r.index for r in ispu.TABLE] == [50, 100, 200, 300, 500]


@pytest.mark.parametrize(("index", "pollutant", "limit"), CELLS)
def test_each_row_s_limit_gives_that_row_s_index(
    index: int, pollutant: Pollutant, limit: float
) -> None:
    assert ispu.ispu(pollutant, limit) == index
    assert ispu.ispu(pollutant.value, limit) == index  # by name too


@pytest.mark.parametrize(("index", "pollutant", "limit"), CELLS)
def test_the_index_is_exact_at_a_limit_and_continuous_through_it(
    index: int, pollutant: Pollutant, limit: float
) -> None:
    assert ispu.ispu_exact(pollutant, limit) == index  # exactly, not 100.00000000000001
    below, above = math.nextafter(limit, 0), math.nextafter(limit, math.inf)
    assert index - 1e-9 < ispu.ispu_exact(pollutant, below) <= index
    assert index <= ispu.ispu_exact(pollutant, above) < index + 1e-9


@pytest.mark.parametrize(("index", "pollutant", "limit"), CELLS)
def test_just_over_a_row_s_limit_is_the_next_category(
    index: int, pollutant: Pollutant, limit: float
) -> None:
    # The table's bands: 15.5 is the last Baik PM2.5, 15.6 the first Sedang (one decimal,
    # as the PM2.5 column is printed); whole-number columns step by 1.
    step = 0.1 if pollutant is Pollutant.pm25 else 1.0
    at, over = ispu.ispu(pollutant, limit), ispu.ispu(pollutant, limit + step)
    assert over > at
    if index < 500:
        assert ispu.category(over).rank == ispu.category(at).rank + 1


def test_pm25_band_edges() -> None:
    assert ispu.pm25_index(0) == 0
    assert ispu.pm25_index(15.5) == 50 and ispu.category(50).id is CategoryId.baik
    assert ispu.pm25_index(15.6) == 51 and ispu.category(51).id is CategoryId.sedang
    assert ispu.pm25_index(55.4) == 100 and ispu.pm25_index(55.5) == 101
    assert ispu.pm25_index(150.4) == 200 and ispu.pm25_index(150.5) == 201
    assert ispu.pm25_index(250.4) == 300 and ispu.pm25_index(250.5) == 301


@pytest.mark.parametrize(
    ("pollutant", "concentration", "exact", "reported"),
    [
        # I = (Ia - Ib) / (Xa - Xb) * (Xx - Xb) + Ib, in the band that holds Xx.
        (Pollutant.pm25, 35.0, 50 + 50 / 39.9 * 19.5, 75),  # 74.44 -> 75
        (Pollutant.pm25, 100.0, 100 + 100 / 95.0 * 44.6, 147),  # 146.95 -> 147
        (Pollutant.pm25, 200.0, 200 + 100 / 100.0 * 49.6, 250),  # 249.6 -> 250
        (Pollutant.pm25, 400.0, 300 + 200 / 249.6 * 149.6, 420),  # 419.87 -> 420
        (Pollutant.pm25, 8.0, 50 / 15.5 * 8.0, 26),  # 25.81 -> 26
        (Pollutant.pm10, 100.0, 75.0, 75),  # exactly on the line: no rounding
        (Pollutant.pm10, 385.0, 250.0, 250),
        (Pollutant.co, 10_000.0, 100 + 100 / 7000 * 2000, 129),  # 128.57 -> 129
        (Pollutant.no2, 665.0, 100 + 100 / 930 * 465, 150),
        (Pollutant.o3, 177.5, 75.0, 75),
    ],
)
def test_interpolation_within_a_band(
    pollutant: Pollutant, concentration: float, exact: float, reported: int
) -> None:
    assert ispu.ispu_exact(pollutant, concentration) == pytest.approx(exact, rel=1e-12)
    assert ispu.ispu(pollutant, concentration) == reported


def test_rounding_is_up_so_a_category_never_hides_an_exceeded_limit() -> None:
    # 0.1 µg/m³ of PM2.5 is 0.32 of an index point: reported as 1, Baik (1-50 in the
    # regulation's category table), never 0.
    assert ispu.pm25_index(0.1) == 1
    assert ispu.ispu_exact(Pollutant.pm25, 15.6) == pytest.approx(50.125, abs=1e-3)
    assert ispu.pm25_index(15.6) == 51


def test_above_the_table_the_top_band_goes_on() -> None:
    # PM2.5 300..500 index over 250.4..500 µg/m³; Palangka Raya's 2015 haze went far past it.
    assert ispu.pm25_index(500) == 500
    assert ispu.ispu_exact(Pollutant.pm25, 749.6) == pytest.approx(700.0)
    assert ispu.pm25_index(1000) == 901
    assert ispu.category(ispu.pm25_index(1000)).id is CategoryId.berbahaya
    assert ispu.ispu(Pollutant.pm10, 1000) == 1750  # 300 + 200 / 80 * (1000 - 420)


@given(
    st.sampled_from(list(Pollutant)),
    st.floats(min_value=0, max_value=100_000, allow_nan=False),
    st.floats(min_value=0, max_value=100_000, allow_nan=False),
)
def test_the_index_never_falls_as_the_concentration_rises(
    pollutant: Pollutant, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert ispu.ispu_exact(pollutant, low) <= ispu.ispu_exact(pollutant, high)
    assert ispu.ispu(pollutant, low) <= ispu.ispu(pollutant, high)
    assert (
        ispu.category(ispu.ispu(pollutant, low)).rank
        <= ispu.category(ispu.ispu(pollutant, high)).rank
    )


@given(st.floats(min_value=0, max_value=2_000, allow_nan=False))
def test_the_reported_index_is_the_exact_one_rounded_up(pm25: float) -> None:
    exact = ispu.ispu_exact(Pollutant.pm25, pm25)
    reported = ispu.pm25_index(pm25)
    assert exact - 1e-6 <= reported < exact + 1


@given(st.floats(min_value=0, max_value=500, allow_nan=False))
def test_the_category_agrees_with_the_table_s_concentration_bands(pm25: float) -> None:
    # Straight from the table: the first row whose PM2.5 limit is at or above pm25 is the
    # category (Baik, Sedang, Tidak Sehat, Sangat Tidak Sehat; the 500 row is Berbahaya).
    # A billionth of a µg/m³ past a limit is rounding noise, not a reading: still that row.
    limits = [row[2] for row in REGULATION]
    row = next(i for i, limit in enumerate(limits) if pm25 <= limit + 1e-9)
    assert ispu.category(ispu.pm25_index(pm25)).rank == row


@pytest.mark.parametrize(
    ("index", "category"),
    [
        (0, CategoryId.baik),
        (1, CategoryId.baik),
        (50, CategoryId.baik),
        (51, CategoryId.sedang),
        (100, CategoryId.sedang),
        (101, CategoryId.tidak_sehat),
        (200, CategoryId.tidak_sehat),
        (201, CategoryId.sangat_tidak_sehat),
        (300, CategoryId.sangat_tidak_sehat),
        (301, CategoryId.berbahaya),
        (500, CategoryId.berbahaya),
        (2000, CategoryId.berbahaya),
        (50.5, CategoryId.sedang),  # a fraction between bands belongs to the upper one
    ],
)
def test_category_boundaries(index: float, category: CategoryId) -> None:
    found = ispu.category(index)
    assert found.id is category
    assert found.contains(index)
    assert sum(c.contains(index) for c in ispu.CATEGORIES) == 1


def test_the_categories_names_and_colours() -> None:
    got = [(c.name_id, c.name_en, c.colour_id, c.low, c.high) for c in ispu.CATEGORIES]
    assert got == [
        ("Baik", "Good", "hijau", 0, 50),
        ("Sedang", "Moderate", "biru", 51, 100),
        ("Tidak Sehat", "Unhealthy", "kuning", 101, 200),
        ("Sangat Tidak Sehat", "Very unhealthy", "merah", 201, 300),
        ("Berbahaya", "Hazardous", "hitam", 301, None),
    ]
    assert [c.rank for c in ispu.CATEGORIES] == [0, 1, 2, 3, 4]
    for c in ispu.CATEGORIES:
        assert len(c.colour_hex) == 7 and c.colour_hex.startswith("#")
        int(c.colour_hex[1:], 16)
        assert 0 < len(c.meaning_id) <= 80 and 0 < len(c.meaning_en) <= 80
    assert ispu.CATEGORY_BY_ID[CategoryId.berbahaya].colour_hex == "#000000"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (-0.1, "cannot be negative"),
        (math.nan, "must be a finite number"),
        (math.inf, "must be a finite number"),
        (-math.inf, "must be a finite number"),
    ],
)
def test_invalid_concentrations_are_refused_clearly(value: float, words: str) -> None:
    with pytest.raises(ValueError, match=words) as raised:
        ispu.pm25_index(value)
    assert "pm25" in str(raised.value)
    with pytest.raises(ValueError, match=words):
        ispu.ispu_exact(Pollutant.co, value)


def test_an_unknown_pollutant_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown ISPU pollutant 'pm1'.*pm10, pm25"):
        ispu.ispu("pm1", 10.0)


@pytest.mark.parametrize("index", [-1, -0.5, math.nan])
def test_invalid_indexes_are_refused(index: float) -> None:
    with pytest.raises(ValueError, match="from 0 up"):
        ispu.category(index)


def test_co_from_ppm() -> None:
    # 1 ppm of CO at 25 °C and 1 atm is 1145.6 µg/m³; the table's 4000 µg/m³ is 3.5 ppm.
    assert ispu.co_ugm3(1.0) == pytest.approx(1145.6, abs=0.1)
    assert ispu.ispu(Pollutant.co, ispu.co_ugm3(3.49)) == 50
    assert ispu.ispu(Pollutant.co, ispu.co_ugm3(3.5)) == 51
