"""ISPU, Indonesia's air pollution index, from a pollutant's concentration.

Indeks Standar Pencemar Udara as the current regulation defines it: Peraturan Menteri
Lingkungan Hidup dan Kehutanan Nomor P.14/MENLHK/SETJEN/KUM.1/7/2020 tentang Indeks
Standar Pencemar Udara (it replaced Kep-MENLH 45/1997 and added PM2.5 and HC). Its
Lampiran gives the table below ("batas indeks" against concentration, 24-hour averages in
µg/m³, CO too) and the formula

    I = (Ia - Ib) / (Xa - Xb) * (Xx - Xb) + Ib

where Ia/Ib are the index at the upper/lower row of the band the concentration Xx falls
in, and Xa/Xb the concentrations of those rows: a straight line between consecutive rows
(0 at 0). docs/rules.md ("Air quality (ISPU)") cites the sources and says how Sigap uses it.

Two choices the sources do not settle, made here and tested:

- The index is reported as a whole number, rounded UP: a concentration over a row's limit
  (PM2.5 15.6 > 15.5) is never reported in that row's category (ceil(50.13) = 51, Sedang).
- Above the top row (ISPU 500) the top band's line goes on: haze in Kalimantan has been
  reported far above 500 (Palangka Raya, 2015), and a cap would hide how bad it is.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from enum import StrEnum


class Pollutant(StrEnum):
    """The seven ISPU parameters (P.14/2020, Pasal 3)."""

    pm10 = "pm10"
    pm25 = "pm25"
    so2 = "so2"
    co = "co"
    o3 = "o3"
    no2 = "no2"
    hc = "hc"


@dataclass(frozen=True, slots=True)
class IspuRow:
    """One row of the regulation's table: the upper limit of an index band, per pollutant,
    in µg/m³ (24-hour averages)."""

    index: int
    pm10: float
    pm25: float
    so2: float
    co: float
    o3: float
    no2: float
    hc: float

    def limit(self, pollutant: Pollutant) -> float:
        """This row's concentration for one pollutant (µg/m³)."""
        return float(getattr(self, pollutant.value))


# Lampiran, "Batas Indeks Standar Pencemar Udara": (0, 0) is the origin of every column.
TABLE: tuple[IspuRow, ...] = (
    IspuRow(50, pm10=50, pm25=15.5, so2=52, co=4_000, o3=120, no2=80, hc=45),
    IspuRow(100, pm10=150, pm25=55.4, so2=180, co=8_000, o3=235, no2=200, hc=100),
    IspuRow(200, pm10=350, pm25=150.4, so2=400, co=15_000, o3=400, no2=1_130, hc=215),
    IspuRow(300, pm10=420, pm25=250.4, so2=800, co=30_000, o3=800, no2=2_260, hc=432),
    IspuRow(500, pm10=500, pm25=500, so2=1_200, co=45_000, o3=1_000, no2=3_000, hc=648),
)
AVERAGING_H = 24  # the table's concentrations are 24-hour averages, every column
MAX_TABLE_INDEX = TABLE[-1].index

# Breakpoints per pollutant, (0, 0) first: concentrations and the index at each.
_INDEX: tuple[float, ...] = (0.0, *(float(row.index) for row in TABLE))
_LIMITS: dict[Pollutant, tuple[float, ...]] = {
    p: (0.0, *(row.limit(p) for row in TABLE)) for p in Pollutant
}
# Sub-micro rounding noise (50.000000000000007) must not round up to the next integer.
_NOISE_DIGITS = 9


class CategoryId(StrEnum):
    """The five ISPU categories, as ids."""

    baik = "baik"
    sedang = "sedang"
    tidak_sehat = "tidak_sehat"
    sangat_tidak_sehat = "sangat_tidak_sehat"
    berbahaya = "berbahaya"


@dataclass(frozen=True, slots=True)
class IspuCategory:
    """An ISPU category: its band of index values, names, the regulation's colour, and
    what it means (short, after the regulation's "penjelasan")."""

    id: CategoryId
    rank: int  # 0 (Baik) .. 4 (Berbahaya): for ordering and severities
    name_id: str
    name_en: str
    colour_id: str  # the regulation names the colour
    colour_en: str
    colour_hex: str
    low: int  # lowest index in the band
    high: int | None  # highest index in the band; None: no upper end
    meaning_id: str
    meaning_en: str

    def contains(self, index: float) -> bool:
        """True when this index value is in the band (a fraction between two bands, such
        as 50.5, belongs to the upper one, as `category` says)."""
        return category(index).id is self.id


