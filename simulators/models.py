"""Sensor physics: tropical ambient, t-squared fires under a ceiling, bin fill and batteries.

Everything here is a pure function of time, per-device parameters, state and a seeded
noise source (`Noise` per reading; `random.Random` for traits drawn once); no clock, no I/O.
Times come in two flavours:

* `t` (model seconds since the simulation started), which drives scenario events, fire
  growth and battery drain;
* `epoch0 + t` (model clock, epoch seconds), whose local time of day (WIB) drives the daily
  temperature and bin-filling cycles.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

import numpy as np

from contract.optics import CLEAR_VISIBILITY_M, extinction_per_m, pm25_ugm3
from contract.thresholds import RuleParams

# Sampit keeps Western Indonesia Time (WIB, UTC+7) all year.
WIB_OFFSET_S = 7 * 3600

# Sigap's default alarm thresholds (the contract's, so the two never disagree), so the
# simulator can say when its devices cross them; it does not import the rule engine.
_DEFAULTS = RuleParams()
HEAT_ALARM_C = _DEFAULTS.heat_fixed_c
SMOKE_ALARM_PCT_M = _DEFAULTS.smoke_alarm_pct_m
BIN_FULL_PCT = _DEFAULTS.bin_full_pct

# Daily ambient cycle in Sampit (lowland Borneo): coolest just before dawn, hottest after noon.
AMBIENT_MIN_C = 24.0
AMBIENT_MAX_C = 36.0
AMBIENT_MIN_HOUR = 5.0
AMBIENT_MAX_HOUR = 14.0
HUMIDITY_AT_MIN_PCT = 95.0
HUMIDITY_AT_MAX_PCT = 60.0

# Fire: NFPA 72 t-squared growth classes, by the time to reach 1055 kW (1000 BTU/s):
# slow 600 s, medium 300 s, fast 150 s, ultrafast 75 s.
FIRE_ALPHA_MEDIUM_KW_S2 = 0.0117
FIRE_GROWTH_KW_S2: dict[str, float] = {
    "slow": 0.00293,
    "medium": FIRE_ALPHA_MEDIUM_KW_S2,
    "fast": 0.0469,
    "ultrafast": 0.1876,
}
# A room fire does not grow forever: ventilation limits it to a few megawatts.
FIRE_MAX_HRR_KW = 3000.0
CEILING_HEIGHT_M = 3.0
FIRE_TEMP_CEILING_C = 600.0
# Heskestad: optical density per metre grows roughly in proportion to the ceiling-jet
# temperature rise; 0.01 OD/m per K is typical of flaming cellulosic fuels.
SMOKE_OD_PER_M_PER_K = 0.01
SMOKE_CEILING_PCT_M = 100.0

# A fire inside a bin: the sensor housing sits on the lid, about this far above the fuel
# and beside the plume; a bin fire is small (a few hundred kW at most).
BIN_FIRE_HEIGHT_M = 1.0
BIN_FIRE_RADIUS_M = 0.3
BIN_FIRE_MAX_HRR_KW = 300.0
# Tilt of a standing bin (ground slope, a wheel on the kerb) and of a knocked-over one.
BIN_UPRIGHT_TILT_DEG = (0.0, 4.0)
BIN_KNOCKED_TILT_DEG = (80.0, 95.0)

# Bins: the demo's "market day" bins gain this much fill per model second.
FAST_FILL_PCT_S = 2.0
FAST_FILL_CAP_PCT = 98.0
CREW_CALL_PCT = 95.0
# A full bin waits this long (hours, uniform) for the crew that empties it.
CREW_DELAY_H = (0.5, 3.0)
# Route pickups that empty a bin whatever its level: about one every two days per bin.
ROUTE_PICKUP_MEAN_S = 2 * 86400.0
EMPTIED_PCT = (3.0, 8.0)

SECONDS_PER_DAY = 86400.0


class Noise:
    """Seeded noise for readings: bounded Gaussian and uniform draws, made in numpy blocks.

    Per-reading noise is the simulator's hottest path; `random.gauss` costs ~1 us a draw,
    a list lookup ~0.1 us. Gaussian draws are clipped at 3 sigma so that no long trace can
    wander from ambient into an alarm threshold.
    """

    def __init__(self, seed: int | str, block: int = 8192) -> None:
        digest = hashlib.sha256(str(seed).encode()).digest()
        self._gen = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        self._block = block
        self._normals: list[float] = []
        self._uniforms: list[float] = []
        self._ni = self._ui = 0

    def normal(self, sigma: float) -> float:
        """A Gaussian draw with standard deviation `sigma`, clipped at +/- 3 sigma."""
        i = self._ni
        if i >= len(self._normals):
            self._normals = np.clip(self._gen.standard_normal(self._block), -3, 3).tolist()
            i = 0
        self._ni = i + 1
        return self._normals[i] * sigma

    def random(self) -> float:
        """A uniform draw in [0, 1)."""
        i = self._ui
        if i >= len(self._uniforms):
            self._uniforms = self._gen.random(self._block).tolist()
            i = 0
        self._ui = i + 1
        return self._uniforms[i]

    def uniform(self, low: float, high: float) -> float:
        """A uniform draw in [low, high)."""
        return low + (high - low) * self.random()


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def local_hour(epoch_s: float) -> float:
    """Hour of day (0..24) in Sampit local time (WIB) for a model clock in epoch seconds."""
    return ((epoch_s + WIB_OFFSET_S) % SECONDS_PER_DAY) / 3600.0


def ambient_temp_c(epoch_s: float) -> float:
    """Noise-free outdoor temperature: 24 C near 05:00, 36 C near 14:00 WIB."""
    hour = local_hour(epoch_s)
    mid = (AMBIENT_MIN_C + AMBIENT_MAX_C) / 2
    half = (AMBIENT_MAX_C - AMBIENT_MIN_C) / 2
    # Two half-cosines: a 9 h warm-up to the afternoon peak and a 15 h cool-down to dawn.
    rise_h = AMBIENT_MAX_HOUR - AMBIENT_MIN_HOUR
    since_min = (hour - AMBIENT_MIN_HOUR) % 24.0
    if since_min <= rise_h:
        return mid - half * math.cos(math.pi * since_min / rise_h)
    return mid + half * math.cos(math.pi * (since_min - rise_h) / (24.0 - rise_h))


def ambient_humidity_pct(temp_c: float) -> float:
    """Relative humidity, anti-correlated with temperature: 95 % at 24 C, 60 % at 36 C."""
    span = AMBIENT_MAX_C - AMBIENT_MIN_C
    frac = (temp_c - AMBIENT_MIN_C) / span
    return HUMIDITY_AT_MIN_PCT + frac * (HUMIDITY_AT_MAX_PCT - HUMIDITY_AT_MIN_PCT)


# --- fire --------------------------------------------------------------------------------


def fire_hrr_kw(seconds_since_ignition: float, alpha: float = FIRE_ALPHA_MEDIUM_KW_S2) -> float:
    """Heat release rate of a t-squared fire, capped at a ventilation-limited maximum."""
    if seconds_since_ignition <= 0:
        return 0.0
    return min(FIRE_MAX_HRR_KW, alpha * seconds_since_ignition**2)


def ceiling_jet_rise_c(hrr_kw: float, radius_m: float, height_m: float = CEILING_HEIGHT_M) -> float:
    """Alpert's steady ceiling-jet temperature rise at `radius_m` from the plume axis."""
    if hrr_kw <= 0:
        return 0.0
    if radius_m / height_m <= 0.18:
        return float(16.9 * hrr_kw ** (2 / 3) / height_m ** (5 / 3))
    return float(5.38 * (hrr_kw / radius_m) ** (2 / 3) / height_m)


