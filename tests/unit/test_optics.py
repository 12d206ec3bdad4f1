"""Visibility, extinction, obscuration and PM2.5 on one scale (contract/optics.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract import optics


@pytest.mark.parametrize(
    ("visibility", "obscuration"), [(100.0, 3.84), (50.0, 7.53), (300.0, 1.30)]
)
def test_the_issue_s_figures(visibility: float, obscuration: float) -> None:
    # Issue #19: 100 m of visibility is about 3.8 %/m, 50 m about 7.5 %/m.
    got = optics.obscuration_pct_m(optics.extinction_per_m(visibility))
    assert got == pytest.approx(obscuration, abs=0.01)


def test_clear_air_is_far_below_any_smoke_threshold() -> None:
    clear = optics.obscuration_pct_m(optics.extinction_per_m(optics.CLEAR_VISIBILITY_M))
    assert clear < 0.05


@given(st.floats(min_value=1.0, max_value=100_000.0))
def test_visibility_round_trips_through_obscuration(visibility: float) -> None:
    obscuration = optics.obscuration_pct_m(optics.extinction_per_m(visibility))
    back = optics.visibility_m(optics.extinction_from_obscuration(obscuration))
    assert back == pytest.approx(visibility, rel=1e-6)


@given(st.floats(min_value=0.0, max_value=50_000.0))
def test_pm25_round_trips_through_extinction(pm25: float) -> None:
    back = optics.pm25_ugm3(optics.extinction_from_pm25(pm25))
    assert back == pytest.approx(pm25, rel=1e-9, abs=1e-9)


def test_edges() -> None:
    assert optics.visibility_m(0.0) == math.inf
    assert optics.obscuration_pct_m(-1.0) == 0.0
    with pytest.raises(ValueError, match="visibility must be positive"):
        optics.extinction_per_m(0.0)