CATEGORIES: tuple[IspuCategory, ...] = tuple(
    IspuCategory(CategoryId(ident), rank, *names, *colour, *band, *meaning)
    for rank, (ident, names, colour, band, meaning) in enumerate(
        (
            (
                "baik",
                ("Baik", "Good"),
                ("hijau", "green", "#34cc33"),
                (0, 50),
                (
                    "Mutu udara sangat baik, tanpa efek negatif bagi manusia, hewan dan tumbuhan.",
                    "Very good air, with no negative effect on people, animals or plants.",
                ),
            ),
            (
                "sedang",
                ("Sedang", "Moderate"),
                ("biru", "blue", "#0070c0"),
                (51, 100),
                (
                    "Mutu udara masih dapat diterima; kelompok sensitif kurangi aktivitas berat.",
                    "Acceptable air; sensitive groups should cut long or heavy exertion outdoors.",
                ),
            ),
            (
                "tidak_sehat",
                ("Tidak Sehat", "Unhealthy"),
                ("kuning", "yellow", "#ffc100"),
                (101, 200),
                (
                    "Mutu udara merugikan manusia, hewan dan tumbuhan; kurangi aktivitas di luar.",
                    "Air harmful to people, animals and plants; spend less time outdoors.",
                ),
            ),
            (
                "sangat_tidak_sehat",
                ("Sangat Tidak Sehat", "Very unhealthy"),
                ("merah", "red", "#ff0000"),
                (201, 300),
                (
                    "Risiko kesehatan naik bagi sebagian yang terpapar; hindari aktivitas di luar.",
                    "Raised health risk for some of those exposed; avoid outdoor activity.",
                ),
            ),
            (
                "berbahaya",
                ("Berbahaya", "Hazardous"),
                ("hitam", "black", "#000000"),
                (301, None),
                (
                    "Merugikan kesehatan secara serius, perlu penanganan cepat; tetap di dalam.",
                    "Serious harm to health, needing prompt action; stay indoors.",
                ),
            ),
        )
    )
)
CATEGORY_BY_ID: dict[CategoryId, IspuCategory] = {c.id: c for c in CATEGORIES}

# CO in ppm (what Sigap's detectors report) to µg/m³ at 25 °C and 1 atm (molar volume
# 24.45 L, CO 28.01 g/mol): 1 ppm = 1145.6 µg/m³.
CO_UGM3_PER_PPM = 28.01 / 24.45 * 1000.0


def _pollutant(pollutant: Pollutant | str) -> Pollutant:
    try:
        return Pollutant(pollutant)
    except ValueError:
        names = ", ".join(p.value for p in Pollutant)
        raise ValueError(f"unknown ISPU pollutant {pollutant!r}; one of: {names}") from None


def _concentration(pollutant: Pollutant, concentration: float) -> float:
    value = float(concentration)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{pollutant.value} concentration must be a finite number, not {value}")
    if value < 0:
        raise ValueError(f"{pollutant.value} concentration cannot be negative: {value} µg/m³")
    return value


def ispu_exact(pollutant: Pollutant | str, concentration: float) -> float:
    """The index before rounding: the regulation's formula in the band that holds the
    concentration (µg/m³), the top band's line beyond the table. ValueError for a negative,
    NaN or infinite concentration or an unknown pollutant."""
    which = _pollutant(pollutant)
    x = _concentration(which, concentration)
    limits = _LIMITS[which]
    # The band whose upper row is the first limit >= x; past the table, the top band.
    upper = min(max(bisect.bisect_left(limits, x), 1), len(limits) - 1)
    xa, xb = limits[upper], limits[upper - 1]
    ia, ib = _INDEX[upper], _INDEX[upper - 1]
    # The same formula, arranged so that a row's limit gives its index exactly (the share
    # of the band is exactly 1) and rounding never makes the index fall as x rises.
    return ib + (ia - ib) * ((x - xb) / (xa - xb))


def ispu(pollutant: Pollutant | str, concentration: float) -> int:
    """The ISPU of one pollutant's concentration (µg/m³, a 24-hour average for the
    regulation's own figure), rounded up to a whole number."""
    return math.ceil(round(ispu_exact(pollutant, concentration), _NOISE_DIGITS))


def pm25_index(ug_m3: float) -> int:
    """The ISPU of a PM2.5 concentration (µg/m³)."""
    return ispu(Pollutant.pm25, ug_m3)


def co_ugm3(ppm: float) -> float:
    """CO in µg/m³ (the table's unit) from ppm (what detectors report), at 25 °C, 1 atm."""
    return ppm * CO_UGM3_PER_PPM


def category(index: float) -> IspuCategory:
    """The category of an index value: Baik 0-50, Sedang 51-100, Tidak Sehat 101-200,
    Sangat Tidak Sehat 201-300, Berbahaya above 300. ValueError for a negative or NaN one."""
    if math.isnan(index) or index < 0:
        raise ValueError(f"an ISPU index is a number from 0 up, not {index}")
    for found in CATEGORIES:
        if found.high is None or index <= found.high:
            return found
    raise AssertionError("unreachable: the last category has no upper end")