def detector_lag_s(radius_m: float) -> float:
    """Delay before a detector sees the fire: element thermal lag plus ceiling-jet travel."""
    # Ceiling jets of small fires move at roughly 0.5 m/s; 15 s covers the sensing element.
    return 15.0 + 2.0 * radius_m


def fire_temp_rise_c(
    seconds_since_ignition: float, radius_m: float, alpha: float = FIRE_ALPHA_MEDIUM_KW_S2
) -> float:
    """Temperature rise a detector `radius_m` from the fire sees, capped at a plausible ceiling."""
    effective_t = seconds_since_ignition - detector_lag_s(radius_m)
    rise = ceiling_jet_rise_c(fire_hrr_kw(effective_t, alpha), radius_m)
    return min(rise, FIRE_TEMP_CEILING_C)


def bin_fire_rise_c(
    seconds_since_ignition: float, alpha: float = FIRE_GROWTH_KW_S2["fast"]
) -> float:
    """Temperature rise at a bin's lid-mounted sensor from a fire inside the bin."""
    effective_t = seconds_since_ignition - detector_lag_s(BIN_FIRE_RADIUS_M)
    hrr = min(BIN_FIRE_MAX_HRR_KW, fire_hrr_kw(effective_t, alpha))
    rise = ceiling_jet_rise_c(hrr, BIN_FIRE_RADIUS_M, BIN_FIRE_HEIGHT_M)
    return min(rise, FIRE_TEMP_CEILING_C)


