"""Haze as a smoke detector and a person see it: visibility, extinction, obscuration, PM2.5.

One set of conversions for the simulator (which makes haze) and the rule engine (which
estimates it), so that both speak of the same haze:

- Koschmieder's relation: the visual range of a black object against the sky is where its
  contrast falls to 2 % of what it was, so extinction = -ln(0.02) / visibility = 3.912 / V.
- A smoke detector reports optical obscuration per metre: the share of light lost over one
  metre of path, 100 * (1 - exp(-extinction * 1 m)). 100 m of visibility is about
  3.8 %/m, 50 m about 7.5 %/m.
- Particles to extinction: extinction = mass extinction efficiency * PM2.5. Dry biomass
  smoke scatters about 4 m^2/g; the humid mornings of a Kalimantan haze season roughly
  double that by swelling the particles, hence the default 8 m^2/g. It is an average:
  Sigap uses it to put PM2.5 stations and detectors on one scale, not to measure either.
"""

from __future__ import annotations

import math

KOSCHMIEDER = -math.log(0.02)  # 3.912: ln(1 / contrast threshold)
CLEAR_VISIBILITY_M = 20_000.0  # a clear day in Sampit
HAZE_MASS_EXTINCTION_M2_G = 8.0  # humid biomass-smoke haze (see above)


def extinction_per_m(visibility_m: float) -> float:
    """Extinction coefficient (1/m) of air with this visibility (Koschmieder)."""
    if visibility_m <= 0:
        raise ValueError(f"visibility must be positive, not {visibility_m}")
    return KOSCHMIEDER / visibility_m


def visibility_m(extinction: float) -> float:
    """Visibility (m) of air with this extinction coefficient (1/m); inf for none."""
    return math.inf if extinction <= 0 else KOSCHMIEDER / extinction


def obscuration_pct_m(extinction: float) -> float:
    """Optical obscuration per metre (%/m), as a smoke detector reports it."""
    return 100.0 * (1.0 - math.exp(-max(extinction, 0.0)))


def extinction_from_obscuration(obscuration: float) -> float:
    """Extinction coefficient (1/m) that gives this obscuration per metre (%/m)."""
    share = min(max(obscuration, 0.0), 99.999) / 100.0
    return -math.log1p(-share)


def pm25_ugm3(extinction: float, efficiency_m2_g: float = HAZE_MASS_EXTINCTION_M2_G) -> float:
    """PM2.5 (ug/m3) that gives this extinction (1/m) at the given mass efficiency."""
    # 1/m divided by m^2/g is g/m^3; 1e6 ug in a g.
    return max(extinction, 0.0) / efficiency_m2_g * 1e6


def extinction_from_pm25(pm25: float, efficiency_m2_g: float = HAZE_MASS_EXTINCTION_M2_G) -> float:
    """Extinction coefficient (1/m) of air holding this much PM2.5 (ug/m3)."""
    return max(pm25, 0.0) * 1e-6 * efficiency_m2_g