def smoke_obscuration_pct_m(temp_rise_c: float) -> float:
    """Smoke obscuration (%/m) that accompanies a ceiling-jet temperature rise."""
    if temp_rise_c <= 0:
        return 0.0
    optical_density = SMOKE_OD_PER_M_PER_K * temp_rise_c
    return min(SMOKE_CEILING_PCT_M, 100.0 * (1.0 - math.pow(10.0, -optical_density)))


# --- fire detectors ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DetectorParams:
    """Fixed traits of one smoke/heat detector (drawn once per device from the fleet seed)."""

    temp_offset_c: float  # indoor shade vs. a hot roof: a small per-building offset
    smoke_base_pct_m: float  # clean-air reading of the optical chamber (dust, ageing)
    battery_v0: float  # 9 V alkaline at the start of the run
    battery_drain_v_day: float
    rssi_base_dbm: float


def random_detector_params(rng: random.Random) -> DetectorParams:
    """Draw one detector's traits."""
    return DetectorParams(
        temp_offset_c=rng.uniform(-0.5, 0.5),
        smoke_base_pct_m=rng.uniform(0.02, 0.15),
        battery_v0=rng.uniform(8.9, 9.5),
        # A 9 V alkaline lasts about a year in a detector: ~2 V over 365 days.
        battery_drain_v_day=rng.uniform(0.003, 0.006),
        rssi_base_dbm=rng.uniform(-105.0, -65.0),
    )


def detector_reading(
    params: DetectorParams,
    t: float,
    epoch0: float,
    fire_rise_c: float,
    noise: Noise,
    battery_limit: float | None = None,
    *,
    extra_smoke_pct_m: float = 0.0,
    humidity_add_pct: float = 0.0,
) -> dict[str, float]:
    """One detector reading (no ts/seq) at model time `t`, with `fire_rise_c` from any fire.

    `extra_smoke_pct_m` is what the chamber sees besides clean air and fire: haze that got
    into the building, dust on the optics (scenario drift). `humidity_add_pct`: the humid
    mornings of a haze season.
    """
    ambient = ambient_temp_c(epoch0 + t) + params.temp_offset_c + noise.normal(0.2)
    humidity = ambient_humidity_pct(ambient) + noise.normal(1.0) + humidity_add_pct
    # Humid air scatters a little light in the optical chamber; stays well under 0.5 %/m.
    smoke = (
        params.smoke_base_pct_m
        + 0.1 * _clip((humidity - 60.0) / 35.0, 0.0, 1.0)
        + abs(noise.normal(0.03))
    )
    smoke = min(smoke, 0.5) + extra_smoke_pct_m
    temp = ambient
    if fire_rise_c > 0:
        temp = min(ambient + fire_rise_c, FIRE_TEMP_CEILING_C)
        smoke = min(smoke + smoke_obscuration_pct_m(fire_rise_c), SMOKE_CEILING_PCT_M)
        # Same water content in hotter air: relative humidity halves about every 11 K.
        humidity *= 2.0 ** (-fire_rise_c / 11.0)
    battery = params.battery_v0 - params.battery_drain_v_day * t / SECONDS_PER_DAY
    if battery_limit is not None:
        battery = min(battery, battery_limit)
    return {
        "temp_c": round(_clip(temp, -40.0, 1200.0), 2),
        "smoke_obs_pct_m": round(_clip(smoke, 0.0, 100.0), 2),
        "humidity_pct": round(_clip(humidity, 0.0, 100.0), 1),
        "battery_v": round(_clip(battery + noise.normal(0.01), 0.0, 15.0), 2),
        "rssi_dbm": round(_clip(params.rssi_base_dbm + noise.normal(2.0), -140.0, 0.0)),
    }


# --- air-quality stations ----------------------------------------------------------------

# Biomass (peat) smoke: PM10 is PM2.5 plus some coarse ash, 1.3..1.6 times as much.
PM10_PER_PM25 = (1.3, 1.6)
# Kalimantan peat smoke emits ~291 g of CO and ~23 g of PM2.5 per kg burnt (Stockwell et al.
# 2016): ~12.6 ug of CO per ug of PM2.5, i.e. 12.6 * 24.45 / 28.01 / 1000 ppm per ug/m3.
CO_PPM_PER_PM25_UGM3 = 0.011
CO_BACKGROUND_PPM = (0.2, 0.5)
# PM2.5 of Koschmieder's clear day (20 km): the haze-free baseline of a station, ~24 ug/m3.
CLEAR_PM25_UGM3 = pm25_ugm3(extinction_per_m(CLEAR_VISIBILITY_M))
PM25_NOISE = 0.05  # relative, per reading (a beta-attenuation or optical monitor)


@dataclass(frozen=True, slots=True)
class AirParams:
    """Fixed traits of one air-quality station (PM2.5, PM10, CO), mains or solar powered."""

    pm10_ratio: float
    co_background_ppm: float
    battery_pct0: float  # solar-charged: stays near this
    rssi_base_dbm: float


def random_air_params(rng: random.Random) -> AirParams:
    """Draw one air station's traits."""
    return AirParams(
        pm10_ratio=rng.uniform(*PM10_PER_PM25),
        co_background_ppm=rng.uniform(*CO_BACKGROUND_PPM),
        battery_pct0=rng.uniform(85.0, 100.0),
        rssi_base_dbm=rng.uniform(-100.0, -70.0),
    )


def air_reading(
    params: AirParams,
    t: float,
    epoch0: float,
    extinction: float,
    noise: Noise,
    *,
    humidity_add_pct: float = 0.0,
) -> dict[str, float]:
    """One air station reading (no ts/seq) of outdoor air with this extinction (1/m).

    PM2.5 is the extinction through contract.optics (the same scale the detectors' obscuration
    is on); PM10 and CO follow the smoke part of it.
    """
    ambient = ambient_temp_c(epoch0 + t) + noise.normal(0.3)
    humidity = ambient_humidity_pct(ambient) + noise.normal(1.0) + humidity_add_pct
    true_pm25 = pm25_ugm3(extinction)
    pm25 = true_pm25 * (1.0 + noise.normal(PM25_NOISE))
    pm10 = pm25 * params.pm10_ratio * (1.0 + noise.normal(0.03))
    smoke_pm25 = max(true_pm25 - CLEAR_PM25_UGM3, 0.0)
    co = params.co_background_ppm + CO_PPM_PER_PM25_UGM3 * smoke_pm25 * (1.0 + noise.normal(0.05))
    return {
        "pm25_ugm3": round(max(pm25, 0.0), 1),
        "pm10_ugm3": round(max(pm10, 0.0), 1),
        "co_ppm": round(max(co, 0.0), 2),
        "temp_c": round(_clip(ambient, -40.0, 60.0), 2),
        "humidity_pct": round(_clip(humidity, 0.0, 100.0), 1),
        "battery_pct": round(_clip(params.battery_pct0 + noise.normal(0.3), 0.0, 100.0), 1),
        "rssi_dbm": round(_clip(params.rssi_base_dbm + noise.normal(2.0), -140.0, 0.0)),
    }


# --- bins --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinParams:
    """Fixed traits of one waste-bin fill sensor."""

    depth_mm: float
    daily_fill_pct: float  # how much the bin fills on an average day
    sun_gain_c: float  # afternoon heating of the bin's sensor housing
    battery_pct0: float
    battery_drain_pct_day: float
    rssi_base_dbm: float


def random_bin_params(rng: random.Random, depth_mm: float) -> BinParams:
    """Draw one bin's traits."""
    return BinParams(
        depth_mm=depth_mm,
        daily_fill_pct=rng.uniform(20.0, 60.0),
        sun_gain_c=rng.uniform(1.0, 4.0),
        battery_pct0=rng.uniform(60.0, 100.0),
        battery_drain_pct_day=rng.uniform(0.02, 0.08),
        rssi_base_dbm=rng.uniform(-115.0, -75.0),
    )


@dataclass(frozen=True, slots=True)
class BinState:
    """How full a bin is at model time `t`, and what will empty it."""

    t: float
    fill_pct: float
    pickup_at: float | None = None  # model time a called crew arrives
    fast_fill_from: float | None = None  # scenario: model time the bin starts filling fast
    crews: bool = True  # False: nobody empties this bin (demo bins stay full)
    fast_fill_pct_s: float = FAST_FILL_PCT_S  # scenario: how fast, and up to which level
    fast_fill_to_pct: float = FAST_FILL_CAP_PCT


def _activity_integral_h(h1: float, h2: float) -> float:
    """Integral over hours [h1, h2] of the daily activity w(h) = 1 + 0.8 cos(2 pi (h-13)/24).

    w has mean 1 over a day, peaks at 13:00 and bottoms out at 01:00; integrating it exactly
    keeps the daily total independent of the reporting interval.
    """
    k = 2.0 * math.pi / 24.0
    return (h2 - h1) + 0.8 / k * (math.sin(k * (h2 - 13.0)) - math.sin(k * (h1 - 13.0)))


def initial_bin_state(rng: random.Random) -> BinState:
    """A bin somewhere in its cycle when the simulation starts."""
    return BinState(t=0.0, fill_pct=rng.uniform(5.0, 70.0))


def step_bin(state: BinState, params: BinParams, t: float, epoch0: float, noise: Noise) -> BinState:
    """Advance a bin from `state.t` to model time `t`: filling, crew calls, pickups."""
    dt = t - state.t
    if dt <= 0:
        return state
    fill = state.fill_pct
    pickup_at = state.pickup_at
    # Normal use: the daily pattern, with a noisy rate (a wedding, a quiet day).
    hours = _activity_integral_h(
        local_hour(epoch0 + state.t), local_hour(epoch0 + state.t) + dt / 3600.0
    )
    fill += params.daily_fill_pct / 24.0 * hours * noise.uniform(0.5, 1.5)
    if state.fast_fill_from is not None and t > state.fast_fill_from:
        fast_seconds = t - max(state.t, state.fast_fill_from)
        rushed = min(state.fast_fill_to_pct, fill + state.fast_fill_pct_s * fast_seconds)
        fill = max(fill, rushed)
    fill = min(fill, 100.0)  # overflowing: the sensor cannot see past the rim
    if state.crews:
        if pickup_at is None and fill >= CREW_CALL_PCT:
            pickup_at = t + noise.uniform(*CREW_DELAY_H) * 3600.0
        elif pickup_at is None and noise.random() < dt / ROUTE_PICKUP_MEAN_S:
            pickup_at = t  # the regular route passes by
        if pickup_at is not None and t >= pickup_at:
            fill = noise.uniform(*EMPTIED_PCT)
            pickup_at = None
    return BinState(
        t,
        fill,
        pickup_at,
        state.fast_fill_from,
        state.crews,
        state.fast_fill_pct_s,
        state.fast_fill_to_pct,
    )


def bin_reading(
    state: BinState,
    params: BinParams,
    epoch0: float,
    noise: Noise,
    *,
    fire_rise_c: float = 0.0,
    knocked_over: bool = False,
    battery_limit: float | None = None,
) -> dict[str, float]:
    """One bin reading (no ts/seq) for the bin as it is at `state.t`; scenario effects optional."""
    epoch = epoch0 + state.t
    hour = local_hour(epoch)
    sun = max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0)) if 6.0 <= hour <= 18.0 else 0.0
    temp = ambient_temp_c(epoch) + params.sun_gain_c * sun + noise.normal(0.3) + fire_rise_c
    # The ultrasonic sensor measures down to the garbage surface. A knocked-over bin keeps
    # its last level here: what the sensor sees sideways is not worth modelling.
    distance = params.depth_mm * (1.0 - state.fill_pct / 100.0) + noise.normal(4.0)
    battery = params.battery_pct0 - params.battery_drain_pct_day * state.t / SECONDS_PER_DAY
    if battery_limit is not None:
        battery = min(battery, battery_limit)
    tilt = noise.uniform(*(BIN_KNOCKED_TILT_DEG if knocked_over else BIN_UPRIGHT_TILT_DEG))
    return {
        "distance_mm": round(_clip(distance, 0.0, params.depth_mm)),
        "temp_c": round(_clip(temp, -40.0, 1200.0), 2),
        "tilt_deg": round(tilt, 1),
        "battery_pct": round(_clip(battery, 0.0, 100.0), 1),
        "rssi_dbm": round(_clip(params.rssi_base_dbm + noise.normal(2.0), -140.0, 0.0)),
    }


def fill_from_distance(distance_mm: float, depth_mm: float) -> float:
    """Fill level (%) the server will compute from a distance reading."""
    return 100.0 * (1.0 - distance_mm / depth_mm)
